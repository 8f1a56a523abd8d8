"""Checking the expectations of `contracts/expectations.py`.

The measures are pure DataFrame functions, each giving one row of counts. `check` applies
those of one moment of a run to the lake and returns the outcomes; `enforce` stops the stage
when an expectation at level `fail` is not met. Every outcome is appended to `quality`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from pydantic import BaseModel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.expectations import IDENTIFIERS, Check, Expectation, Level, When
from stedi_lakehouse.contracts.spark import field_rules
from stedi_lakehouse.contracts.tables import (
    CATALOGUE,
    Dataset,
    QualityOutcome,
    Table,
    quarantine_table,
)
from stedi_lakehouse.errors import StediError
from stedi_lakehouse.lake.tables import Lake, TableWrite, records_frame
from stedi_lakehouse.parallel import together
from stedi_lakehouse.transforms import validation as val
from stedi_lakehouse.transforms.pseudonym import hmac_sha256_hex


class ExpectationFailed(StediError):
    """An expectation at level `fail` was not met: the stage stopped before writing."""


@dataclass(frozen=True)
class Outcome:
    expectation: Expectation
    observed: float

    @property
    def passed(self) -> bool:
        return self.expectation.level is Level.DROP or self.observed <= self.expectation.threshold

    def says(self) -> str:
        e = self.expectation
        return f"{e.table}: {e.name}: observed {self.observed:g}, threshold {e.threshold:g}"


# -- measures: DataFrame -> one row ------------------------------------------------------------
def quarantine_counts(validated: DataFrame) -> DataFrame:
    """(read, quarantined) of validated landing lines."""
    return validated.agg(
        F.count(F.lit(1)).alias("read"), F.count(F.col(val.REASON)).alias("quarantined")
    )


def missing_references(df: DataFrame, column: str, *, referenced: DataFrame) -> DataFrame:
    """(missing): rows of `df` whose `column` value is not in `referenced`'s one column."""
    known = referenced.select(F.col(referenced.columns[0]).alias(column)).distinct()
    return df.join(known, on=column, how="left_anti").agg(F.count(F.lit(1)).alias("missing"))


def surplus_keys(df: DataFrame, columns: list[str]) -> DataFrame:
    """(surplus): rows beyond the first per key."""
    per_key = df.groupBy(*columns).count()
    return per_key.agg(F.coalesce(F.sum(F.col("count") - 1), F.lit(0)).alias("surplus"))


def rule_breaches(df: DataFrame, *, contract: type[BaseModel], columns: list[str]) -> DataFrame:
    """One count per column: its non-null values that break a rule of the contract."""
    rules = {r.name: r for r in field_rules(contract)}
    counts = []
    for name in columns:
        value = F.col(name)
        holds = F.lit(True)
        for rule_check in rules[name].checks:
            holds = holds & rule_check.holds(value)
        counts.append(F.count(F.when(value.isNotNull() & ~holds, 1)).alias(name))
    return df.agg(*counts)


def latest_checks(quality: DataFrame) -> DataFrame:
    """The `quality` rows of each table's latest check."""
    latest = F.max("checked_at").over(Window.partitionBy("table"))
    return quality.withColumn("_latest", latest).filter(F.col("checked_at") == F.col("_latest"))


def subjects_of(customers: DataFrame, *, pseudonym_key: bytes) -> DataFrame:
    """(subject_key) of curated customers, as the ML table keys them."""
    return customers.select(hmac_sha256_hex(F.col("email"), key=pseudonym_key).alias("key"))


# -- checking -----------------------------------------------------------------------------
def _landing(found: list[Expectation], counts: dict[Dataset, tuple[int, int]]):
    for dataset, (read, quarantined) in counts.items():
        for e in found:
            if e.table == quarantine_table(dataset) and read >= e.least_lines:
                share = quarantined / read if read else 0.0
                yield Outcome(e, float(quarantined if e.check is Check.DROPPED else share))


def _measures(lake: Lake, table: Table, expected: list[Expectation], pseudonym_key: bytes | None):
    """One table's expectations as independent measures: each gives its outcomes."""
    df = lake.read(table)
    ranged = [e for e in expected if e.check is Check.RANGE]
    if ranged:
        contract = CATALOGUE[table].contract_for(lake.table_rules(table))

        def ranges() -> list[Outcome]:
            row = rule_breaches(df, contract=contract, columns=[e.columns[0] for e in ranged])
            breaches = row.collect()[0].asDict()
            return [Outcome(e, float(breaches[e.columns[0]])) for e in ranged]

        yield ranges
    for e in expected:
        if e.check is Check.UNIQUE:
            yield partial(_unique, df, e)
        elif e.check is Check.NO_IDENTIFIER:
            yield partial(lambda e: [Outcome(e, float(len(IDENTIFIERS & set(df.columns))))], e)
        elif e.check is Check.REFERENCES and e.references:
            ref_table, ref_column = e.references
            referenced = lake.read(ref_table)
            if ref_column == "subject_key":
                if not pseudonym_key:
                    continue
                referenced = subjects_of(referenced, pseudonym_key=pseudonym_key)
            else:
                referenced = referenced.select(ref_column)
            yield partial(_references, df, e, referenced)


def _unique(df: DataFrame, e: Expectation) -> list[Outcome]:
    return [Outcome(e, float(surplus_keys(df, list(e.columns)).collect()[0]["surplus"]))]


def _references(df: DataFrame, e: Expectation, referenced: DataFrame) -> list[Outcome]:
    missing = missing_references(df, e.columns[0], referenced=referenced)
    return [Outcome(e, float(missing.collect()[0]["missing"]))]


def _table(lake: Lake, found: list[Expectation], pseudonym_key: bytes | None) -> list[Outcome]:
    """Every table's measures, run side by side: each is a small job."""
    by_table: dict[Table, list[Expectation]] = {}
    for e in found:
        by_table.setdefault(e.table, []).append(e)
    measures = [
        measure
        for table, expected in by_table.items()
        if lake.exists(table)
        for measure in _measures(lake, table, expected, pseudonym_key)
    ]
    return [o for outcomes in together(*measures) for o in outcomes]


def check(
    lake: Lake,
    expectations: list[Expectation],
    when: When,
    *,
    landing: dict[Dataset, tuple[int, int]] | None = None,
    pseudonym_key: bytes | None = None,
) -> list[Outcome]:
    """The outcomes of the expectations checked `when` (the landing ones on `landing`: per
    dataset with new files, their lines read and quarantined)."""
    found = [e for e in expectations if e.when is when]
    if when is When.BEFORE_TRUSTED:
        return list(_landing(found, landing or {}))
    with lake.described(f"expectations {when}"):
        return _table(lake, found, pseudonym_key)


def enforce(outcomes: list[Outcome]) -> None:
    failed = [o for o in outcomes if o.expectation.level is Level.FAIL and not o.passed]
    if failed:
        raise ExpectationFailed(
            "expectation failed, nothing of the stage was committed: "
            + "; ".join(o.says() for o in failed)
        )


def record_quality(lake: Lake, run_id: str, outcomes: list[Outcome]) -> TableWrite:
    now = datetime.now(UTC)
    rows = [
        QualityOutcome(
            run_id=run_id,
            checked_at=now,
            checked=str(o.expectation.when),
            table=o.expectation.table,
            expectation=o.expectation.name,
            level=str(o.expectation.level),
            observed=o.observed,
            threshold=None if o.expectation.level is Level.DROP else o.expectation.threshold,
            passed=o.passed,
        )
        for o in outcomes
    ]
    return lake.append(records_frame(lake.spark, QualityOutcome, rows), Table.QUALITY)
