"""Expectations at their three levels, on real Spark and Delta: `warn` is recorded and the run
goes on (the dirty sample still runs), `drop` is the quarantine, `fail` stops the stage before
it commits any table, naming the expectation and the observed value; every outcome lands in
`quality`, and `status` shows each table's latest check."""

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from rich.console import Console
from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.cli.render import unmet_table
from stedi_lakehouse.contracts.expectations import Check, Expectation, Level, When
from stedi_lakehouse.contracts.spark import field_rules, spark_schema
from stedi_lakehouse.contracts.tables import AccelerometerTrusted, QualityOutcome
from stedi_lakehouse.lake.tables import Lake, local_frame
from stedi_lakehouse.pipeline import Stages, run_stages
from stedi_lakehouse.pipeline.quality import (
    ExpectationFailed,
    Outcome,
    breaches,
    surplus,
    unknown,
    with_known,
)
from stedi_lakehouse.presets import Rules
from tests.helpers import DATA_TABLES, KEY, land_sample, pick_person, withdrawal

SHARES = {"customer": 37 / 131, "accelerometer": 37 / 717, "step_trainer": 32 / 334}


def outcomes(lake: Lake) -> list[dict]:
    return [row.asDict() for row in lake.read("quality").collect()]


@pytest.fixture
def sample_lake(sample_runs, spark, test_settings):
    return Lake(spark, str(sample_runs().root), test_settings.catalog.database)


def test_warn_is_recorded_and_the_run_goes_on(sample_lake):
    shares = [o for o in outcomes(sample_lake) if o["expectation"] == "quarantine share <= 0.01"]
    assert {o["table"]: o["observed"] for o in shares} == pytest.approx(
        {f"{feed}_quarantine": share for feed, share in SHARES.items()}
    )
    assert all(o["level"] == "warn" and not o["passed"] for o in shares)
    assert [r["outcome"] for r in sample_lake.read("runs").collect()] == ["succeeded"]
    assert sample_lake.read("machine_learning_curated").count() == 221


def test_the_quality_table_has_its_contract_schema(sample_lake):
    got = sample_lake.read("quality").schema
    expected = spark_schema(QualityOutcome)
    assert [(f.name, f.dataType) for f in got] == [(f.name, f.dataType) for f in expected]


def test_drop_is_the_quarantine(sample_lake):
    dropped = {o["table"]: o for o in outcomes(sample_lake) if o["level"] == "drop"}
    assert {t: o["observed"] for t, o in dropped.items()} == {
        "customer_quarantine": 37,
        "accelerometer_quarantine": 37,
        "step_trainer_quarantine": 32,
    }
    assert all(o["passed"] and o["threshold"] is None for o in dropped.values())


def test_the_sample_meets_every_fail_expectation(sample_lake):
    fails = [o for o in outcomes(sample_lake) if o["level"] == "fail"]
    names = {(o["table"], o["expectation"]) for o in fails}
    assert ("accelerometer_trusted", "user in customer_trusted.email") in names
    assert ("customer_trusted", "unique (email)") in names
    assert (
        "step_trainer_trusted",
        "distanceFromObject must be >= 0 and must be <= 9223372036854775807",
    ) in names
    assert all(o["passed"] for o in fails)
    ml = {
        o["expectation"]: o
        for o in outcomes(sample_lake)
        if o["table"] == "machine_learning_curated"
    }
    assert ml["subject_key in customer_curated.subject_key"]["observed"] == 0
    assert ml["no identifier"]["passed"]


def test_status_shows_each_tables_latest_check(sample_lake):
    result = CliRunner().invoke(
        app, ["status", "--profile", "test", "-l", sample_lake.root, "--json"]
    )
    assert result.exit_code == 0, result.output
    quality = json.loads(result.stdout)["quality"]
    assert quality["customer_quarantine"]["warnings"] == [
        "quarantine share <= 0.01 (observed 0.282443)"
    ]
    assert quality["customer_quarantine"]["failed"] == []
    assert quality["accelerometer_trusted"] == quality["accelerometer_trusted"] | {
        "expectations": 6,
        "warnings": [],
        "failed": [],
    }


def test_a_failed_landing_expectation_stops_the_run_with_nothing_committed(spark, tmp_path):
    root = tmp_path / "lake"
    land_sample(root)
    result = CliRunner().invoke(
        app,
        ["run", "--profile", "test", "-l", str(root)],
        env={"STEDI_QUALITY__QUARANTINE_FAIL_SHARE": "0.2"},
    )
    assert result.exit_code == 1
    assert result.output.startswith(
        "error: expectation failed, nothing of the stage was committed: customer_quarantine: "
        "quarantine share <= 0.2: observed 0.282443, threshold 0.2"
    ), result.output
    lake = Lake(spark, str(root), "stedi")
    assert [t for t in DATA_TABLES if lake.exists(t)] == []
    assert [r["outcome"] for r in lake.read("runs").collect()] == ["failed"]
    failed = [o for o in outcomes(lake) if not o["passed"] and o["level"] == "fail"]
    assert [(o["table"], o["threshold"]) for o in failed] == [("customer_quarantine", 0.2)]


