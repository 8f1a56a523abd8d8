"""Each rule of each preset on tiny inline DataFrames."""

import pytest
from chispa import assert_df_equality

from stedi_lakehouse.contracts.spark import spark_schema
from stedi_lakehouse.contracts.tables import (
    AccelerometerLanding,
    CustomerLanding,
    StepTrainerLanding,
)
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.transforms import curated as cur
from stedi_lakehouse.transforms import trusted as tr

T0 = 1_655_564_376_000  # a plausible epoch-ms instant
PRIVACY, UDACITY = Rules.PRIVACY, Rules.UDACITY


def customers(spark, *rows):
    """rows: (email, serial, lastUpdateDate, consent_ms, source_file)"""
    data = [
        (email.split("@")[0], email, None, None, serial, T0, updated, consent, None, None, src)
        for email, serial, updated, consent, src in rows
    ]
    return spark.createDataFrame(data, spark_schema(CustomerLanding))


def readings(spark, *rows):
    """rows: (user, timestamp)"""
    data = [(user, ts, 1.0, 2.0, 3.0, "a.json") for user, ts in rows]
    return spark.createDataFrame(data, spark_schema(AccelerometerLanding))


def steps(spark, *rows):
    """rows: (timestamp, serial)"""
    data = [(ts, serial, 100, "s.json") for ts, serial in rows]
    return spark.createDataFrame(data, spark_schema(StepTrainerLanding))


def exclusions(classified, key):
    return {tuple(r[k] for k in key): r[tr.EXCLUSION] for r in classified.collect()}


# -- customers -----------------------------------------------------------------------------
def test_latest_record_per_email_wins_and_consent_decides(spark):
    landed = customers(
        spark,
        ("a@x.io", "s1", T0, T0, "1.json"),  # superseded by the next record
        ("a@x.io", "s1", T0 + 10, None, "2.json"),  # latest: consent withdrawn
        ("b@x.io", "s2", T0, None, "1.json"),  # never consented
        ("c@x.io", "s3", T0 + 5, T0, "1.json"),  # latest, consenting
        ("c@x.io", "s3", T0, None, "2.json"),  # older, though in a later file
    )
    classified = tr.classify_customers(landed)
    assert exclusions(classified, ("email", "lastUpdateDate")) == {
        ("a@x.io", T0): "superseded",
        ("a@x.io", T0 + 10): "no consent",
        ("b@x.io", T0): "no consent",
        ("c@x.io", T0 + 5): None,
        ("c@x.io", T0): "superseded",
    }
    assert [r["email"] for r in tr.customer_trusted(classified).collect()] == ["c@x.io"]


def test_tie_on_last_update_is_broken_by_the_later_file(spark):
    landed = customers(
        spark, ("a@x.io", "old", T0, T0, "1.json"), ("a@x.io", "new", T0, T0, "2.json")
    )
    trusted = tr.customer_trusted(tr.classify_customers(landed))
    assert [r["serialNumber"] for r in trusted.collect()] == ["new"]


def test_a_tie_on_last_update_never_loses_a_withdrawal(spark):
    landed = customers(
        spark,
        ("a@x.io", "s1", T0, None, "1.json"),  # withdrawn, in the earlier file
        ("a@x.io", "s1", T0, T0, "2.json"),
        ("b@x.io", "s2", T0, T0 + 5, "1.json"),  # the later consent shares less
        ("b@x.io", "s2", T0, T0, "2.json"),
    )
    trusted = tr.customer_trusted(tr.classify_customers(landed))
    assert [(r["email"], r["shareWithResearchAsOfDate"]) for r in trusted.collect()] == [
        ("b@x.io", T0 + 5)
    ]


# -- accelerometer -------------------------------------------------------------------------
@pytest.fixture
def persons(spark):
    landed = customers(
        spark,
        ("a@x.io", "s1", T0, T0 + 100, "1.json"),  # consents at T0+100
        ("b@x.io", "s2", T0, None, "1.json"),  # no consent
    )
    return tr.people(tr.classify_customers(landed))


