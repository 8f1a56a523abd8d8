"""The right to erasure: one person out of every zone, every file and every version of the lake.

`forget(lake, email)` runs these steps; each can be interrupted and the same command run again
finishes the erasure (the journal, `PendingErasure`, holds keyed hashes, never the address):

1. the journal entry, then the person's e-mail and own devices on the suppression list
   (`suppressions`), so no run ingests them again;
2. their rows, from every landing, quarantine, trusted and curated table (a MERGE against a
   small key table, so no commit's predicate spells an identifier);
3. their lines, from the raw landing files (matched by decoding each line: `identifiers.py`);
   a file left unread because its name holds their address moves to a name without it (none
   if nothing else is left of it); files runs do not read are searched too, text with a
   byte-order mark decoded and rewritten in its encoding; one that is not text and spells
   their address stops the erasure before step 6, naming the file;
4. the text of `runs` that names them (a failed run's error);
5. every older version of every table (the files its current version does not use, then the
   log before that version), whether or not the table held them today: a person who withdrew
   consent is gone from the current version but still in the earlier ones;
6. the erasure's record in `erasures` (counts only), then the journal entry.

Devices only they claimed are theirs: those readings go too. Landing files keep their names, so
runs treat them as processed.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from pydantic import BaseModel, ValidationError
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.spark import (
    identifier,
    in_composed_form,
    spark_schema,
    with_identifiers,
)
from stedi_lakehouse.contracts.tables import (
    CATALOGUE,
    Dataset,
    Erasure,
    PendingErasure,
    Suppression,
    Table,
    landing_table,
    quarantine_table,
)
from stedi_lakehouse.erasure.identifiers import Subject, fields_of, normalised, visible
from stedi_lakehouse.erasure.suppression import SHARED_SERIAL, field_values
from stedi_lakehouse.errors import ConfigError, LakeError
from stedi_lakehouse.keys import (
    FINGERPRINT_PROPERTY,
    check_fingerprint,
    fingerprint,
    fingerprint_record,
    keyed_hash,
)
from stedi_lakehouse.lake.layout import LINKED, NAMES_A_PERSON, addresses_in
from stedi_lakehouse.lake.maintenance import purge_history
from stedi_lakehouse.lake.tables import Lake, distinct_values, local_frame, records_frame
from stedi_lakehouse.parallel import together
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.transforms.pseudonym import subject_keys

JOURNAL = "_erasures"
ML = Table.MACHINE_LEARNING_CURATED
SUPPRESSIONS = Table.SUPPRESSIONS
REDACTED = "(redacted: it named an erased person)"
INVISIBLE = r"[\p{Cc}\p{Cf}]"  # control and format characters, as `identifiers.visible` drops


class _Key(BaseModel):
    key: str


@dataclass
class ErasureReport:
    rows_removed: dict[str, int] = field(default_factory=dict)
    landing_files_rewritten: int = 0
    runs_redacted: int = 0
    tables_purged: list[str] = field(default_factory=list)
    resumed: bool = False


def pending_erasures(lake: Lake) -> list[str]:
    """The journal entries of erasures that did not finish (keyed hashes)."""
    return [
        name.removesuffix(".json")
        for name in lake.storage.names_in(JOURNAL)
        if name.endswith(".json")
    ]


def check_key(lake: Lake, key: bytes) -> None:
    """Refuse a key other than the one the lake's keyed tables and unfinished erasures were
    made with."""
    for table in (ML, SUPPRESSIONS):
        check_fingerprint(table, recorded_fingerprint(lake, table), key)
    for person in pending_erasures(lake):
        stored = lake.storage.read(f"{JOURNAL}/{person}.json")
        made_with = None if stored is None else _journal_entry(stored).key_fingerprint
        check_fingerprint("an erasure that did not finish", made_with, key)


def recorded_fingerprint(lake: Lake, table: str) -> str | None:
    """The fingerprint of the key a keyed table was built with: its property or, when a
    process stopped between a keyed write and setting it, that write's metadata."""
    if not lake.exists(table):
        return None
    recorded = lake.table_property(table, FINGERPRINT_PROPERTY)
    return recorded or lake.table_metadata(table).get(FINGERPRINT_PROPERTY)


