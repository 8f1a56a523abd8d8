"""Micro-measurements behind docs/performance.md, on the M accelerometer feed (2M lines; run
`make bench SCALE=M` once first). Each step is timed warm: best of three.

    .venv/bin/python bench/micro.py                      # the local profile (parallel collector)
    STEDI_SPARK__JAVA_OPTIONS=-XX:+UseG1GC .venv/bin/python bench/micro.py   # G1 instead
    .venv/bin/python bench/micro.py repeated             # the check for names given twice only
"""

import operator
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import reduce
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.landing import AccelerometerReading, CustomerRecord
from stedi_lakehouse.contracts.spark import columns, field_rules, spark_schema
from stedi_lakehouse.contracts.tables import ProcessedFile
from stedi_lakehouse.lake.session import build_session
from stedi_lakehouse.lake.tables import STATISTICS_PROPERTY, local_frame
from stedi_lakehouse.settings import load_settings
from stedi_lakehouse.transforms import validation as val

SOURCE = Path(".cache/bench/M/landing/accelerometer")
STATS_KEY = "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols"


def timed(label: str, step: Callable[[], object], repeat: int = 3) -> None:
    best = min(_seconds(step) for _ in range(repeat))
    print(f"{label:55s} {best:6.2f} s", flush=True)


def _seconds(step: Callable[[], object]) -> float:
    started = time.monotonic()
    step()
    return time.monotonic() - started


def _to_noop(df: DataFrame) -> None:
    df.write.format("noop").mode("overwrite").save()


def ingest_steps(lines: DataFrame) -> None:
    """What each step of the ingest adds, every row evaluated (Spark's `noop` sink)."""
    rules = field_rules(AccelerometerReading)
    record = val.non_blank(lines).withColumn(
        val.RECORD, F.from_json("value", spark_schema(AccelerometerReading))
    )
    typed = {rule.name: F.col(val.RECORD)[rule.name] for rule in rules}
    valid = reduce(
        operator.and_, [val._may_hold(r, typed[r.name]) & typed[r.name].isNotNull() for r in rules]
    )
    validated = val.without_good_lines(val.validate(lines, contract=AccelerometerReading))
    timed("ingest steps: read.text with the file name", lambda: _to_noop(lines))
    timed("ingest steps: + from_json with the contract schema", lambda: _to_noop(record))
    timed(
        "ingest steps: + rule checks of valid records",
        lambda: _to_noop(record.withColumn("valid", valid)),
    )
    timed("ingest steps: + reasons of rejected ones (validate)", lambda: _to_noop(validated))

    def cached() -> None:
        frame = validated.persist(StorageLevel.MEMORY_AND_DISK)
        _to_noop(frame)
        frame.unpersist(blocking=True)

    timed("ingest steps: + the cache", cached)


def repeated_names(lines: DataFrame, customers: DataFrame) -> None:
    """What the check for a field named twice costs `validate`: the colon count on every line,
    and the listing of names on the lines that take the full path (most customer records: an
    optional field is null) or have more colons than fields (here: the accelerometer lines
    with one extra field, as a feed that adds one sends them)."""
    extra = lines.withColumn(
        "value", F.concat(F.expr("substring(value, 1, length(value) - 1)"), F.lit(',"n":"a"}'))
    )
    listing = val.names_given

    def validate(frame: DataFrame, contract: type, *, checked: bool) -> None:
        unlisted = lambda rules: F.lit(None).cast("array<string>")  # noqa: E731
        val.names_given = listing if checked else unlisted
        try:
            _to_noop(val.validate(frame, contract=contract))
        finally:
            val.names_given = listing

    for label, frame, contract in (
        ("accelerometer", lines, AccelerometerReading),
        ("accelerometer with an extra field", extra, AccelerometerReading),
        ("customer", customers, CustomerRecord),
    ):
        for checked in (False, True):
            timed(
                f"repeated names: {label}, {'checked' if checked else 'unchecked'}",
                lambda f=frame, c=contract, on=checked: validate(f, c, checked=on),
            )


def source_file_cut(text: DataFrame) -> None:
    """Each line's file relative to the lake root (what `Lake.read_landing` adds), cut from
    the path Spark gives two ways."""
    path = F.col("_metadata.file_path")
    root = text.select(path).first()[0].rsplit("landing/", 1)[0]
    for label, cut in [
        ("the path as Spark gives it", path),
        ("substring after the root", F.substring(path, len(root) + 1, 1 << 20)),
        ("replace the root with ''", F.replace(path, F.lit(root), F.lit(""))),
    ]:
        timed(f"source_file: {label}", lambda c=cut: _to_noop(text.select("value", c)))


