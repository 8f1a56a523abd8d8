"""Trusted zone: which customers and readings may be used, and why the others may not.

Each `classify_*` transform keeps every input row and adds `exclusion`: null for a row that may
be used, else the reason it may not. The trusted tables are the rows without one; the reasons are
counted in each run's report, so accepted = trusted + excluded, always.
"""

from collections.abc import Collection
from enum import StrEnum

from pyspark.sql import DataFrame, Window, WindowSpec
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_lakehouse.contracts.spark import columns
from stedi_lakehouse.contracts.tables import (
    AccelerometerTrusted,
    CustomerTrusted,
    StepTrainerTrusted,
)
from stedi_lakehouse.presets import Rules

EXCLUSION = "exclusion"
CONSENT_MS = "shareWithResearchAsOfDate"


class Exclusion(StrEnum):
    SUPERSEDED = "superseded"
    NO_CONSENT = "no consent"
    UNKNOWN_PERSON = "unknown person"
    BEFORE_CONSENT = "before consent"
    AMBIGUOUS_DEVICE = "ambiguous device"
    NO_ACCELEROMETER_DATA = "no accelerometer data"
    DUPLICATE = "duplicate"


def _reason(reason: Exclusion) -> F.Column:
    return F.lit(str(reason))


def usable(classified: DataFrame) -> DataFrame:
    return classified.filter(F.col(EXCLUSION).isNull())


def _latest_first() -> WindowSpec:
    """Latest record first. On a tie on lastUpdateDate the record sharing least wins (no
    consent, else the later consent: a withdrawal never loses a tie), then the later source
    file, then the record's own values, so the winner never depends on partitioning."""
    return Window.partitionBy("email").orderBy(
        F.col("lastUpdateDate").desc(),
        F.col(CONSENT_MS).desc_nulls_first(),
        F.col("source_file").desc(),
        *[F.col(name).desc_nulls_last() for name in columns(CustomerTrusted)],
    )


def classify_customers(customer_landing: DataFrame) -> DataFrame:
    """One row per customer record; the latest record per email is the person."""
    rank = F.row_number().over(_latest_first())
    return customer_landing.withColumn(
        EXCLUSION,
        F.when(rank > 1, _reason(Exclusion.SUPERSEDED)).when(
            F.col(CONSENT_MS).isNull(), _reason(Exclusion.NO_CONSENT)
        ),
    )


def people(classified_customers: DataFrame) -> DataFrame:
    """The latest record of every customer, consenting or not."""
    return classified_customers.filter(
        F.col(EXCLUSION).isNull() | (F.col(EXCLUSION) != str(Exclusion.SUPERSEDED))
    ).select(*columns(CustomerTrusted))


def customer_trusted(classified_customers: DataFrame) -> DataFrame:
    return usable(classified_customers).select(*columns(CustomerTrusted))


def classify_accelerometer(readings: DataFrame, *, persons: DataFrame, rules: Rules) -> DataFrame:
    """Readings of trusted customers; under `privacy` only those taken since consent."""
    owners = persons.select(F.col("email").alias("_email"), F.col(CONSENT_MS).alias("_consent_ms"))
    joined = readings.join(F.broadcast(owners), F.col("user") == F.col("_email"), how="left")
    before_consent = F.col("timestamp") < F.col("_consent_ms")
    if rules is Rules.UDACITY:
        before_consent = F.lit(False)
    return joined.withColumn(
        EXCLUSION,
        F.when(F.col("_email").isNull(), _reason(Exclusion.UNKNOWN_PERSON))
        .when(F.col("_consent_ms").isNull(), _reason(Exclusion.NO_CONSENT))
        .when(before_consent, _reason(Exclusion.BEFORE_CONSENT)),
    ).drop("_email", "_consent_ms")


def accelerometer_trusted(classified_readings: DataFrame) -> DataFrame:
    return usable(classified_readings).select(*columns(AccelerometerTrusted))


def devices(
    persons: DataFrame,
    *,
    curated: DataFrame,
    claims: DataFrame,
    shared: Collection[str] = (),
) -> DataFrame:
    """One row per serial number a customer's latest record claims: how many customers own it,
    how many of them are curated, and (meaningful when it has one owner) that owner and
    consent time. Every customer any record of whom (`claims`) ever claimed it counts as an
    owner: a device handed from one customer to another holds both people's readings, told
    apart by nothing. A `shared` serial counts one more owner (an erased person's claim)."""
    curated_emails = curated.select("email", F.lit(True).alias("_curated"))
    owners = F.count_distinct("email")
    if shared:
        owners = owners + F.col("serialNumber").isin(sorted(shared)).cast("int")
    claimants = claims.groupBy("serialNumber").agg(F.count_distinct("email").alias("_claimants"))
    return (
        persons.join(F.broadcast(curated_emails), on="email", how="left")
        .groupBy("serialNumber")
        .agg(
            owners.alias("owners"),
            F.count_distinct(F.when(F.col("_curated"), F.col("email"))).alias("curated_owners"),
            F.min("email").alias("owner_email"),
            F.min(CONSENT_MS).alias("owner_consent_ms"),
        )
        .join(claimants, on="serialNumber", how="left")
        .withColumn("owners", F.greatest("owners", "_claimants"))  # greatest skips null
        .drop("_claimants")
    )


