"""Contracts are the one source of schema and rules; Spark and Pydantic must agree on them."""

from pathlib import Path

import pytest
from pydantic import ValidationError
from pyspark.sql import types as T

from stedi_lakehouse.cli.render import catalogue_markdown
from stedi_lakehouse.contracts.landing import AccelerometerReading, CustomerRecord
from stedi_lakehouse.contracts.spark import columns, field_rules, spark_schema
from stedi_lakehouse.contracts.tables import CATALOGUE, RECORD_CONTRACTS, Dataset
from stedi_lakehouse.transforms.validation import REASON, validate
from tests.helpers import ROOT, SAMPLE


def test_spark_schema_is_derived_from_the_contract():
    assert spark_schema(AccelerometerReading) == T.StructType(
        [
            T.StructField("user", T.StringType(), False),
            T.StructField("timestamp", T.LongType(), False),
            T.StructField("x", T.DoubleType(), False),
            T.StructField("y", T.DoubleType(), False),
            T.StructField("z", T.DoubleType(), False),
        ]
    )
    consent = spark_schema(CustomerRecord)["shareWithResearchAsOfDate"]
    assert (consent.dataType, consent.nullable) == (T.LongType(), True)


def test_rules_come_from_field_constraints_including_optional_ones():
    rules = {r.name: r for r in field_rules(CustomerRecord)}
    assert rules["email"].required and not rules["phone"].required
    assert [c.says for c in rules["shareWithResearchAsOfDate"].checks] == [
        "must be >= 946684800000",
        "must be < 4102444800000",
    ]
    assert "must be an e-mail address" in [c.says for c in rules["email"].checks]


def test_every_table_states_its_grain_and_columns():
    for spec in CATALOGUE.values():
        assert spec.grain.startswith(("One row", "`privacy`")), spec.name
        assert columns(spec.contract)


def test_landing_tables_keep_the_source_file_last():
    assert columns(CATALOGUE["customer_landing"].contract)[-1] == "source_file"


def test_statistics_columns_are_columns_of_every_contract_of_their_table():
    for spec in CATALOGUE.values():
        for contract in {spec.contract, spec.udacity_contract} - {None}:
            assert set(spec.statistics or ()) <= set(columns(contract)), spec.name


def test_readme_catalogue_is_generated_from_the_contracts():
    readme = (ROOT / "README.md").read_text()
    assert catalogue_markdown() in readme, "README table catalogue is stale: see CONTRIBUTING"


def _sample_lines(dataset: Dataset) -> list[str]:
    files = sorted((SAMPLE / dataset).rglob("*.json"))
    return [line for f in files for line in Path(f).read_text().split("\n") if line.strip()]


@pytest.mark.parametrize("dataset", list(Dataset))
def test_spark_validation_agrees_with_pydantic_on_every_sample_line(spark, dataset):
    """Spark's expressions and Pydantic's validator read the same contract: same verdicts."""
    contract = RECORD_CONTRACTS[dataset]
    lines = _sample_lines(dataset)
    df = spark.createDataFrame([(line, "f") for line in lines], "value string, source_file string")
    spark_verdicts = {
        r["value"]: r[REASON] is None for r in validate(df, contract=contract).collect()
    }

    def pydantic_accepts(line: str) -> bool:
        try:
            contract.model_validate_json(line)
            return True
        except ValidationError:
            return False

    disagreements = [line for line in lines if spark_verdicts[line] != pydantic_accepts(line)]
    assert disagreements == []
    assert 0 < sum(spark_verdicts.values()) < len(lines)  # the sample has both kinds
