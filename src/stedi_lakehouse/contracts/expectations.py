"""What each table is expected to hold, declared once beside the contracts, with the levels of
declarative pipelines: `warn` (record it and go on), `drop` (the row leaves, with its reason:
the quarantine), `fail` (the stage stops before it commits any table).

An expectation is checked where a failure can still stop something: on a stage's *inputs*,
before the stage writes (the new landing lines before the trusted stage; the trusted tables
before the curated stage). The curated tables are the end of the line: their expectations are
checked after the run's commits and can only warn. Value ranges come from the contracts'
field types, so they cannot drift from validation.
"""

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from stedi_lakehouse.contracts.spark import field_rules
from stedi_lakehouse.contracts.tables import (
    CATALOGUE,
    Dataset,
    Table,
    Zone,
    quarantine_table,
    tables_in,
)
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.settings import QualitySettings


class Level(StrEnum):
    WARN = "warn"
    DROP = "drop"
    FAIL = "fail"


class Check(StrEnum):
    QUARANTINE_SHARE = "quarantine share"  # observed: quarantined / read, of the new lines
    DROPPED = "dropped"  # observed: lines quarantined (a `drop`: never fails)
    REFERENCES = "references"  # observed: rows whose value the referenced column lacks
    UNIQUE = "unique"  # observed: rows beyond the first per key
    RANGE = "range"  # observed: rows outside [low, high]
    NO_IDENTIFIER = "no identifier"  # observed: direct identifier columns the table has


class When(StrEnum):
    BEFORE_TRUSTED = "before trusted"  # on the new landing lines
    BEFORE_CURATED = "before curated"  # on the trusted tables
    AFTER_CURATED = "after curated"  # on the curated tables, after their commits


@dataclass(frozen=True)
class Expectation:
    table: Table
    check: Check
    level: Level
    when: When
    columns: tuple[str, ...] = ()
    references: tuple[Table, str] | None = None  # (table, column)
    rule: str = ""  # RANGE: what the contract says of the column's values
    threshold: float = 0.0  # passed: observed <= threshold (a `drop` always passes)
    least_lines: int = 0  # QUARANTINE_SHARE: checked from this many new lines on

    @property
    def name(self) -> str:
        cols = ", ".join(self.columns)
        if self.check is Check.REFERENCES and self.references:
            return f"{cols} in {'.'.join(self.references)}"
        if self.check is Check.RANGE:
            return f"{cols} {self.rule}"
        if self.check is Check.QUARANTINE_SHARE:
            return f"quarantine share <= {self.threshold:g}"
        return f"{self.check} ({cols})" if cols else str(self.check)


# Columns that name a person or a device: none may reach a table shared for research.
IDENTIFIERS = frozenset({"email", "user", "customerName", "phone", "birthDay", "serialNumber"})


def ranges(table: Table, contract: type[BaseModel], when: When, level: Level) -> list[Expectation]:
    """One expectation per column with value rules in the contract (bounds, finite numbers,
    non-empty text, e-mail addresses): the rules validation applies, from the same types."""
    return [
        Expectation(
            table, Check.RANGE, level, when, (r.name,), rule=" and ".join(c.says for c in r.checks)
        )
        for r in field_rules(contract)
        if r.checks
    ]


def expectations(rules: Rules, quality: QualitySettings) -> list[Expectation]:
    """Every expectation of the lake under `rules`."""
    landing = [
        e
        for d in Dataset
        for e in (
            Expectation(quarantine_table(d), Check.DROPPED, Level.DROP, When.BEFORE_TRUSTED),
            Expectation(
                quarantine_table(d),
                Check.QUARANTINE_SHARE,
                Level.WARN,
                When.BEFORE_TRUSTED,
                threshold=quality.quarantine_warn_share,
            ),
            Expectation(
                quarantine_table(d),
                Check.QUARANTINE_SHARE,
                Level.FAIL,
                When.BEFORE_TRUSTED,
                threshold=quality.quarantine_fail_share,
                least_lines=quality.quarantine_fail_lines,
            ),
        )
    ]
    before, after, fail = When.BEFORE_CURATED, When.AFTER_CURATED, Level.FAIL
    trusted = [
        Expectation(Table.CUSTOMER_TRUSTED, Check.UNIQUE, fail, before, ("email",)),
        Expectation(
            Table.ACCELEROMETER_TRUSTED,
            Check.REFERENCES,
            fail,
            before,
            ("user",),
            references=(Table.CUSTOMER_TRUSTED, "email"),
        ),
        Expectation(
            Table.STEP_TRAINER_TRUSTED,
            Check.REFERENCES,
            fail,
            before,
            ("serialNumber",),
            references=(Table.CUSTOMER_TRUSTED, "serialNumber"),
        ),
        *(
            e
            for name in tables_in(Zone.TRUSTED)
            for e in ranges(name, CATALOGUE[name].contract, before, fail)
        ),
    ]
    ml = CATALOGUE[Table.MACHINE_LEARNING_CURATED].contract_for(rules)
    curated = [
        Expectation(Table.CUSTOMER_CURATED, Check.UNIQUE, Level.WARN, after, ("email",)),
        Expectation(Table.CUSTOMER_CURATED, Check.NO_IDENTIFIER, Level.WARN, after),
        Expectation(Table.MACHINE_LEARNING_CURATED, Check.NO_IDENTIFIER, Level.WARN, after),
        *ranges(Table.MACHINE_LEARNING_CURATED, ml, after, Level.WARN),
    ]
    if rules is Rules.PRIVACY:
        curated.append(
            Expectation(
                Table.MACHINE_LEARNING_CURATED,
                Check.REFERENCES,
                Level.WARN,
                after,
                ("subject_key",),
                references=(Table.CUSTOMER_CURATED, "subject_key"),
            )
        )
    return landing + trusted + curated
