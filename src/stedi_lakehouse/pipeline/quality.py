"""Checking the expectations of `contracts/expectations.py`.

The measures are pure functions giving count columns; a table's are aggregated together, in
one job (the references joined in first, `with_known`). `check` applies those of one moment of
a run to the lake and returns the outcomes; `enforce` stops the stage when an expectation at
level `fail` is not met. Every outcome is appended to `quality`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.expectations import IDENTIFIERS, Check, Expectation, Level, When
from stedi_lakehouse.contracts.spark import FieldRule, field_rules
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


# -- measures: each a count over a frame; a table's are taken together, in one job ----------
def quarantine_counts(validated: DataFrame) -> DataFrame:
    """(read, quarantined) of validated landing lines."""
    return validated.agg(
        F.count(F.lit(1)).alias("read"), F.count(F.col(val.REASON)).alias("quarantined")
    )


def surplus(columns: list[str]) -> Column:
    """Rows beyond the first per key (rows with the same null key alike)."""
    return F.count(F.lit(1)) - F.count_distinct(F.struct(*columns))


def breaches(rule: FieldRule) -> Column:
    """Non-null values of the rule's column that break a rule of the contract."""
    value = F.col(rule.name)
    holds = F.lit(True)
    for rule_check in rule.checks:
        holds = holds & rule_check.holds(value)
    return F.count(F.when(value.isNotNull() & ~holds, 1))


def with_known(df: DataFrame, column: str, *, referenced: DataFrame, flag: str) -> DataFrame:
    """`df` with `flag` true where its `column` value is in `referenced`'s one column, else
    null: a left join on distinct values, so no row is repeated."""
    known = referenced.select(F.col(referenced.columns[0]).alias(column)).distinct()
    return df.join(known.withColumn(flag, F.lit(True)), on=column, how="left")


def unknown(flag: str) -> Column:
    """Rows whose value `with_known` did not find."""
    return F.count(F.when(F.col(flag).isNull(), 1))


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


def _measure(
    lake: Lake, table: Table, expected: list[Expectation], pseudonym_key: bytes | None
) -> Callable[[], list[Outcome]]:
    """One table's expectations, measured in one job: a job per check would pay a query's
    planning and scheduling for each."""
    df = lake.read(table)
    measured = df
    counts: dict[int, Column] = {}
    identifiers: list[Expectation] = []
    rules: dict[str, FieldRule] = {}
    if any(e.check is Check.RANGE for e in expected):
        contract = CATALOGUE[table].contract_for(lake.table_rules(table))
        rules = {r.name: r for r in field_rules(contract)}
    for i, e in enumerate(expected):
        if e.check is Check.RANGE:
            counts[i] = breaches(rules[e.columns[0]])
        elif e.check is Check.UNIQUE:
            counts[i] = surplus(list(e.columns))
        elif e.check is Check.NO_IDENTIFIER:
            identifiers.append(e)
        elif e.check is Check.REFERENCES and e.references:
            ref_table, ref_column = e.references
            referenced = lake.read(ref_table)
            if ref_column == "subject_key":
                if not pseudonym_key:
                    continue
                referenced = subjects_of(referenced, pseudonym_key=pseudonym_key)
            else:
                referenced = referenced.select(ref_column)
            flag = f"_known_{i}"
            measured = with_known(measured, e.columns[0], referenced=referenced, flag=flag)
            counts[i] = unknown(flag)

    def outcomes() -> list[Outcome]:
        named = [Outcome(e, float(len(IDENTIFIERS & set(df.columns)))) for e in identifiers]
        if not counts:
            return named
        row = measured.agg(*[c.alias(f"_{i}") for i, c in counts.items()]).collect()[0]
        return named + [Outcome(expected[i], float(row[f"_{i}"])) for i in counts]

    return outcomes


def _table(lake: Lake, found: list[Expectation], pseudonym_key: bytes | None) -> list[Outcome]:
    """Every table's measures, the tables side by side: each is a small job."""
    by_table: dict[Table, list[Expectation]] = {}
    for e in found:
        by_table.setdefault(e.table, []).append(e)
    measures = [
        _measure(lake, table, expected, pseudonym_key)
        for table, expected in by_table.items()
        if lake.exists(table)
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
