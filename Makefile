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
SCALE  ?= S
DELIVERIES ?= 100

VENV_STAMP := $(VENV)/.installed
JARS_STAMP := $(JARS)/.complete
CDS_STAMP  := .cache/cds/.complete
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: help setup jars browser run test test-unit lint sample docs report package package-build submit-local bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,generate,ml]'
	@touch $@

$(JARS_STAMP): jars/pom.xml
	@command -v mvn >/dev/null || { echo "error: Maven (mvn) is needed to fetch the Delta jars" >&2; exit 1; }
	rm -rf $(JARS)
	mvn --quiet --batch-mode -f jars/pom.xml -Dmaven.repo.local=$(CURDIR)/$(M2) \
	    dependency:copy-dependencies -DincludeScope=runtime \
	    -DexcludeGroupIds=org.scala-lang,org.antlr -DoutputDirectory=$(CURDIR)/$(JARS)
	@touch $@

# The JVM class-data archive of the local profile: made by running the pipeline on the sample
# once (about 40 s); it belongs to this JDK, the venv's Spark and the jars.
$(CDS_STAMP): $(VENV_STAMP) $(JARS_STAMP) scripts/class_archive.py
	$(BIN)/python scripts/class_archive.py .cache/cds/spark.jsa
	@touch $@

setup: $(VENV_STAMP) $(JARS_STAMP) $(CDS_STAMP) ## Create .venv, fetch the Delta jars, make the JVM class archive (idempotent)

jars: $(JARS_STAMP) ## Fetch the Delta jars with Maven into .cache/jars

run: setup ## Run the whole pipeline on data/sample/ into ./$(LAKE) (RULES=privacy|udacity)
	$(BIN)/stedi-lake land data/sample --lake-root $(LAKE)
	$(BIN)/stedi-lake run --lake-root $(LAKE) --rules $(RULES)

# The report's test renders it in Debian's Chromium: installed where missing and we are root;
# elsewhere that test is skipped, saying why.
browser: ## Install Chromium for the report's browser test (as root, where missing)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "note: no chromium and not root: the report's browser test will be skipped" >&2; fi; }

# Two pytest processes, each with its own SparkSession, each taking whole modules (a module's
# lakes are built once, in the process that runs it).
TEST_WORKERS ?= 2
test: setup browser ## Run the test suite (TEST_WORKERS=2 processes)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=20

test-unit: setup ## Run the tests that start no Spark and no process (seconds)
	$(BIN)/pytest -m "not spark and not system"

lint: setup ## Lint with ruff and type-check src/ with mypy
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

# data/sample/ is the generator's (devdata's) small case: 51 customers (the fewest for which its 1 % of stale
# records rounds to one), 2 step readings each, shares raised so that shared serials and unknown
# readers occur, plus the hand-built edge cases. A test checks that this command gives the
# committed files byte for byte.
sample: setup ## Regenerate data/sample/ (deterministic)
	$(BIN)/python -m devdata --customers 51 --readings-per-device 2 --ambiguous-share 0.05 --unknown-share 0.05 --seed 7 --edge-cases --out data/sample

docs: setup ## Regenerate the README's table catalogue from the contracts
	$(BIN)/python -c 'from stedi_lakehouse.cli.render import update_readme; update_readme("README.md")'

report: setup browser ## Write $(LAKE)'s HTML report to $(LAKE)-report.html and its screenshot to docs/report.png
	$(BIN)/stedi-lake report --lake-root $(LAKE) --out $(LAKE)-report.html
	$(BIN)/python -m tests.browser $(LAKE)-report.html docs/report.png

$(BENCH_STAMP): $(VENV_STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,generate,ml,bench]'
	@touch $@

bench: setup $(BENCH_STAMP) ## Time a cold run against a DuckDB reference, check counts, later runs, the served path (SCALE=SAMPLE|S|M|L, DELIVERIES=100)
	$(BIN)/python bench/run.py --scale $(SCALE) --deliveries $(DELIVERIES)