def _keys(lake: Lake, values: set[str]) -> DataFrame:
    """The values as a small key table `s` (column `key`): joined, not spelt in a plan, so no
    query plan or event log of an erasure names the person."""
    schema = spark_schema(_Key)
    return local_frame(lake.spark, [{"key": v} for v in sorted(values)], schema).alias("s")


def _landing_files_naming(lake: Lake, dataset: Dataset, subject: Subject) -> list[str]:
    """The landing files of `dataset` holding a line of the subject's."""
    candidates = _candidate_files(lake, dataset, subject)
    return [f for f in candidates if any(subject.names(line) for line in lake.landing.lines(f))]


def _named_after(lake: Lake, dataset: Dataset, email: str, key: bytes) -> dict[str, str]:
    """The files of landing/<dataset>/ left unread because their name holds an address, where
    the address is theirs -> the name to move each to: each such address made a keyed hash
    (runs then read what is left of it, as delivered under that name)."""
    if not lake.landing.exists(dataset):
        return {}
    moved = {}
    for relative, why in lake.landing.listing(dataset)[1].items():
        if why != NAMES_A_PERSON:
            continue
        to = relative
        for address in addresses_in(relative):
            if normalised(visible(address)) == email:
                to = to.replace(address, f"erased-{keyed_hash(key, 'email', address)[:16]}")
        if to != relative:
            moved[relative] = to
    return moved


def _not_searched_yet(lake: Lake, dataset: Dataset) -> tuple[list[str], set[str]]:
    """The files under landing/<dataset>/ that `_candidate_files` does not read: those runs
    leave (other suffixes, being written, named after someone, links) and those not UTF-8
    text; and which of them are links (what they lead to is not the lake's to rewrite)."""
    if not lake.landing.exists(dataset):
        return [], set()
    files, left = lake.landing.listing(dataset)
    linked = {name for name, why in left.items() if why == LINKED}
    return sorted([*lake.landing.unreadable(list(files)), *left]), linked


def _candidate_files(lake: Lake, dataset: Dataset, subject: Subject) -> list[str]:
    """The landing files of `dataset` that may hold a line of the subject's. Spark finds them
    (the identifiers in the raw text, read without invisible characters, or in a decoded
    identifier field, or a line with JSON escapes); `Subject.names` decides, line by line."""
    if not lake.landing.exists(dataset):
        return []
    words = set(subject.emails | subject.serials)
    raw = lake.landing.read_readable(dataset)
    value = F.col("value")
    fields = ("email", "user", "serialNumber")
    # selected first: identifiers are composed by reflection, which a join condition refuses
    lines = raw.select(
        "source_file",
        # escapes, `%40` and full-width letters: `Subject.names` reads what they spell
        (F.contains(value, F.lit("\\u")) | value.rlike(r"%40|[\x{FF00}-\x{FFEF}]")).alias(
            "escaped"
        ),
        in_composed_form(F.lower(F.regexp_replace(value, INVISIBLE, ""))).alias("text"),
        *(identifier(F.get_json_object(value, f"$.{f}")).alias(f) for f in fields),
    ).alias("l")
    key = F.col("s.key")
    named = F.contains(F.col("l.text"), key)
    for f in fields:
        named |= F.col(f"l.{f}") == key
    candidates = lines.join(F.broadcast(_keys(lake, words)), named, "left_semi").union(
        lines.filter(F.col("escaped"))
    )
    return sorted(distinct_values(candidates, F.col("source_file")))