def test_privacy_keeps_trusted_readings_from_consent_on(spark, persons):
    landed = readings(
        spark, ("a@x.io", T0 + 99), ("a@x.io", T0 + 100), ("b@x.io", T0 + 200), ("z@x.io", T0)
    )
    classified = tr.classify_accelerometer(landed, persons=persons, rules=PRIVACY)
    assert exclusions(classified, ("user", "timestamp")) == {
        ("a@x.io", T0 + 99): "before consent",
        ("a@x.io", T0 + 100): None,
        ("b@x.io", T0 + 200): "no consent",
        ("z@x.io", T0): "unknown person",
    }
    expected = spark.createDataFrame(
        [("a@x.io", T0 + 100, 1.0, 2.0, 3.0, "a.json")],
        "user string, timestamp long, x double, y double, z double, source_file string",
    )
    assert_df_equality(tr.accelerometer_trusted(classified), expected, ignore_nullable=True)


def test_udacity_has_no_time_cut_off(spark, persons):
    landed = readings(spark, ("a@x.io", T0 + 99), ("b@x.io", T0 + 200))
    classified = tr.classify_accelerometer(landed, persons=persons, rules=UDACITY)
    assert exclusions(classified, ("user", "timestamp")) == {
        ("a@x.io", T0 + 99): None,
        ("b@x.io", T0 + 200): "no consent",
    }


def test_customer_curated_needs_a_trusted_reading(spark):
    landed = customers(spark, ("a@x.io", "s1", T0, T0, "1"), ("c@x.io", "s3", T0, T0, "1"))
    trusted = tr.customer_trusted(tr.classify_customers(landed))
    curated = cur.customer_curated(
        trusted, trusted_readings=readings(spark, ("a@x.io", T0), ("a@x.io", T0 + 1))
    )
    assert [r["email"] for r in curated.collect()] == ["a@x.io"]  # once, not per reading


# -- step trainer --------------------------------------------------------------------------
@pytest.fixture
def device_owners(spark):
    landed = customers(
        spark,
        ("a@x.io", "s1", T0, T0 + 100, "1"),  # curated owner of s1, consents at T0+100
        ("b@x.io", "s2", T0, None, "1"),  # s2: owner without consent
        ("c@x.io", "s3", T0, T0, "1"),  # s3: trusted, no accelerometer data
        ("d@x.io", "dup", T0, T0, "1"),  # dup: claimed by d and e, both curated
        ("e@x.io", "dup", T0, T0, "1"),
        ("f@x.io", "given", T0, None, "1"),  # given: f's, then f moved to another device...
        ("f@x.io", "f-new", T0 + 1, None, "1"),
        ("g@x.io", "given", T0, T0, "1"),  # ... and g, curated, claims it: both people's
    )
    classified = tr.classify_customers(landed)
    trusted = tr.customer_trusted(classified)
    curated = cur.customer_curated(
        trusted,
        trusted_readings=readings(
            spark, ("a@x.io", T0 + 100), ("d@x.io", T0), ("e@x.io", T0), ("g@x.io", T0)
        ),
    )
    claims = landed.select("email", "serialNumber")
    return tr.devices(tr.people(classified), curated=curated, claims=claims)


STEP_CASES = [(T0 + 99, "s1"), (T0 + 100, "s1"), (T0, "s2"), (T0, "s3"), (T0, "dup"), (T0, "zz")]
STEP_CASES += [(T0, "given"), (T0, "f-new")]


def test_privacy_step_readings_need_one_curated_owner_since_consent(spark, device_owners):
    classified = tr.classify_step_trainer(
        steps(spark, *STEP_CASES), device_owners=device_owners, rules=PRIVACY
    )
    assert exclusions(classified, ("sensorReadingTime", "serialNumber")) == {
        (T0 + 99, "s1"): "before consent",
        (T0 + 100, "s1"): None,
        (T0, "s2"): "no consent",
        (T0, "s3"): "no accelerometer data",
        (T0, "dup"): "ambiguous device",
        (T0, "zz"): "unknown person",
        (T0, "given"): "ambiguous device",
        (T0, "f-new"): "no consent",
    }


def test_udacity_step_readings_need_a_curated_serial(spark, device_owners):
    classified = tr.classify_step_trainer(
        steps(spark, *STEP_CASES), device_owners=device_owners, rules=UDACITY
    )
    assert exclusions(classified, ("sensorReadingTime", "serialNumber")) == {
        (T0 + 99, "s1"): None,
        (T0 + 100, "s1"): None,
        (T0, "s2"): "no consent",
        (T0, "s3"): "no consent",
        (T0, "dup"): None,  # both claimants are curated: the reference keeps it (once)
        (T0, "zz"): "unknown person",
        (T0, "given"): None,  # its one owner now is curated
        (T0, "f-new"): "no consent",
    }
    assert tr.step_trainer_trusted(classified).count() == 4
