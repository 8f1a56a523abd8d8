"""Contracts are the one source of schema and rules; Spark and Pydantic must agree on them."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from pyspark.sql import types as T

from stedi_lakehouse.cli.render import catalogue_markdown
from stedi_lakehouse.contracts.landing import (
    AccelerometerReading,
    CustomerRecord,
    StepTrainerReading,
)
from stedi_lakehouse.contracts.spark import columns, field_rules, spark_schema
from stedi_lakehouse.contracts.tables import CATALOGUE, RECORD_CONTRACTS, Dataset
from stedi_lakehouse.erasure.identifiers import normalised
from stedi_lakehouse.transforms.validation import REASON, accepted, validate
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


# Identifiers spelt as a hostile or careless sender might: white space of every kind around
# them (U+001C is white space to Python's str.strip only), inside them, or nothing else.
_SPELLINGS = [
    " ABC-1 ",
    "\tabc-1\n",
    "\u00a0Abc-1\u3000",
    "abc-1\x1c",
    "ab c-1",
    " \u2028 ",
    "A@X.IO",
    " a@x.io",
    "a@x.io\u00a0",
    "a\u2009b@x.io",
    "ZOE\u0308@X.IO",  # a letter and its combining mark, composed: one person with "zoë@x.io"
    "zo\u00eb@x.io",
    "\u00c5BC-1",  # A with a ring, composed or not: one device
    "A\u030aBC-1",
    "a\u200b@x.io",  # invisible: refused
    "a@x\u202e.io",
    "a\x00@x.io",
]
_LINES = {
    "serialNumber": (
        StepTrainerReading,
        '{"sensorReadingTime": 1655564000000, "serialNumber": %s, "distanceFromObject": 1}',
    ),
    "user": (
        AccelerometerReading,
        '{"user": %s, "timestamp": 1655564000000, "x": 1, "y": 2, "z": 3}',
    ),
}


@pytest.mark.parametrize("field", list(_LINES))
def test_spark_keeps_identifiers_as_pydantic_does(spark, field):
    """Verdict and kept value alike, so one device or person is one value in every table; and
    the value kept is the one `forget` looks for (stripped and lowered in Python)."""
    contract, line = _LINES[field]
    lines = [line % json.dumps(spelling) for spelling in _SPELLINGS]
    df = spark.createDataFrame(
        [(text, str(i)) for i, text in enumerate(lines)], "value string, source_file string"
    )
    rows = accepted(validate(df, contract=contract), contract=contract).collect()
    by_spark = {lines[int(r["source_file"])]: r[field] for r in rows}

    def by_pydantic(text: str) -> str | None:
        try:
            return getattr(contract.model_validate_json(text), field)
        except ValidationError:
            return None

    assert by_spark == {t: v for t in lines if (v := by_pydantic(t)) is not None}
    assert all(normalised(v) == v for v in by_spark.values())
    kept = [by_spark.get(text) for text in lines]
    if field == "serialNumber":  # padded or in capitals: kept as the one device
        assert kept[:6] == ["abc-1"] * 3 + [None, "ab c-1", None]  # U+001C: a control
    else:  # an address with white space in or around it is refused, as before
        assert kept[6:10] == ["a@x.io", None, None, None]
    assert kept[10] == kept[11] == "zo\u00eb@x.io"  # composed, whichever way it came
    assert kept[12] == kept[13] == ("\u00e5bc-1" if field == "serialNumber" else None)
    assert kept[14:] == [None] * 3