# What spark-submit needs, in dist/: the wheel, a packed virtualenv with it and its dependencies
# (for spark.archives; pyspark and py4j are left out: the cluster provides them) and the job.
PKG_VENV := build/package-venv
# dist/ is rebuilt only when what goes into it changed: the sources, profiles, build files and
# pinned requirements, whose hash is kept beside it (dist/.inputs.sha256).
PKG_INPUTS := pyproject.toml Makefile scripts/package_requirements.py src conf
PKG_HASH = { find $(PKG_INPUTS) -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' \
	| LC_ALL=C sort | xargs sha256sum; $(BIN)/python scripts/package_requirements.py; } \
	| sha256sum | cut -d' ' -f1
package: setup ## Build dist/: wheel, packed venv and profiles (spark.archives), spark-submit job script
	@hash=$$($(PKG_HASH)); \
	if [ "$$(cat dist/.inputs.sha256 2>/dev/null)" = "$$hash" ]; then \
	  echo "dist/ is up to date with its inputs (dist/.inputs.sha256)"; \
	else $(MAKE) --no-print-directory package-build && echo "$$hash" > dist/.inputs.sha256; fi

package-build:
	rm -rf dist build  # setuptools reuses build/lib: a stale copy must not be packaged
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .
	$(PYTHON) -m venv $(PKG_VENV)
	$(BIN)/python scripts/package_requirements.py > build/requirements.txt
	$(PKG_VENV)/bin/pip install --quiet -r build/requirements.txt
	$(PKG_VENV)/bin/pip install --quiet --no-deps dist/*.whl delta-spark==4.0.0
	$(BIN)/pip install --quiet venv-pack==0.2.0
	$(BIN)/venv-pack --quiet -p $(PKG_VENV) -o dist/stedi_lakehouse_env.tar.gz
	cp src/stedi_lakehouse/__main__.py dist/stedi_job.py
	tar -czf dist/stedi_conf.tar.gz -C conf .
	@ls -lh dist

# The packaged job under spark-submit, as a cluster runs it: its Python is the packed
# environment's (no editable install), its profiles come from the conf archive unpacked beside
# the driver, pyspark from SPARK_HOME, Delta from --jars.
SUBMIT_ENV := build/submit-env
SUBMIT_RUN := build/submit-run
SPARK_HOME_DIR = $(shell $(BIN)/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
submit-local: package jars ## spark-submit the packaged job (local[2]) on LAKE (lands data/sample if empty)
	rm -rf $(SUBMIT_ENV) $(SUBMIT_RUN) && mkdir -p $(SUBMIT_ENV) $(SUBMIT_RUN)/conf
	tar -xzf dist/stedi_lakehouse_env.tar.gz -C $(SUBMIT_ENV)
	tar -xzf dist/stedi_conf.tar.gz -C $(SUBMIT_RUN)/conf
	test -d $(LAKE)/landing || $(SUBMIT_ENV)/bin/python dist/stedi_job.py land data/sample --lake-root $(LAKE)
	cd $(SUBMIT_RUN) && SPARK_HOME=$(SPARK_HOME_DIR) PYSPARK_PYTHON=$(CURDIR)/$(SUBMIT_ENV)/bin/python \
	PYSPARK_DRIVER_PYTHON=$(CURDIR)/$(SUBMIT_ENV)/bin/python \
	$(SPARK_HOME_DIR)/bin/spark-submit --master 'local[2]' --conf spark.ui.enabled=false \
	    --jars $$(ls $(CURDIR)/$(JARS)/*.jar | paste -sd, -) \
	    --conf spark.archives=$(CURDIR)/dist/stedi_lakehouse_env.tar.gz#environment \
	    $(CURDIR)/dist/stedi_job.py run --lake-root $(abspath $(LAKE)) --rules $(RULES)

clean: ## Remove the local lake, caches, dist/ and the venv
	rm -rf $(LAKE) .cache $(VENV) .pytest_cache .ruff_cache build dist