def empty_check(text: DataFrame) -> None:
    """The "must not be empty" rule (e-mails, serial numbers) on the 2M readings' e-mails, held
    in a cache: counting the characters, then comparing with ''."""
    users = text.select(F.from_json("value", spark_schema(AccelerometerReading))["user"].alias("u"))
    users = users.persist(StorageLevel.MEMORY_AND_DISK)
    users.count()
    checks = [("length(user) >= 1", F.length("u") >= 1), ("user != ''", F.col("u") != "")]
    for label, holds in checks:
        timed(f"empty check: {label}", lambda h=holds: _to_noop(users.select(h)))
    timed("empty check: the cached column alone", lambda: _to_noop(users))
    users.unpersist()


def bookkeeping_rows(spark: SparkSession) -> None:
    """The rows of a bookmark commit sent as an Arrow table, then as Python rows (their first
    call starts a Python worker process): first call, then the best of three."""
    schema = spark_schema(ProcessedFile)
    rows = [
        {
            "path": f"landing/x/{i}.json",
            "dataset": "accelerometer",
            "stage": "trusted",
            "run_id": "r",
        }
        for i in range(30)
    ]
    python_rows = [tuple(row.values()) for row in rows]
    measure_rows("Arrow table", lambda: local_frame(spark, rows, schema))
    measure_rows("Python rows", lambda: spark.createDataFrame(python_rows, schema))


def measure_rows(label: str, make: Callable[[], DataFrame]) -> None:
    first = _seconds(lambda: _to_noop(make()))
    print(f"{'bookkeeping rows, first call: ' + label:55s} {first:6.2f} s", flush=True)
    timed(f"bookkeeping rows, later calls: {label}", lambda: _to_noop(make()))


def main() -> None:
    if not SOURCE.is_dir():
        raise SystemExit(f"{SOURCE} missing: run `make bench SCALE=M` first")
    scratch = Path(tempfile.mkdtemp(prefix="stedi-micro-"))
    spark = build_session(load_settings(None, lake_root=str(scratch)), str(scratch))
    schema, fields = spark_schema(AccelerometerReading), columns(AccelerometerReading)
    text = spark.read.text(str(SOURCE), recursiveFileLookup=True, pathGlobFilter="*.json")
    text.count()  # warm up
    lines = text.select("value", F.col("_metadata.file_path").alias("source_file"))
    customers = spark.read.text(str(SOURCE.parent / "customer"), recursiveFileLookup=True)
    repeated_names(lines, customers.withColumn("source_file", F.lit("c")))
    if sys.argv[1:] == ["repeated"]:
        return

    def parse_text():
        parsed = text.select(F.from_json("value", schema).alias("r")).select("r.*")
        return parsed.agg(*[F.max(c) for c in fields]).first()

    def parse_json():
        parsed = spark.read.schema(schema).json(str(SOURCE))
        return parsed.agg(*[F.max(c) for c in fields]).first()

    timed("parse: read.text + from_json, all fields", parse_text)
    timed("parse: spark.read.json with the schema, all fields", parse_json)

    source_file_cut(text)
    empty_check(text)
    ingest_steps(lines)
    validated = val.validate(lines, contract=AccelerometerReading)
    cached = val.without_good_lines(validated).persist(StorageLevel.MEMORY_AND_DISK)
    cached.count()
    good = val.accepted(cached, contract=AccelerometerReading)
    out = scratch / "out"
    timed(
        "write accepted: Delta, statistics on 32 columns",
        lambda: good.write.format("delta").mode("overwrite").save(str(out / "all")),
    )
    spark.conf.set(STATS_KEY, "2")
    timed(
        "write accepted: Delta, statistics on 2 columns",
        lambda: good.write.format("delta").mode("overwrite").save(str(out / "two")),
    )
    for label, stats in [
        ("user, timestamp, source_file", "user,timestamp,source_file"),
        ("timestamp, source_file", "timestamp,source_file"),
    ]:
        timed(
            f"write accepted: Delta, statistics on {label}",
            lambda stats=stats: (
                good.write.format("delta")
                .mode("overwrite")
                .option(STATISTICS_PROPERTY, stats)
                .save(str(out / stats.replace(",", "-")))
            ),
        )
    timed(
        "write accepted: plain Parquet",
        lambda: good.write.mode("overwrite").parquet(str(out / "parquet")),
    )
    cached.unpersist()
    bookkeeping_rows(spark)
    spark.stop()
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
