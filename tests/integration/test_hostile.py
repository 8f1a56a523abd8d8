"""Deliveries as they really arrive: no line and no file stops a run; every line is accounted
for (read = accepted + quarantined), and errors never quote a record."""

import gzip
import json
import random
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from stedi_lakehouse.errors import failure_text
from stedi_lakehouse.pipeline import Stages
from stedi_lakehouse.presets import Rules
from tests.helpers import FILES, HOSTILE, KEY, SAMPLE, deliver, new_lake, snapshot, versions

GOOD = {"user": "Larry.Clayton@test.com", "x": 1.0, "y": 2.0, "z": 3.0}


def run(lake, rules=Rules.PRIVACY):
    stages = Stages(lake, rules=rules)
    return stages.trusted().merge(stages.curated(pseudonym_key=KEY))


def write_delivery(folder: Path) -> None:
    """A hostile delivery beside the sample: every hostile line with good lines around them,
    good records in a gzip file, two binary files (random bytes, UTF-16) and a truncated
    gzip file."""
    folder.mkdir(parents=True, exist_ok=True)
    good = [json.dumps(GOOD | {"timestamp": 1655564000000 + i}).encode() for i in range(3)]
    hostile = [line for line, _ in HOSTILE.values()]
    (folder / "hostile.json").write_bytes(b"\n".join([good[0], *hostile, good[1]]) + b"\n")
    (folder / "packed.json.gz").write_bytes(gzip.compress(good[2] + b"\n"))
    (folder / "picture.json").write_bytes(random.Random(0).randbytes(20_000))
    (folder / "unicode.json").write_bytes(b"\n".join(good).decode().encode("utf-16"))
    whole = gzip.compress(b"\n".join(good * 2000) + b"\n")
    (folder / "cut.json.gz").write_bytes(whole[: len(whole) // 2])


@pytest.fixture(scope="module")
def hostile_lake(spark, test_settings, tmp_path_factory):
    lake = new_lake(spark, test_settings, tmp_path_factory.mktemp("hostile"))
    deliver(Path(lake.root), FILES)
    write_delivery(Path(lake.root) / "landing" / "accelerometer" / "new")
    report = run(lake)
    return lake, report


def quarantine_of(lake, file: str) -> list[str]:
    rows = lake.read("accelerometer_quarantine").filter(
        F.col("source_file") == f"landing/accelerometer/new/{file}"
    )
    return [r["reason"] for r in rows.collect()]


def test_every_hostile_line_is_quarantined_and_the_good_ones_accepted(hostile_lake):
    lake, _ = hostile_lake
    assert sorted(quarantine_of(lake, "hostile.json")) == sorted(r for _, r in HOSTILE.values())
    landing = lake.read("accelerometer_landing")
    new = landing.filter(F.col("source_file").startswith("landing/accelerometer/new/"))
    assert sorted(r["source_file"].rsplit("/", 1)[1] for r in new.collect()) == [
        "hostile.json",
        "hostile.json",
        "packed.json.gz",
    ]


def test_a_file_that_cannot_be_read_is_one_quarantine_row(hostile_lake):
    lake, _ = hostile_lake
    for binary in ("picture.json", "unicode.json"):
        assert quarantine_of(lake, binary) == ["binary file (not UTF-8 text): not read"]
    [reason] = quarantine_of(lake, "cut.json.gz")
    assert reason.startswith("file cannot be read: EOFException"), reason


def test_counts_conserve(hostile_lake, spark):
    lake, report = hostile_lake
    counts = report.datasets["accelerometer"]
    landing, quarantine = (
        lake.read(f"accelerometer_{z}").count() for z in ("landing", "quarantine")
    )
    assert (counts.accepted, counts.quarantined) == (landing, quarantine)
    sample_lines = sum(
        1
        for f in FILES
        if f.startswith("accelerometer/")
        for line in (SAMPLE / f).read_text().split("\n")
        if line.strip()
    )
    # the hostile file's lines, one good line in the gzip file, one row per unreadable file
    assert counts.read == sample_lines + len(HOSTILE) + 2 + 1 + 3
    assert counts.accepted == counts.trusted + sum(counts.excluded.values())


def test_the_next_run_is_a_no_op(hostile_lake):
    lake, _ = hostile_lake
    before, tables = versions(lake), snapshot(lake)
    assert run(lake).writes == []
    assert versions(lake) == before and snapshot(lake) == tables


def test_a_spark_failure_is_named_without_the_record(spark):
    """Spark's messages quote the record they failed on: the text kept of a failure does not."""
    secret = "{'user':'secret@test.com','x':NaN}"
    failures = []
    for query in (
        lambda: spark.range(1).select(F.parse_json(F.lit(secret))).collect(),
        lambda: spark.sql(f"SELECT CAST('{secret}' AS INT)").collect(),
    ):
        with pytest.raises(Exception) as caught:
            query()
        assert "secret" in str(caught.value)  # what Spark says
        failures.append(failure_text(caught.value))
    assert all("secret" not in text for text in failures), failures
    assert "MALFORMED_RECORD_IN_PARSING" in failures[0] or "SparkException" in failures[0]