def _step_exclusion(rules: Rules) -> F.Column:
    unknown = F.col("owners").isNull()
    if rules is Rules.UDACITY:
        return F.when(unknown, _reason(Exclusion.UNKNOWN_PERSON)).when(
            F.col("curated_owners") == 0, _reason(Exclusion.NO_CONSENT)
        )
    return (
        F.when(unknown, _reason(Exclusion.UNKNOWN_PERSON))
        .when(F.col("owners") > 1, _reason(Exclusion.AMBIGUOUS_DEVICE))
        .when(F.col("owner_consent_ms").isNull(), _reason(Exclusion.NO_CONSENT))
        .when(F.col("curated_owners") == 0, _reason(Exclusion.NO_ACCELEROMETER_DATA))
        .when(
            F.col("sensorReadingTime") < F.col("owner_consent_ms"),
            _reason(Exclusion.BEFORE_CONSENT),
        )
    )


def classify_step_trainer(
    readings: DataFrame, *, device_owners: DataFrame, rules: Rules
) -> DataFrame:
    """`privacy`: readings of a device with exactly one owner, who is curated, taken since that
    owner's consent. `udacity`: readings of any serial a curated customer claims."""
    return (
        readings.join(F.broadcast(device_owners), on="serialNumber", how="left")
        .withColumn(EXCLUSION, _step_exclusion(rules))
        .drop("owners", "curated_owners", "owner_email", "owner_consent_ms")
    )


def step_trainer_trusted(classified_readings: DataFrame) -> DataFrame:
    return usable(classified_readings).select(*columns(StepTrainerTrusted))


_EARLIER, DELIVERED, _NTH = "_earlier", "_delivered", "_nth"
DELIVERY_ORDER = T.StructType(
    [T.StructField("source_file", T.StringType()), T.StructField(DELIVERED, T.IntegerType())]
)


def exclude_duplicates(
    classified: DataFrame,
    *,
    key: tuple[str, ...],
    earlier: DataFrame | None,
    delivery_order: DataFrame,
) -> DataFrame:
    """Mark `duplicate` each classified reading whose `key` arrived before: in `earlier` (landing
    rows that earlier runs classified, outside what this one recomputes) or in a landing file
    delivered before its own. `delivery_order` (DELIVERY_ORDER) ranks the files earlier
    runs processed; the others come after them, by name. Of identical lines in one file, one is
    kept. The first copy keeps its own status, so a file sent twice changes no trusted row."""
    rows = classified.withColumn(_EARLIER, F.lit(False))
    if earlier is not None:
        before = earlier.join(classified.select(*key), on=list(key), how="left_semi")
        rows = rows.unionByName(
            before.select(*key, "source_file").withColumn(_EARLIER, F.lit(True)),
            allowMissingColumns=True,
        )
    first = Window.partitionBy(*key).orderBy(
        F.col(_EARLIER).desc(), F.col(DELIVERED).asc_nulls_last(), F.col("source_file")
    )
    ranked = rows.join(F.broadcast(delivery_order), on="source_file", how="left")
    return (
        ranked.withColumn(_NTH, F.row_number().over(first))
        .filter(~F.col(_EARLIER))
        .withColumn(
            EXCLUSION,
            F.when(F.col(_NTH) > 1, _reason(Exclusion.DUPLICATE)).otherwise(F.col(EXCLUSION)),
        )
        .drop(_EARLIER, DELIVERED, _NTH)
    )


USABLE = "usable"


def exclusion_metrics() -> list[F.Column]:
    """Aggregates counting the usable rows and each exclusion reason of a classified frame, for
    `DataFrame.observe`: counted while the trusted table is written, not in a second pass."""
    is_reason = {USABLE: F.col(EXCLUSION).isNull()} | {
        str(reason): F.col(EXCLUSION) == str(reason) for reason in Exclusion
    }
    return [F.count_if(condition).alias(name) for name, condition in is_reason.items()]