def test_a_few_bad_new_lines_are_quarantined_and_the_run_goes_on(sample_lake_copy, spark):
    """The fail share is for a broken feed, seen in many lines: one bad record alone in a
    delivery (an ambiguous withdrawal) is quarantined, and the run goes on, the records of
    other deliveries with it."""
    lake, root = sample_lake_copy, Path(sample_lake_copy.root)
    email = pick_person(lake)["email"]
    record = json.dumps(withdrawal(lake, email) | {"shareWithResearchAsOfDate": 1655564000000})
    ambiguous = record[:-1] + ', "shareWithResearchAsOfDate": null}\n'
    (root / "landing" / "customer" / "ambiguous.json").write_text(ambiguous)
    result = CliRunner().invoke(app, ["run", "--profile", "test", "-l", str(root)])
    assert result.exit_code == 0, result.output
    quarantined = lake.read("customer_quarantine").filter("source_file LIKE '%ambiguous%'")
    reasons = [r["reason"] for r in quarantined.collect()]
    assert reasons == ["'shareWithResearchAsOfDate' is named more than once"]
    assert lake.read("customer_trusted").filter(F.col("email") == email).count() == 1
    last = lake.read("runs").orderBy(F.col("started_at").desc()).first()["run_id"]
    checked = [o for o in outcomes(lake) if o["run_id"] == last]
    shares = [(o["level"], o["observed"]) for o in checked if o["table"] == "customer_quarantine"]
    assert sorted(shares) == [("drop", 1.0), ("warn", 1.0)]
    (root / "landing" / "customer" / "again.json").write_text(ambiguous)
    stopped = CliRunner().invoke(
        app,
        ["run", "--profile", "test", "-l", str(root)],
        env={"STEDI_QUALITY__QUARANTINE_FAIL_LINES": "1"},
    )
    assert stopped.exit_code == 1 and stopped.output.startswith("error: expectation failed")


def test_a_failed_trusted_expectation_stops_the_curated_stage(spark, test_settings, tmp_path):
    root = tmp_path / "lake"
    land_sample(root)
    lake = Lake(spark, str(root), test_settings.catalog.database)
    run_stages(Stages(lake, rules=Rules.PRIVACY), "trusted", pseudonym_key=KEY)
    stranger = {
        "user": "nobody@nowhere.test",
        "timestamp": 1655564000123,
        "x": 1.0,
        "y": 2.0,
        "z": 3.0,
        "source_file": "accelerometer/x.json",
    }
    lake.append(
        local_frame(spark, [stranger], spark_schema(AccelerometerTrusted)), "accelerometer_trusted"
    )
    with pytest.raises(
        ExpectationFailed,
        match=r"accelerometer_trusted: user in customer_trusted.email: observed 1, threshold 0",
    ):
        run_stages(Stages(lake, rules=Rules.PRIVACY), "curated", pseudonym_key=KEY)
    assert not lake.exists("customer_curated") and not lake.exists("machine_learning_curated")


# -- the measures, on tiny frames ---------------------------------------------------------------
def test_the_measures_count_what_breaks(spark):
    schema = T.StructType(
        [T.StructField("user", T.StringType()), T.StructField("timestamp", T.LongType())]
    )
    readings = spark.createDataFrame(
        [("a@x.io", 1655564000123), ("a@x.io", 1655564000123), ("b@x.io", 5), ("nope", None)],
        schema,
    )
    known = spark.createDataFrame([("a@x.io",)], "email string")
    assert readings.agg(surplus(["user", "timestamp"])).first()[0] == 1
    looked_up = with_known(readings, "user", referenced=known, flag="_known")
    assert looked_up.agg(unknown("_known")).first()[0] == 2
    rules = {r.name: r for r in field_rules(AccelerometerTrusted)}
    counts = readings.agg(*[breaches(rules[c]).alias(c) for c in ("user", "timestamp")])
    assert counts.first().asDict() == {"user": 1, "timestamp": 1}
    no_key = spark.createDataFrame([(None, None), (None, None), (None, 1)], schema)
    assert no_key.agg(surplus(["user", "timestamp"])).first()[0] == 1
    assert no_key.limit(0).agg(surplus(["user"])).first()[0] == 0


def test_a_run_shows_its_unmet_expectations():
    share = Expectation(
        "customer_quarantine",
        Check.QUARANTINE_SHARE,
        Level.WARN,
        When.BEFORE_TRUSTED,
        threshold=0.01,
    )
    console = Console(record=True, width=200)
    console.print(unmet_table([Outcome(share, 37 / 131)]))
    shown = console.export_text()
    assert "customer_quarantine" in shown and "quarantine share <= 0.01" in shown
    assert "warn" in shown and "0.282443" in shown
