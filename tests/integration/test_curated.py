"""The ML table: same person, same millisecond, no direct identifier (privacy); time only
(udacity)."""

import hashlib
import hmac

from chispa import assert_df_equality
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.spark import columns, spark_schema
from stedi_lakehouse.contracts.tables import (
    AccelerometerTrusted,
    CustomerCurated,
    MachineLearningCurated,
    MachineLearningCuratedUdacity,
    StepTrainerTrusted,
)
from stedi_lakehouse.transforms.curated import pair_same_person, pair_same_time
from stedi_lakehouse.transforms.pseudonym import hmac_sha256_hex, subject_keys
from tests.helpers import KEY

T0 = 1_655_564_376_000


def _key(email: str) -> str:
    return hmac.new(KEY, email.encode(), hashlib.sha256).hexdigest()


def test_hmac_matches_the_standard_library_for_short_and_long_keys(spark):
    df = spark.createDataFrame([("a@x.io",), ("Ünïcode@x.io",)], "email string")
    for key in (KEY, b"k" * 100):
        got = {
            r["email"]: r["h"]
            for r in df.select(
                "email", hmac_sha256_hex(F.col("email"), key=key).alias("h")
            ).collect()
        }
        assert got == {e: hmac.new(key, e.encode(), hashlib.sha256).hexdigest() for e in got}
        # the keys a run computes on the driver to scope its writes are the tables' keys
        assert subject_keys(set(got), key=key) == set(got.values())


def _inputs(spark):
    people = spark.createDataFrame(
        [
            ("A", "a@x.io", None, None, "s1", T0, T0, T0, None, None),
            ("B", "b@x.io", None, None, "s2", T0, T0, T0, None, None),
        ],
        spark_schema(CustomerCurated),
    )
    step_rows = [(T0 + 1, "s1", 10, "f.json"), (T0 + 2, "s2", 20, "f.json")]
    stepped = spark.createDataFrame(step_rows, spark_schema(StepTrainerTrusted))
    accel = spark.createDataFrame(
        [
            ("a@x.io", T0 + 1, 1.0, 1.0, 1.0, "f.json"),
            ("a@x.io", T0 + 1, 1.5, 1.5, 1.5, "f.json"),  # two at one ms
            ("b@x.io", T0 + 1, 9.0, 9.0, 9.0, "f.json"),  # b at a's moment
            ("b@x.io", T0 + 2, 2.0, 2.0, 2.0, "f.json"),
        ],
        spark_schema(AccelerometerTrusted),
    )
    return people, stepped, accel


def test_privacy_pairs_only_the_same_persons_readings(spark):
    people, stepped, accel = _inputs(spark)
    got = pair_same_person(
        stepped, accelerometer_readings=accel, curated_customers=people, pseudonym_key=KEY
    )
    expected = spark.createDataFrame(
        [
            (_key("a@x.io"), T0 + 1, 10, 1.0, 1.0, 1.0),
            (_key("a@x.io"), T0 + 1, 10, 1.5, 1.5, 1.5),
            (_key("b@x.io"), T0 + 2, 20, 2.0, 2.0, 2.0),
        ],
        spark_schema(MachineLearningCurated),
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_privacy_table_carries_no_direct_identifier(spark):
    people, stepped, accel = _inputs(spark)
    got = pair_same_person(
        stepped, accelerometer_readings=accel, curated_customers=people, pseudonym_key=KEY
    )
    assert got.columns == columns(MachineLearningCurated)
    identifiers = {"email", "user", "customerName", "phone", "birthDay", "serialNumber"}
    assert identifiers.isdisjoint(got.columns)
    values = {str(v) for row in got.collect() for v in row}
    assert not any("@" in v or v in ("s1", "s2") for v in values)


def test_udacity_pairs_on_time_only_like_the_reference(spark):
    _, stepped, accel = _inputs(spark)
    got = pair_same_time(stepped, accelerometer_readings=accel)
    assert got.columns == columns(MachineLearningCuratedUdacity)
    pairs = sorted((r["serialNumber"], r["user"]) for r in got.collect())
    assert pairs == [("s1", "a@x.io"), ("s1", "a@x.io"), ("s1", "b@x.io"), ("s2", "b@x.io")]
