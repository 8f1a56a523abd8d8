"""Erasure that stays: a person `forget` erased is not ingested again when delivered later.

`suppressions` holds keyed hashes of their e-mail address and of the devices only they
claimed. A run finds which identifiers of its new rows hash to one of them (distinct values,
hashed on the driver: no key in any plan), then drops those rows and quarantined lines under
the exclusion `erased person`, and removes the lines from the raw landing files.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import product

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_lakehouse.contracts.spark import with_identifiers
from stedi_lakehouse.contracts.tables import Dataset, Suppression, Table, landing_table
from stedi_lakehouse.erasure.identifiers import (
    Subject,
    fields_of,
    loose_text,
    normalised,
    visible,
)
from stedi_lakehouse.errors import ConfigError
from stedi_lakehouse.keys import fingerprint_record, keyed_hash
from stedi_lakehouse.lake.tables import Lake, distinct_values, local_frame, records_frame

SUPPRESSIONS = Table.SUPPRESSIONS
ERASED = "erased person"
SHARED_SERIAL = "shared serial"  # a device an erased person claimed with others
IDENTIFIER = {  # the column naming whose a record is, and its kind
    Dataset.CUSTOMER: ("email", "email"),
    Dataset.ACCELEROMETER: ("user", "email"),
    Dataset.STEP_TRAINER: ("serialNumber", "serial"),
}
NO_KEY = (
    "no pseudonym key: this lake has erased people whose later deliveries must be recognised; "
    "set STEDI_PSEUDONYM_KEY"
)
_TEXTS = T.ArrayType(T.StringType())
_EMAIL_LIKE = r"[^\s\"',;:<>(){}\[\]\\]+@[^\s\"',;:<>(){}\[\]\\]+"


@dataclass
class Suppressed:
    """The suppression list as a run uses it (read once per run)."""

    key: bytes | None
    hashes: frozenset[str] = frozenset()
    shared: frozenset[str] = frozenset()  # devices kept ambiguous
    found: dict[Dataset, Subject] = field(default_factory=dict)

    @classmethod
    def of(cls, lake: Lake, key: bytes | None) -> "Suppressed":
        if not lake.exists(SUPPRESSIONS):
            return cls(key)
        rows = lake.read(SUPPRESSIONS).select("identifier_hash", "kind").collect()
        if rows and not key:
            raise ConfigError(NO_KEY)
        hashes = frozenset(r[0] for r in rows if r[1] != SHARED_SERIAL)
        return cls(key, hashes, frozenset(r[0] for r in rows if r[1] == SHARED_SERIAL))

    def shared_devices(self, serials: DataFrame) -> set[str]:
        """Those of the serial numbers in `serials`' one column that an erased person claimed
        with others: they stay ambiguous (their readings would otherwise become the other
        claimant's, the erased person's use of the device included)."""
        if not self.shared:
            return set()
        values = distinct_values(serials, F.col(serials.columns[0]))
        return self.listed(values, kind=SHARED_SERIAL)

    def listed(self, serials: set[str], *, kind: str = "serial") -> set[str]:
        """Those of these serial numbers (normalised) listed as an erased person's own (or,
        kind=SHARED_SERIAL, as one they shared)."""
        if not serials:
            return set()
        key = self.key
        assert key is not None
        hashes = self.shared if kind == SHARED_SERIAL else self.hashes
        return {s for s in serials if keyed_hash(key, "serial", s) in hashes}

    def _erased(self, kind: str, values: set[str]) -> set[str]:
        """Those of `values` (as delivered) listed, normalised (an invisible character in one
        is not read: `identifiers.visible`). A lake made before 0.3 listed serial numbers as
        delivered, not in lower case: either spelling is theirs."""
        key = self.key
        assert key is not None

        def listed(value: str) -> bool:
            return keyed_hash(key, kind, value) in self.hashes

        read = {normalised(visible(v)) for v in values}
        return {v for v in read if listed(v)} | {normalised(v) for v in values if listed(v.strip())}

    def subject(
        self,
        dataset: Dataset,
        delivered: DataFrame,
        quarantined: DataFrame,
        *,
        lines: Iterable[bytes] = (),
    ) -> Subject:
        """Whose records, among these new ones (accepted, as `delivered`; quarantined; `lines`
        of files Spark cannot read, in Python), are of erased people."""
        if not self.hashes:
            return Subject()
        column, kind = IDENTIFIER[dataset]
        values = distinct_values(delivered, F.col(column))
        raw = F.col("raw_line")
        as_forget_reads = F.udf(identifiers_in, _TEXTS)
        found = F.concat(
            *(field_values(raw, name) for name in ("email", "user", "serialNumber")),
            as_forget_reads(raw),
        )
        values |= distinct_values(quarantined, F.explode(found))
        for line in lines:
            values |= set(identifiers_in(line))
        emails, serials = self._erased("email", values), self._erased("serial", values)
        subject = Subject(frozenset(emails), frozenset(serials))
        if subject:
            self.found[dataset] = subject
        return subject


def identifiers_in(line: bytes | str | None) -> list[str]:
    """What may name someone in a raw line, read as `forget` reads it: its identifier fields
    in any shape and letter case (`fields_of`), and each word of its text shaped like an
    address."""
    if line is None:
        return []
    fields = fields_of(line) or {}
    words = [w.rstrip(".") for w in re.findall(_EMAIL_LIKE, loose_text(line))]
    return [*words, *(value for values in fields.values() for value in values)]


def field_values(raw: Column, name: str) -> Column:
    """Every value a raw line gives field `name`, as delivered: JSON's reading of it and each
    string (its escapes decoded, as JSON reads it) or number spelt after the name in any letter
    case, or first in an array after it, so that both values of a field named twice are
    found."""
    quoted = F.regexp_extract_all(raw, F.lit(rf'(?i)"{name}"\s*:\s*\[?\s*("(?:[^"\\]|\\.)*")'), 1)
    strings = F.transform(
        quoted, lambda s: F.from_json(F.concat(F.lit("["), s, F.lit("]")), _TEXTS)[0]
    )
    number = F.regexp_extract_all(raw, F.lit(rf'(?i)"{name}"\s*:\s*\[?\s*(-?[0-9][0-9.eE+-]*)'), 1)
    return F.concat(F.array(F.get_json_object(raw, f"$.{name}")), strings, number)


def list_lower_case(lake: Lake, key: bytes | None, serials: set[str]) -> None:
    """List in lower case those of these serial numbers (spelt otherwise) that a lake made
    before 0.3 listed as delivered, about to lower them: a device an erased person shared
    stays ambiguous."""
    if not serials or not lake.exists(SUPPRESSIONS):
        return
    rows = lake.read(SUPPRESSIONS).select("identifier_hash", "kind", "erased_at").collect()
    if not rows:
        return
    if not key:
        raise ConfigError(NO_KEY)
    listed = {(r[0], r[1]): r[2] for r in rows}
    added = {}
    for serial, kind in product(sorted(serials), ("serial", SHARED_SERIAL)):
        # listed as the table holds it, or stripped (as the lines delivered later were)
        spellings = (
            listed.get((keyed_hash(key, "serial", s), kind)) for s in {serial, serial.strip()}
        )
        erased_at = next((at for at in spellings if at is not None), None)
        lowered = (keyed_hash(key, "serial", normalised(serial)), kind)
        if erased_at is not None and lowered not in listed:
            added[lowered] = erased_at
    if added:
        made = [Suppression(identifier_hash=h, kind=k, erased_at=t) for (h, k), t in added.items()]
        frame = records_frame(lake.spark, Suppression, made)
        lake.append(frame, SUPPRESSIONS, metadata=fingerprint_record(key))


def not_erased(lake: Lake, df: DataFrame, dataset: Dataset, subject: Subject) -> DataFrame:
    """Accepted rows less those of the subject (values joined as data, never spelt)."""
    if not subject:
        return df
    column, kind = IDENTIFIER[dataset]
    values = subject.emails if kind == "email" else subject.serials
    identified = with_identifiers(df, column)
    kept = identified.join(_values(lake, values), _is_one_of(column), "left_anti")
    return kept.drop(f"{column}_id")


def devices_claimed(
    lake: Lake, delivered: DataFrame, quarantined: DataFrame, subject: Subject
) -> set[str]:
    """The serial numbers (normalised) the subject's customer records claim: accepted (as
    `delivered`) or quarantined."""
    records = with_identifiers(delivered, "email", "serialNumber")
    theirs = records.join(_values(lake, subject.emails), _is_one_of("email"), "left_semi")
    claimed = distinct_values(theirs, F.col("serialNumber_id"))
    names = F.udf(lambda line: line is not None and subject.names(line), T.BooleanType())
    lines = quarantined.filter(names(F.col("raw_line"))).select("raw_line").collect()
    for (line,) in lines:
        claimed |= {normalised(visible(s)) for s in (fields_of(line) or {}).get("serial", ())}
    return {s for s in claimed if s}


def claimed_by_others(
    lake: Lake, delivered: DataFrame, serials: set[str], subject: Subject
) -> set[str]:
    """Those of `serials` another customer claims: in `customer_landing`, or in a record of
    `delivered` (accepted, as delivered) not the subject's."""
    if not serials:
        return set()
    devices = _values(lake, serials)
    others = with_identifiers(delivered, "email", "serialNumber")
    others = others.join(_values(lake, subject.emails), _is_one_of("email"), "left_anti")
    claimed = others.select("serialNumber_id")
    if lake.exists(landing := landing_table(Dataset.CUSTOMER)):
        stored = with_identifiers(lake.read(landing), "serialNumber")
        claimed = claimed.unionByName(stored.select("serialNumber_id"))
    claimed = claimed.join(devices, _is_one_of("serialNumber"), "left_semi")
    return distinct_values(claimed, F.col("serialNumber_id"))


