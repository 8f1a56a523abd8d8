"""Curated zone: the customers with usable readings, and the ML-ready table pairing
step-trainer and accelerometer readings."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.spark import columns
from stedi_lakehouse.contracts.tables import CustomerCurated, MachineLearningCuratedUdacity
from stedi_lakehouse.transforms.pseudonym import hmac_sha256_hex


def customer_curated(trusted_customers: DataFrame, *, trusted_readings: DataFrame) -> DataFrame:
    """Trusted customers with at least one trusted accelerometer reading."""
    with_readings = trusted_readings.select(F.col("user").alias("email")).distinct()
    return trusted_customers.join(with_readings, on="email", how="left_semi").select(
        *columns(CustomerCurated)
    )


def pair_same_person(
    step_readings: DataFrame,
    *,
    accelerometer_readings: DataFrame,
    curated_customers: DataFrame,
    pseudonym_key: bytes,
) -> DataFrame:
    """`privacy`: each step reading with the accelerometer readings of the device's owner
    (serial -> customer -> email) at the same millisecond. Trusted step readings come only from
    devices with one owner, so the serial -> owner join cannot fan out."""
    # the key is computed once per owner (a small table), not once per pair
    owners = curated_customers.select(
        "serialNumber",
        F.col("email").alias("_owner"),
        hmac_sha256_hex(F.col("email"), key=pseudonym_key).alias("subject_key"),
    )
    steps = step_readings.join(F.broadcast(owners), on="serialNumber", how="inner")
    pairs = steps.join(
        accelerometer_readings,
        on=(F.col("user") == F.col("_owner")) & (F.col("timestamp") == F.col("sensorReadingTime")),
        how="inner",
    )
    return pairs.select(
        "subject_key",
        F.col("sensorReadingTime").alias("reading_time_ms"),
        F.col("distanceFromObject").alias("distance_from_object"),
        "x",
        "y",
        "z",
    )


def pair_same_time(step_readings: DataFrame, *, accelerometer_readings: DataFrame) -> DataFrame:
    """`udacity`: every step reading with every accelerometer reading at the same millisecond,
    whoever took it, as the reference Glue project does."""
    return step_readings.join(
        accelerometer_readings,
        on=F.col("sensorReadingTime") == F.col("timestamp"),
        how="inner",
    ).select(*columns(MachineLearningCuratedUdacity))