def _landing_fields(lake: Lake, dataset: Dataset, name: str) -> set[str]:
    """Distinct values of a field of every raw landing line of `dataset` (`field_values`)."""
    lines = lake.landing.read_readable(dataset)
    return distinct_values(lines, F.explode(field_values(F.col("value"), name)))


def _journal_entry(stored: bytes) -> PendingErasure:
    try:
        return PendingErasure.model_validate_json(stored)
    except ValidationError as exc:
        raise LakeError(
            f"an entry of {JOURNAL}/ is not an erasure journal entry ({exc.errors()[0]['msg']}): "
            "restore it from a backup, or remove it and run the same forget again"
        ) from None


def _find(lake: Lake, email: str, key: bytes) -> PendingErasure | None:
    """The person's journal entry: a new one from what the lake holds, None if it holds
    nothing of them."""
    spellings: set[str] = set()
    claimed, shared = _claimed_in_lines(lake, email), set()
    if lake.exists(landing_table(Dataset.CUSTOMER)):
        # normalised: a lake made before 0.3 keeps identifiers as delivered until its next run
        customers = with_identifiers(
            lake.read(landing_table(Dataset.CUSTOMER)), "email", "serialNumber"
        )
        email_is = F.col("email_id") == F.col("key")
        serial = F.col("serialNumber_id")
        theirs = customers.join(_keys(lake, {email}), email_is, "left_semi")
        spellings |= distinct_values(theirs, F.col("email"))
        claimed |= distinct_values(theirs, serial)
        claims = customers.join(_keys(lake, claimed), serial == F.col("key"), "left_semi")
        others = claims.join(_keys(lake, {email}), email_is, "left_anti")
        shared = claimed & distinct_values(others, serial)
        claimed -= shared
    if lake.exists(landing_table(Dataset.ACCELEROMETER)):
        readings = with_identifiers(lake.read(landing_table(Dataset.ACCELEROMETER)), "user")
        theirs = readings.join(_keys(lake, {email}), F.col("user_id") == F.col("key"), "left_semi")
        spellings |= distinct_values(theirs, F.col("user"))
    if not spellings and not claimed and not _only_in_lines(lake, email):
        return None
    return _entry(email, key, spellings=spellings, claimed=claimed, shared=shared)


def _entry(
    email: str, key: bytes, *, spellings: set[str], claimed: set[str], shared: set[str]
) -> PendingErasure:
    return PendingErasure(
        person=keyed_hash(key, "email", email),
        devices=sorted(keyed_hash(key, "serial", s) for s in claimed),
        shared_devices=sorted(keyed_hash(key, "serial", s) for s in shared),
        subject_keys=sorted(subject_keys(spellings, key=key)),
        key_fingerprint=fingerprint(key),
        started_at=datetime.now(UTC),
    )


def _claimed_in_lines(lake: Lake, email: str) -> set[str]:
    """The serial numbers the person's raw customer lines claim: a record no table accepted
    (quarantined) still names their device."""
    subject = Subject(frozenset({email}))
    lines = [
        line
        for relative in _candidate_files(lake, Dataset.CUSTOMER, subject)
        for line in lake.landing.lines(relative)
        if subject.names(line)
    ]
    return {serial for line in lines if (found := fields_of(line)) for serial in found["serial"]}


def _only_in_lines(lake: Lake, email: str) -> bool:
    """Whether lines no table accepted name them: quarantined, or in landing files (a person
    all of whose records were refused is still theirs to erase)."""
    subject = Subject(frozenset({email}))
    quarantined = (
        _lines_of(lake, quarantine_table(d), "raw_line", subject)[0]
        for d in Dataset
        if lake.exists(quarantine_table(d))
    )
    landed = (_landing_files_naming(lake, d, subject) for d in Dataset)
    return any(quarantined) or any(landed)