def list_devices(lake: Lake, key: bytes | None, serials: set[str], *, kind: str = "serial") -> None:
    """Put these devices (serial numbers, normalised) on the list as an erased person's own
    (or, kind=SHARED_SERIAL, as one they shared with others)."""
    if not serials:
        return
    assert key is not None
    now = datetime.now(UTC)
    rows = [
        Suppression(identifier_hash=h, kind=kind, erased_at=now)
        for h in sorted(keyed_hash(key, "serial", s) for s in serials)
    ]
    lake.append(
        records_frame(lake.spark, Suppression, rows), SUPPRESSIONS, metadata=fingerprint_record(key)
    )


def _values(lake: Lake, values: Iterable[str]) -> DataFrame:
    """The values as a one-column table, broadcast: joined as data, never spelt in a plan."""
    schema = T.StructType([T.StructField("_key", T.StringType())])
    keys = local_frame(lake.spark, [{"_key": v} for v in sorted(values)], schema)
    return F.broadcast(keys)


def _is_one_of(column: str) -> Column:
    """`<column>_id` (`with_identifiers`) equals the `_values` row's value."""
    return F.col(f"{column}_id") == F.col("_key")


def lines_not_erased(quarantined: DataFrame, subject: Subject) -> DataFrame:
    """Quarantined lines less the subject's (decided line by line, as `forget` does)."""
    if not subject:
        return quarantined
    names = F.udf(lambda line: line is not None and subject.names(line), T.BooleanType())
    return quarantined.filter(~names(F.col("raw_line")))


def scrub_landing(lake: Lake, files: list[str], subject: Subject) -> dict[str, str]:
    """Remove the subject's lines from these raw landing files; the new version of each file
    rewritten (what the run bookmarks)."""
    rewritten = {}
    for relative in files:
        lines = lake.landing.lines(relative)
        if any(subject.names(line) for line in lines):
            keep = lambda line: not subject.names(line)  # noqa: E731
            rewritten[relative] = lake.landing.rewrite(relative, keep=keep)
    return rewritten
