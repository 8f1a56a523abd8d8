# stedi-lakehouse: `make run` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
JARS   := .cache/jars
M2     := .cache/m2
LAKE   ?= lakehouse
RULES  ?= privacy

VENV_STAMP := $(VENV)/.installed
JARS_STAMP := $(JARS)/.complete

.PHONY: help setup jars run test lint sample docs clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

$(JARS_STAMP): jars/pom.xml
	@command -v mvn >/dev/null || { echo "error: Maven (mvn) is needed to fetch the Delta jars" >&2; exit 1; }
	rm -rf $(JARS)
	mvn --quiet --batch-mode -f jars/pom.xml -Dmaven.repo.local=$(CURDIR)/$(M2) \
	    dependency:copy-dependencies -DincludeScope=runtime \
	    -DexcludeGroupIds=org.scala-lang,org.antlr -DoutputDirectory=$(CURDIR)/$(JARS)
	@touch $@

setup: $(VENV_STAMP) $(JARS_STAMP) ## Create .venv and fetch the Delta jars (idempotent)

jars: $(JARS_STAMP) ## Fetch the Delta jars with Maven into .cache/jars

run: setup ## Run the whole pipeline on data/sample/ into ./$(LAKE) (RULES=privacy|udacity)
	$(BIN)/stedi-lake land data/sample --lake-root $(LAKE)
	$(BIN)/stedi-lake run --lake-root $(LAKE) --rules $(RULES)

test: setup ## Run the test suite
	$(BIN)/pytest

lint: setup ## Lint with ruff
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

sample: setup ## Regenerate data/sample/ (deterministic)
	$(BIN)/stedi-lake sample --out data/sample

docs: setup ## Regenerate the README's table catalogue from the contracts
	$(BIN)/python -c 'from stedi_lakehouse.report import update_readme; update_readme("README.md")'

clean: ## Remove the local lake, caches and the venv
	rm -rf $(LAKE) .cache $(VENV) .pytest_cache .ruff_cache