def _devices(lake: Lake, entry: PendingErasure, key: bytes) -> set[str]:
    """The serial numbers whose keyed hashes the journal holds, found among every serial the
    landing lines name (the tables may no longer hold them after an interrupted erasure)."""
    if not entry.devices:
        return set()
    wanted = set(entry.devices)
    serials: set[str] = set()
    for dataset in (Dataset.CUSTOMER, Dataset.STEP_TRAINER):
        if lake.landing.exists(dataset):
            serials |= _landing_fields(lake, dataset, "serialNumber")
    found = {normalised(s) for s in serials}
    return {s for s in found if keyed_hash(key, "serial", s) in wanted}


Match = tuple[list[str], str]  # keys, and the SQL saying when a row `t` matches a key `s.key`


def _column_is(column: str, values: set[str]) -> Match:
    return sorted(values), f"t.`{column}` = s.key"


def _spelt_as(lake: Lake, table: str, column: str, values: set[str]) -> Match:
    """The rows of `table` whose `column` names one of `values` in any spelling, matched on
    the spellings it holds (a lake made before 0.3 keeps them as delivered until its next run;
    a MERGE condition cannot compose)."""
    if not values or not lake.exists(table):
        return _column_is(column, set())
    stored = with_identifiers(lake.read(table).select(column), column)
    theirs = stored.join(_keys(lake, values), F.col(f"{column}_id") == F.col("key"), "left_semi")
    return _column_is(column, distinct_values(theirs, F.col(column)))


def _lines_of(lake: Lake, table: str, column: str, subject: Subject) -> Match:
    """The rows of `table` whose text in `column` is a record of the subject's: decided in
    Python, line by line (few rows: quarantined lines, failed runs' errors)."""
    rows = lake.read(table).select(column).filter(F.col(column).isNotNull()).distinct()
    texts = {r[0] for r in rows.toLocalIterator() if subject.names(r[0])}
    return sorted(texts), f"t.`{column}` = s.key"


def _matches(lake: Lake, subject: Subject, entry: PendingErasure) -> dict[str, Match]:
    """Each table's rows of the subject's, looked up side by side (each lookup is a few small
    Spark jobs, and they are independent)."""
    emails, serials = set(subject.emails), set(subject.serials)
    lookups: dict[str, Callable[[], Match]] = {}
    for prefix, column in (("customer", "email"), ("accelerometer", "user")):
        for zone in ("landing", "trusted", "curated"):
            if f"{prefix}_{zone}" in CATALOGUE:
                table = f"{prefix}_{zone}"
                lookups[table] = partial(_spelt_as, lake, table, column, emails)
    for zone in ("landing", "trusted"):
        table = f"step_trainer_{zone}"
        lookups[table] = partial(_spelt_as, lake, table, "serialNumber", serials)
    for dataset in Dataset:
        table = quarantine_table(dataset)
        if lake.exists(table):
            lookups[table] = partial(_lines_of, lake, table, "raw_line", subject)
    if lake.exists(ML) and lake.table_rules(ML) is Rules.UDACITY:
        lookups[ML] = partial(_user_or_device, lake, emails, serials)
    else:
        lookups[ML] = partial(_column_is, "subject_key", set(entry.subject_keys))
    return dict(zip(lookups, together(*lookups.values()), strict=True))


def _user_or_device(lake: Lake, emails: set[str], serials: set[str]) -> Match:
    """The rows of an ML table built under the udacity rules (no pseudonyms) of the subject."""
    users = _spelt_as(lake, ML, "user", emails)
    devices = _spelt_as(lake, ML, "serialNumber", serials)
    return users[0] + devices[0], f"({users[1]}) OR ({devices[1]})"


def person_to_forget(email: str) -> str:
    """The address as the lake holds it; none is an error before anything starts."""
    target = normalised(email)
    if not target:
        raise LakeError("--email must not be empty")
    return target


