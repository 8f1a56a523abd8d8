"""The right to erasure: one person out of every zone and every file of the lake.

`forget(lake, email)` removes the person's customer records, their accelerometer readings and
the step-trainer readings of every device only they claimed, from the landing, quarantine,
trusted and curated tables and from the raw landing files; then purges what could still hold
them: the tables' old data files (VACUUM, its retention check lifted for this command only) and
the transaction log before the erasure (whose per-file min/max statistics name values of the
old files). Rows are removed with a MERGE against a small in-memory key table, so no commit's
predicate spells the identifiers either. The erasure is recorded in `erasures` by counts only.

Landing files that held the person keep their names, so runs treat them as processed: no later
run brings the person back from them.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import Column
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.spark import spark_schema
from stedi_lakehouse.contracts.tables import Dataset, Erasure, landing_table, quarantine_table
from stedi_lakehouse.errors import ConfigError, LakeError
from stedi_lakehouse.io import Lake, local_frame
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.transforms.pseudonym import subject_keys

WORD_CHAR = r"[A-Za-z0-9._%+\-]"  # what may surround an e-mail address or serial inside a word


@dataclass
class ErasureReport:
    rows_removed: dict[str, int] = field(default_factory=dict)
    landing_files_rewritten: int = 0
    tables_purged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Person:
    email: str  # lower case: e-mail addresses are matched without regard to case
    spellings: frozenset[str]  # as stored (subject keys are keyed on the exact text)
    devices: frozenset[str]  # serial numbers only this person claimed

    @property
    def patterns(self) -> list[str]:
        """Regular expressions (the same in Java and Python) finding the e-mail address or an
        own serial number in a raw line, in any case, as a whole word: `a@b.com` does not
        match inside `xa@b.com`."""
        words = sorted({self.email, *(serial.lower() for serial in self.devices)})
        return [rf"(?i)(?<!{WORD_CHAR}){re.escape(word)}(?!{WORD_CHAR})" for word in words]

    def mentioned_in(self, text: Column) -> Column:
        """Whether a raw line names the person or one of their devices."""
        condition = F.lit(False)
        for pattern in self.patterns:
            condition = condition | text.rlike(pattern)
        return condition

    def mentions(self, line: str) -> bool:
        """`mentioned_in`, for a line in Python."""
        return any(re.search(pattern, line) for pattern in self.patterns)


def find_person(lake: Lake, email: str) -> Person:
    target = email.strip().lower()
    if not target:
        raise LakeError("--email must not be empty")
    spellings: set[str] = set()
    claimed: set[str] = set()
    if lake.exists(landing_table(Dataset.CUSTOMER)):
        customers = lake.read(landing_table(Dataset.CUSTOMER))
        theirs = customers.filter(F.lower("email") == target).select("email", "serialNumber")
        for row in theirs.collect():
            spellings.add(row["email"])
            claimed.add(row["serialNumber"])
        others = customers.filter(
            (F.lower("email") != target) & F.col("serialNumber").isin(sorted(claimed))
        )
        claimed -= {r[0] for r in others.select("serialNumber").distinct().collect()}
    if lake.exists(landing_table(Dataset.ACCELEROMETER)):
        readings = lake.read(landing_table(Dataset.ACCELEROMETER))
        users = readings.filter(F.lower("user") == target).select("user").distinct()
        spellings |= {r[0] for r in users.collect()}
    return Person(target, frozenset(spellings), frozenset(claimed))


Match = tuple[list[str], Callable[[Column], Column]]  # keys, and when a row `t` matches one


def _person_is(column: str, person: Person) -> Match:
    return [person.email], lambda key: F.lower(F.col(f"t.{column}")) == key


def _device_is(column: str, person: Person) -> Match:
    return sorted(person.devices), lambda key: F.col(f"t.{column}") == key


def _line_mentions(person: Person) -> Match:
    return person.patterns, lambda key: F.expr("t.raw_line RLIKE s.key")


def forget(lake: Lake, email: str, *, pseudonym_key: bytes | None, progress=print) -> ErasureReport:
    """Erase the person with this e-mail address from the lake (see the module's docstring)."""
    person = find_person(lake, email)
    report = ErasureReport()
    ml = "machine_learning_curated"
    ml_rules = lake.table_rules(ml) if lake.exists(ml) else None
    if ml_rules is Rules.PRIVACY and not pseudonym_key:
        raise ConfigError(
            "no pseudonym key: set STEDI_PSEUDONYM_KEY, the key machine_learning_curated was "
            "built with, so that the person's pairs can be found"
        )
    matches: dict[str, Match] = {
        "customer_landing": _person_is("email", person),
        "customer_trusted": _person_is("email", person),
        "customer_curated": _person_is("email", person),
        "accelerometer_landing": _person_is("user", person),
        "accelerometer_trusted": _person_is("user", person),
        "step_trainer_landing": _device_is("serialNumber", person),
        "step_trainer_trusted": _device_is("serialNumber", person),
        **{quarantine_table(d): _line_mentions(person) for d in Dataset},
    }
    if ml_rules is Rules.PRIVACY:
        keys = sorted(subject_keys(set(person.spellings), key=pseudonym_key))
        matches[ml] = keys, lambda key: F.col("t.subject_key") == key
    elif ml_rules is Rules.UDACITY:
        matches[ml] = (
            [person.email, *sorted(person.devices)],
            lambda key: (F.lower(F.col("t.user")) == key) | (F.col("t.serialNumber") == key),
        )

    for table, (keys, matching) in matches.items():
        if lake.exists(table):
            progress(f"removing from {table}")
            if removed := lake.delete_rows(table, keys, matching):
                report.rows_removed[table] = removed

    progress("rewriting landing files")
    for dataset in Dataset:
        for relative in lake.landing_files_mentioning(dataset, person.mentioned_in(F.col("value"))):
            lake.rewrite_landing_file(relative, keep=lambda line: not person.mentions(line))
            report.landing_files_rewritten += 1
    if not report.rows_removed and not report.landing_files_rewritten:
        raise LakeError("nobody with that e-mail address is in the lake: nothing was changed")

    for table in report.rows_removed:
        progress(f"purging old files and log of {table}")
        lake.purge_history(table)
        report.tables_purged.append(table)
    record = {
        "erased_at": datetime.now(UTC),
        "rows_removed": report.rows_removed,
        "landing_files_rewritten": report.landing_files_rewritten,
    }
    lake.append(local_frame(lake.spark, [record], spark_schema(Erasure)), "erasures")
    lake.registered()
    return report
