"""New landing files validated into <dataset>_landing and <dataset>_quarantine: every line
is either accepted or quarantined with its reason, and counted."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.spark import (
    Check,
    composed_sql,
    identifier,
    identifier_sql,
    lowered,
    spark_schema,
)
from stedi_lakehouse.contracts.tables import (
    RECORD_CONTRACTS,
    Dataset,
    Quarantined,
    landing_table,
    quarantine_table,
)
from stedi_lakehouse.erasure import forget as erasure
from stedi_lakehouse.erasure import suppression as sup
from stedi_lakehouse.erasure.identifiers import Subject
from stedi_lakehouse.lake.tables import distinct_values, local_frame
from stedi_lakehouse.pipeline.bookmarks import IDENTIFIERS_KEY, LOWER_CASE
from stedi_lakehouse.pipeline.quality import quarantine_counts
from stedi_lakehouse.pipeline.results import DatasetCounts, StageReport
from stedi_lakehouse.pipeline.scope import WHOLE, Scope
from stedi_lakehouse.transforms import validation as val
from stedi_lakehouse.transforms.trusted import CONSENT_MS

if TYPE_CHECKING:
    from stedi_lakehouse.pipeline.context import Stages

SERIAL = "serialNumber"
# The field the latest customer record is chosen by, and how far ahead of the run it may be.
LATEST_RECORD_FIELD, DAY_MS = "lastUpdateDate", 86_400_000


@dataclass
class Batch:
    """One dataset's landing files read and validated, cached until `ingest` writes them;
    `new_counts`: (lines read, lines quarantined) of the files new to this run."""

    dataset: Dataset
    files: list[str]
    scope: Scope
    unreadable: dict[str, str]
    validated: DataFrame
    new_counts: tuple[int, int]
    erased: Subject | None = None  # whose records among these are erased people's, once known
    marked: list[bytes] = field(default_factory=list)  # its unreadable text files' lines

    def release(self) -> None:
        self.validated.unpersist()


def identifiers_in_lower_case(stages: Stages) -> None:
    """Lower, strip and compose the addresses and serial numbers of a lake made before 0.3,
    which kept them as delivered: once, in the landing tables (the trusted and curated tables
    made then are rebuilt whole), the serial numbers on the suppression list listed in lower
    case first."""
    lake = stages.lake
    for dataset, contract in RECORD_CONTRACTS.items():
        table, fields = landing_table(dataset), lowered(contract)
        if not fields or not lake.exists(table) or stages.lower_case(table):
            continue
        stages.progress(f"{table}: identifiers to lower case (the lake was made before 0.3)")
        if SERIAL in fields:
            serials = lake.read(table).filter(F.col(SERIAL) != identifier(F.col(SERIAL)))
            sup.list_lower_case(lake, stages.pseudonym_key, distinct_values(serials, SERIAL))
            stages.suppressions_changed()
        kept = {field: identifier_sql(field) for field in fields}
        composed = {field: composed_sql(sql) for field, sql in kept.items()}
        lake.to_lower_case(table, kept, composed=composed, metadata={IDENTIFIERS_KEY: LOWER_CASE})


def read_batch(stages: Stages, dataset: Dataset, files: list[str]) -> Batch | None:
    """The new landing files `files` read and validated (every file of the dataset, whole,
    if either of its tables is missing or too many are new); None if there is nothing to read.
    Counting the new lines here caches the batch, which the writes then reuse."""
    lake, new = stages.lake, files
    tables = landing_table(dataset), quarantine_table(dataset)
    scope = Scope.of(source_file=files)
    if scope.whole or not all(lake.exists(t) for t in tables):
        # too many new files for one predicate, or a table missing: every file, whole
        settled = stages.settled.get(dataset)
        files = lake.landing.files(dataset) if settled is None else settled
        scope = WHOLE
    if scope.empty:
        return None
    stages.progress(f"reading {len(files):,} file(s) of landing/{dataset}")
    unreadable = lake.landing.unreadable(files)
    lines = lake.landing.read(dataset, [f for f in files if f not in unreadable])
    checked = val.validate(
        lines, contract=RECORD_CONTRACTS[dataset], run_checks=_not_after(stages, dataset)
    )
    validated = val.without_good_lines(checked).persist(StorageLevel.MEMORY_AND_DISK)
    counted = (0, 0)
    if new:
        of_new = (
            validated
            if set(files) <= set(new)
            else validated.filter(F.col("source_file").isin(new))
        )
        row = quarantine_counts(of_new).collect()[0]
        counted = (row["read"], row["quarantined"])
    return Batch(dataset, files, scope, unreadable, validated, counted)


def ingest(
    stages: Stages,
    batch: Batch,
    report: StageReport,
    background: ThreadPoolExecutor | None = None,
) -> Future[None] | None:
    """Write a batch into <dataset>_landing and <dataset>_quarantine. With `background`, the
    quarantine is written there (nothing after the ingest reads it) and its future is
    returned."""
    lake, dataset, validated, scope = stages.lake, batch.dataset, batch.validated, batch.scope
    counts = report.datasets.setdefault(dataset, DatasetCounts(dataset))
    tables = landing_table(dataset), quarantine_table(dataset)
    contract = RECORD_CONTRACTS[dataset]
    accepted = val.accepted(validated, contract=contract)
    quarantined = val.quarantined(validated)
    try:
        erased = erased_in(stages, batch)
        if erased:  # lines of people erased before: counted, never kept
            kept = sup.not_erased(lake, accepted, dataset, erased)
            kept_lines = sup.lines_not_erased(quarantined, erased)
            dropped = accepted.count() - kept.count() + quarantined.count() - kept_lines.count()
            dropped += sum(erased.names(line) for line in batch.marked)
            accepted, quarantined = kept, kept_lines
            counts.excluded[sup.ERASED] = dropped
            stages.scrub[dataset] = (batch.files, erased)
        good = stages.write(accepted, tables[0], report=report, scope=scope)
    except BaseException:
        batch.release()
        raise
    counts.files, counts.accepted = len(batch.files), good.rows + counts.excluded.get(sup.ERASED, 0)

    def quarantine() -> None:
        try:
            rows = quarantined.unionByName(_unreadable_rows(stages, batch.unreadable))
            written = stages.write(rows, tables[1], report=report, scope=scope)
            counts.quarantined = written.rows
        finally:
            batch.release()

    if background is None:
        quarantine()
        return None
    return background.submit(quarantine)


def erased_in(stages: Stages, batch: Batch) -> Subject:
    """Whose records in the batch (accepted, quarantined, or lines of files Spark cannot
    read) are of people erased before; found once per batch."""
    if batch.erased is None:
        contract = RECORD_CONTRACTS[batch.dataset]
        delivered = val.accepted(batch.validated, contract=contract, as_delivered=True)
        batch.marked = _marked_lines(stages, batch)
        batch.erased = stages.suppressed.subject(
            batch.dataset, delivered, val.quarantined(batch.validated), lines=batch.marked
        )
    return batch.erased


def _marked_lines(stages: Stages, batch: Batch) -> list[bytes]:
    """The lines of the batch's unreadable files that are text with a byte-order mark (UTF-16,
    UTF-32), once anyone is erased."""
    landing = stages.lake.landing
    if not stages.suppressed.hashes:
        return []
    return [line for f in batch.unreadable if landing.is_text(f) for line in landing.lines(f)]


def devices_of_the_erased(stages: Stages, batches: list[Batch]) -> None:
    """A forgotten person's later customer records are dropped; the devices they claim are
    theirs too, as `forget` makes the devices they claimed. One no other customer claims is
    theirs alone: its readings earlier runs kept as an unknown device's are erased, then it is
    listed, so that this run and later ones drop its readings. One another customer claims is
    listed as shared: nobody's from then on, its readings kept (`Stages.kept_ambiguous`)."""
    customers = next((b for b in batches if b.dataset is Dataset.CUSTOMER), None)
    if customers is None or not (erased := erased_in(stages, customers)).emails:
        return
    lake, contract, key = stages.lake, RECORD_CONTRACTS[Dataset.CUSTOMER], stages.pseudonym_key
    delivered = val.accepted(customers.validated, contract=contract, as_delivered=True)
    devices = sup.devices_claimed(lake, delivered, val.quarantined(customers.validated), erased)
    others = sup.claimed_by_others(lake, delivered, devices, erased)
    shared = others - stages.suppressed.listed(others, kind=sup.SHARED_SERIAL)
    sup.list_devices(lake, key, shared, kind=sup.SHARED_SERIAL)
    # listed ones were erased before: they are listed last (a run stopped sooner does it again)
    own = devices - others - stages.suppressed.listed(devices - others)
    if own:
        stages.progress(f"{len(own):,} device(s) an erased person claims: erasing their readings")
        steps = next((b for b in batches if b.dataset is Dataset.STEP_TRAINER), None)
        reading = set(steps.files) if steps else set()  # this run drops those lines as read
        erasure.erase_devices(lake, own, leave=reading)
        sup.list_devices(lake, key, own)
    if shared or own:
        stages.suppressions_changed()


def _not_after(stages: Stages, dataset: Dataset) -> dict[str, Check]:
    """A customer record granting consent dated more than a day after this run reads it comes
    from a clock in the future: accepted, it would outrank a real withdrawal until that day
    came. A withdrawal is kept however it is dated: it can only share less."""
    if dataset is not Dataset.CUSTOMER:
        return {}
    limit = F.lit(int(stages.started_at.timestamp() * 1000) + DAY_MS)
    withdraws = F.col(val.RECORD)[CONSENT_MS].isNull()
    # the reason does not name the limit: it moves with the clock, the reason must not
    return {
        LATEST_RECORD_FIELD: Check(
            lambda c: (c <= limit) | withdraws,
            "must not be more than a day after it was read where consent is given",
        )
    }


def _unreadable_rows(stages: Stages, unreadable: dict[str, str]) -> DataFrame:
    """One quarantine row for each landing file that cannot be read, with why."""
    rows = [{"raw_line": "", "reason": why, "source_file": f} for f, why in unreadable.items()]
    return local_frame(stages.lake.spark, rows, spark_schema(Quarantined))