def forget(
    lake: Lake,
    email: str,
    *,
    pseudonym_key: bytes | None,
    progress=print,
    before_delivery: bool = False,
) -> ErasureReport:
    """Erase the person with this e-mail address from the lake (see the module's docstring).
    Someone the lake holds nothing of is refused (a mistyped address is said, not listed),
    unless `before_delivery`: their address is listed all the same."""
    target = person_to_forget(email)
    if not pseudonym_key:
        raise ConfigError(
            "no pseudonym key: set STEDI_PSEUDONYM_KEY, the key the lake was built with, so "
            "that the person's pairs and later deliveries can be found"
        )
    check_key(lake, pseudonym_key)
    person = keyed_hash(pseudonym_key, "email", target)
    journal_file = f"{JOURNAL}/{person}.json"
    report = ErasureReport()
    stored = lake.storage.read(journal_file)
    if stored is not None:
        entry = _journal_entry(stored)
        report.resumed = True
        progress("finishing an erasure that did not finish")
    else:
        found = _find(lake, target, pseudonym_key)
        if found is None and not before_delivery:
            raise LakeError(
                "nobody with that e-mail address is in the lake: nothing was changed (if their "
                "data has not arrived yet, --before-delivery keeps every later delivery of it out)"
            )
        nobody: set[str] = set()
        entry = found or _entry(
            target, pseudonym_key, spellings={target}, claimed=nobody, shared=nobody
        )

    def save() -> None:
        entry.rows_removed = report.rows_removed
        entry.landing_files_rewritten = report.landing_files_rewritten
        entry.runs_redacted = report.runs_redacted
        lake.storage.write(journal_file, entry.model_dump_json().encode())

    if report.resumed:
        report.rows_removed = dict(entry.rows_removed)
        report.landing_files_rewritten = entry.landing_files_rewritten
        report.runs_redacted = entry.runs_redacted
    save()  # 1. the journal
    _suppress(lake, entry, pseudonym_key)
    subject = Subject(frozenset({target}), frozenset(_devices(lake, entry, pseudonym_key)))

    for table, (keys, matching) in _matches(lake, subject, entry).items():  # 2. rows
        if lake.exists(table):
            progress(f"removing from {table}")
            if removed := lake.delete_rows(table, keys, matching):
                report.rows_removed[table] = report.rows_removed.get(table, 0) + removed
                save()

    progress("rewriting landing files")  # 3. raw lines (and names)
    not_text: list[str] = []
    outside: list[str] = []  # links to files spelling them: a rewrite would not reach those
    for dataset in Dataset:
        for relative in _landing_files_naming(lake, dataset, subject):
            lake.landing.rewrite(relative, keep=lambda line: not subject.names(line))
            report.landing_files_rewritten += 1
            save()
        for relative, moved_to in _named_after(lake, dataset, target, pseudonym_key).items():
            lake.landing.move_unread(relative, moved_to, keep=lambda line: not subject.names(line))
            report.landing_files_rewritten += 1
            save()
        unsearched, linked = _not_searched_yet(lake, dataset)
        for relative in unsearched:
            if relative in linked or not lake.landing.is_text(relative):
                if lake.landing.mentions(relative, subject.emails | subject.serials):
                    (outside if relative in linked else not_text).append(relative)
            elif any(subject.names(line) for line in lake.landing.lines(relative)):
                lake.landing.rewrite(relative, keep=lambda line: not subject.names(line))
                report.landing_files_rewritten += 1
                save()

    if lake.exists(Table.RUNS):  # 4. what runs said of them
        keys, matching = _lines_of(lake, Table.RUNS, "error", subject)
        if redacted := lake.delete_rows(
            Table.RUNS, keys, matching, update={"error": f"'{REDACTED}'"}
        ):
            report.runs_redacted += redacted
            save()

    for table in CATALOGUE:  # 5. every older version
        if lake.exists(table):
            progress(f"purging old files and log of {table}")
            purge_history(lake, table)
            report.tables_purged.append(table)

    if not_text or outside:  # the journal stays: runs wait, and `forget` again finishes
        said = [
            f"{len(found)} landing file(s) {what} spell the address or a device of theirs: "
            + ", ".join(found)
            for found, what in (
                (not_text, "that are not text"),
                (outside, "that are symbolic links to files outside the lake"),
            )
            if found
        ]
        raise LakeError(
            f"the erasure is not finished: {'; '.join(said)}; delete or replace them (a link: "
            "erase what it leads to there), then run the same `stedi-lake forget --email ...` "
            "again"
        )
    _record(lake, entry.started_at, report)  # 6.
    progress("finishing")
    lake.storage.delete(journal_file)
    lake.catalog.registered()
    return report


def erase_devices(lake: Lake, serials: set[str], *, leave: set[str]) -> None:
    """Erase the readings runs kept of these devices (serial numbers, normalised) as an unknown
    device's, before an erased person's later record claimed them: their rows and quarantined
    lines with every older version of both tables, and their lines in the landing files other
    than `leave`; recorded in `erasures`."""
    subject, report = Subject(serials=frozenset(serials)), ErasureReport()
    landing, quarantine = (
        landing_table(Dataset.STEP_TRAINER),
        quarantine_table(Dataset.STEP_TRAINER),
    )
    for table in (landing, quarantine):
        if not lake.exists(table):
            continue
        if table == landing:
            keys, matching = _spelt_as(lake, table, "serialNumber", serials)
        else:
            keys, matching = _lines_of(lake, table, "raw_line", subject)
        if removed := lake.delete_rows(table, keys, matching):
            report.rows_removed[table] = removed
        purge_history(lake, table)  # also when a run stopped after the removal did it
    for relative in _landing_files_naming(lake, Dataset.STEP_TRAINER, subject):
        if relative not in leave:
            lake.landing.rewrite(relative, keep=lambda line: not subject.names(line))
            report.landing_files_rewritten += 1
    if report.rows_removed or report.landing_files_rewritten:
        _record(lake, datetime.now(UTC), report)


def _suppress(lake: Lake, entry: PendingErasure, key: bytes) -> None:
    """Put the person's hashes on the suppression list (once, also when resumed)."""
    # (hash, kind): a device listed as shared by an earlier erasure may now be only theirs
    hashes = {
        (entry.person, "email"),
        *((device, "serial") for device in entry.devices),
        *((device, SHARED_SERIAL) for device in entry.shared_devices),
    }
    if lake.exists(SUPPRESSIONS):
        wanted = sorted({h for h, _ in hashes})
        listed = lake.read(SUPPRESSIONS).filter(F.col("identifier_hash").isin(wanted))
        hashes -= {(r[0], r[1]) for r in listed.select("identifier_hash", "kind").collect()}
    if hashes:
        rows = [
            Suppression(identifier_hash=h, kind=kind, erased_at=entry.started_at)
            for h, kind in sorted(hashes)
        ]
        frame = records_frame(lake.spark, Suppression, rows)
        lake.append(frame, SUPPRESSIONS, metadata=fingerprint_record(key))
    if lake.table_property(SUPPRESSIONS, FINGERPRINT_PROPERTY) is None:
        lake.set_table_property(SUPPRESSIONS, FINGERPRINT_PROPERTY, fingerprint(key))


def _record(lake: Lake, erased_at: datetime, report: ErasureReport) -> None:
    """The erasure's row in `erasures`, once: a rerun after it was written adds none."""
    if lake.exists(Table.ERASURES):
        recorded = lake.read(Table.ERASURES).filter(F.col("erased_at") == F.lit(erased_at))
        if recorded.limit(1).count():
            return
    record = Erasure(
        erased_at=erased_at,
        rows_removed=report.rows_removed,
        landing_files_rewritten=report.landing_files_rewritten,
    )
    lake.append(records_frame(lake.spark, Erasure, [record]), Table.ERASURES)
