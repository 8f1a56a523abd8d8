"""The stages: landing -> trusted -> curated, incremental and idempotent.

Each stage processes only the landing files it has not processed before (the `processed_files`
table is its bookmark) and recomputes exactly the rows those files can change: the rows of the
new files, and every row of a person or device whose status a new record may change (a newer
customer record, a first accelerometer reading, a second owner of a serial). Those rows are
replaced in one Delta commit per table (`replaceWhere`; appended when they can only be new, see
`_only_new_rows`), so the work grows with the new data.
A table that does not exist yet, or was built under another rules preset, is built whole; the
result is the same either way, which the tests check batch by batch.

The bookmark is written after the stage's last table. A run that dies anywhere before it leaves
the files unprocessed; the next run recomputes the same rows from the same inputs and replaces
them again, so it ends in the state an uninterrupted run would have reached.

A stage returns what it wrote and counted, so every run can show that nothing was lost: per
dataset, records read = accepted + quarantined, and rows evaluated = trusted + excluded.
"""

import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from stedi_lakehouse import forget as erasure
from stedi_lakehouse import quality as q
from stedi_lakehouse import suppression as sup
from stedi_lakehouse.contracts.expectations import When, expectations
from stedi_lakehouse.contracts.spark import columns, spark_schema
from stedi_lakehouse.contracts.tables import (
    CATALOGUE,
    RECORD_CONTRACTS,
    Dataset,
    ProcessedFile,
    Quarantined,
    RunRecord,
    landing_table,
    quarantine_table,
)
from stedi_lakehouse.errors import ConfigError, LakeError, failure_text
from stedi_lakehouse.identifiers import Subject
from stedi_lakehouse.io import Lake, TableWrite, local_frame
from stedi_lakehouse.keys import FINGERPRINT_PROPERTY, fingerprint
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.settings import QualitySettings
from stedi_lakehouse.transforms import curated as cur
from stedi_lakehouse.transforms import trusted as tr
from stedi_lakehouse.transforms import validation as val
from stedi_lakehouse.transforms.pseudonym import subject_keys

Progress = Callable[[str], None]
T = TypeVar("T")

TRUSTED_TABLES = ("customer_trusted", "accelerometer_trusted", "step_trainer_trusted")
CURATED_TABLES = ("customer_curated", "machine_learning_curated")
# Above this many keys a replaceWhere predicate gets slow to plan; the table is rebuilt whole
# instead (the same result).
KEY_LIMIT = 10_000
# The field the latest customer record is chosen by, and how far ahead of the run it may be.
LATEST_RECORD_FIELD, DAY_MS = "lastUpdateDate", 86_400_000
# After a failed run, `watch` waits its interval doubled per failure in a row, up to this.
MAX_BACKOFF_SECONDS = 600.0
# Recorded with each commit: the run that made it, and whether it added rows outside its scope.
RUN_KEY, ADDS_KEY = "run_id", "adds"


def _quiet(_: str) -> None:
    pass


@dataclass
class DatasetCounts:
    """What happened to one feed's records in a run: new records read (accepted +
    quarantined), and rows evaluated for the trusted zone (trusted + excluded by reason)."""

    dataset: str
    files: int = 0
    accepted: int = 0
    quarantined: int = 0
    trusted: int = 0
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def read(self) -> int:
        return self.accepted + self.quarantined


@dataclass
class StageReport:
    writes: list[TableWrite] = field(default_factory=list)
    datasets: dict[str, DatasetCounts] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # landing file not read -> why
    changed: list[str] = field(default_factory=list)  # processed files delivered again

    def merge(self, other: "StageReport") -> "StageReport":
        return StageReport(
            [*self.writes, *other.writes],
            {**self.datasets, **other.datasets},
            {**self.skipped, **other.skipped},
            sorted({*self.changed, *other.changed}),
        )


@dataclass(frozen=True)
class Scope:
    """The rows of a table a stage recomputes and replaces: all of them (`whole`), or those
    whose `column` value is in `keys[column]` for any column (none: nothing to do)."""

    keys: dict[str, frozenset[str]] = field(default_factory=dict)
    whole: bool = False

    @classmethod
    def of(cls, **keys: Iterable[str]) -> "Scope":
        sets = {column: frozenset(values) for column, values in keys.items()}
        if sum(map(len, sets.values())) > KEY_LIMIT:
            return cls(whole=True)
        return cls({column: values for column, values in sets.items() if values})

    @property
    def empty(self) -> bool:
        return not self.whole and not self.keys

    def predicate(self) -> str | None:
        """The SQL predicate selecting the scope's rows (None: the whole table)."""
        if self.whole:
            return None
        if not self.keys:
            return "false"
        return " OR ".join(
            f"{c} IN ({', '.join(map(_sql_string, sorted(v)))})" for c, v in self.keys.items()
        )

    def rows(self, df: DataFrame, *, inside: bool = True, **renamed: str) -> DataFrame:
        """The rows of `df` in scope, or (inside=False) the others; `renamed`: scope column ->
        df column where the names differ."""
        if self.whole:
            return df if inside else df.limit(0)
        condition: Column = F.lit(False)
        for column, values in self.keys.items():
            condition = condition | F.col(renamed.get(column, column)).isin(sorted(values))
        return df.filter(condition if inside else ~condition)


@dataclass(frozen=True)
class Added:
    """Landing files whose rows a stage adds to a table, beside the scope it replaces."""

    accelerometer: list[str] = field(default_factory=list)
    step_trainer: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.accelerometer or self.step_trainer)


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _together(*tasks: Callable[[], T]) -> list[T]:
    """Run independent Spark work from several threads (Spark schedules their jobs side by
    side); their results, or the first failure raised."""
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="stage") as pool:
        return [future.result() for future in [pool.submit(task) for task in tasks]]


def _values(df: DataFrame, column: str) -> set[str]:
    return {row[0] for row in df.select(column).distinct().collect() if row[0] is not None}


class Stages:
    """The stages of one lake under one rules preset, for one run."""

    def __init__(
        self,
        lake: Lake,
        *,
        rules: Rules,
        progress: Progress = _quiet,
        run_id: str | None = None,
        pseudonym_key: bytes | None = None,
        settle_seconds: float = 0.0,
        quality: QualitySettings | None = None,
    ):
        self.lake, self.rules, self.progress = lake, rules, progress
        self.settle_seconds = settle_seconds
        self._settled: dict[Dataset, list[str]] = {}  # the landing files this run may read
        self.run_id = run_id or uuid.uuid4().hex
        self.pseudonym_key = pseudonym_key
        self._suppressed: sup.Suppressed | None = None
        self._scrub: dict[Dataset, tuple[list[str], Subject]] = {}
        self._checked_key: bytes | None = None
        self.started_at = datetime.now(UTC)
        self.expectations = expectations(rules, quality or QualitySettings())
        self.outcomes: list[q.Outcome] = []  # every expectation checked, for `quality`
        self._looked_up: dict[tuple, set[str]] = {}
        self.record: dict | None = None  # the run's `runs` row, once `run_stages` has run
        self._marks: list[tuple] | None = None  # processed_files rows

    @property
    def suppressed(self) -> sup.Suppressed:
        """The suppression list (read once per run)."""
        if self._suppressed is None:
            self._suppressed = sup.Suppressed.of(self.lake, self.pseudonym_key)
        return self._suppressed

    # -- writing --------------------------------------------------------------------------
    def _write(
        self,
        df: DataFrame,
        table: str,
        report: StageReport,
        scope: Scope = Scope(whole=True),
        *,
        adds: bool = False,
    ) -> TableWrite:
        """Write `df` as the rows of `scope` (adds: and add its rows outside the scope)."""
        self.progress(f"writing {table}")
        started = time.monotonic()
        metadata = {RUN_KEY: self.run_id} | ({ADDS_KEY: "true"} if adds else {})
        # nothing in the table to replace: its rows are added, no files searched for
        append = scope.empty if adds else self._only_new_rows(table, scope)
        written = self.lake.write(
            df,
            table,
            rules=self.rules,
            where=scope.predicate(),
            adds=adds,
            append=append,
            metadata=metadata,
        )
        written = replace(written, seconds=time.monotonic() - started)
        if not written.committed:
            self.progress(f"{table}: nothing to change")
            return written
        report.writes.append(written)
        replaced = f", {written.removed:,} replaced" if written.removed else ""
        self.progress(f"wrote {table}: {written.rows:,} rows{replaced} (version {written.version})")
        return written

    def _write_usable(
        self, classified: DataFrame, usable_rows, table: str, counts, report, scope: Scope
    ) -> None:
        """Write the usable rows of a classified frame; count every reason in the same job."""
        if scope.empty:
            return
        observation = Observation(f"{table}-exclusions")
        self._write(
            usable_rows(classified.observe(observation, *tr.exclusion_metrics())),
            table,
            report,
            scope,
        )
        metrics = observation.get
        counts.trusted = metrics.pop(tr.USABLE)
        counts.excluded.update({reason: n for reason, n in metrics.items() if n})

    def expect(self, when: When, **inputs) -> None:
        """Check the expectations of `when`; stop on a failed `fail` (before the stage writes)."""
        self.progress(f"checking expectations {when}")
        outcomes = q.check(self.lake, self.expectations, when, **inputs)
        self.outcomes += outcomes
        q.enforce(outcomes)

    # -- bookmarks ------------------------------------------------------------------------
    def processed(self, stage: str) -> dict[str, str]:
        """The landing files `stage` has processed: path -> dataset."""
        return {path: dataset for path, dataset, _ in self._bookmarks(stage)}

    def _bookmarks(self, stage: str) -> list[tuple[str, str, str]]:
        """(path, dataset, run_id) of each landing file `stage` has processed."""
        return [(r[0], r[1], r[3]) for r in self._rows() if r[2] == stage]

    def _versions(self, stage: str) -> dict[str, set[str | None]]:
        """path -> every version of the file `stage` has processed (None: bookmarked before
        versions were kept, taken as the file's current one)."""
        versions: dict[str, set[str | None]] = {}
        for path, _, marked, _, version, _ in self._rows():
            if marked == stage:
                versions.setdefault(path, set()).add(version)
        return versions

    def _rows(self) -> list[tuple]:
        """The rows of `processed_files`, read once per run; this run's own marks are added as
        it makes them."""
        if self._marks is None:
            self._marks = []
            if self.lake.exists("processed_files"):
                table = self.lake.read("processed_files")
                kept = [
                    F.col(f.name)
                    if f.name in table.columns
                    else F.lit(None).cast(f.dataType).alias(f.name)
                    for f in spark_schema(ProcessedFile).fields
                ]
                with self.lake.described("read processed_files"):
                    self._marks = [tuple(r) for r in table.select(*kept).collect()]
        return self._marks

    def _only_new_rows(self, table: str, scope: Scope) -> bool:
        """Whether the table holds none of the rows of `scope`, which then need no replacing:
        the scope is rows of landing files the trusted stage has not processed, and the
        table's latest write was made by a run that finished that stage. (A run that stopped
        before its bookmark may have written rows of those files; the next run replaces them.)
        Appending spares Delta finding the files that hold the rows to replace."""
        files = scope.keys.get("source_file")
        if scope.whole or files is None or len(scope.keys) != 1 or not self.lake.exists(table):
            return False
        if not files.isdisjoint(self.processed("trusted")):
            return False
        return self._written_by_finished_run(table, "trusted")

    def _may_add_to(self, table: str, stage: str) -> bool:
        """Whether this run may add rows to `table` for its new files, rather than replace
        every row they touch. Not when the table's last write added rows in a run whose stage
        did not finish (no bookmark of that run): the rows it added must not be added twice,
        so this run replaces them."""
        if self.lake.table_metadata(table).get(ADDS_KEY) != "true":
            return True
        return self._written_by_finished_run(table, stage)

    def _written_by_finished_run(self, table: str, stage: str) -> bool:
        """Whether the table's latest write was made by a run that finished `stage` (its run
        id is among the stage's bookmarks)."""
        finished = {run for _, _, run in self._bookmarks(stage)}
        return self.lake.table_metadata(table).get(RUN_KEY) in finished

    def _mark(
        self, stage: str, files: dict[Dataset, dict[str, set[str | None]]], report: StageReport
    ) -> None:
        """Bookmark the files (path -> the versions processed) for `stage`."""
        rows = [
            (path, str(d), stage, self.run_id, version, self.started_at)
            for d, paths in files.items()
            for path, versions in paths.items()
            for version in sorted(versions, key=str)
        ]
        if rows:
            self._rows()  # read before this run's first mark
            names = columns(ProcessedFile)
            records = [dict(zip(names, row, strict=True)) for row in rows]
            df = local_frame(self.lake.spark, records, spark_schema(ProcessedFile))
            report.writes.append(self.lake.append(df, "processed_files"))
            self._marks.extend(rows)

    def _built_with_rules(self, tables: Iterable[str]) -> bool:
        return all(self.lake.exists(t) and self.lake.table_rules(t) == self.rules for t in tables)

    def _landing_values(
        self, dataset: Dataset, column: str, *, where: str, isin: Iterable[str]
    ) -> set[str]:
        """Distinct `column` values of <dataset>_landing rows whose `where` is in `isin`.
        Landing tables do not change between a run's stages, so a lookup the trusted stage
        made is not made again by the curated stage of the same run."""
        values = tuple(sorted(isin))
        if not values:
            return set()
        table = landing_table(dataset)

        def look_up() -> set[str]:
            rows = self.lake.read(table).filter(F.col(where).isin(list(values)))
            return _values(rows, column)

        key = (dataset, column, where, values)
        return self._looked_up_once(key, f"{column} by {where} in {table}", look_up)

    def _first_readers(self, users: set[str], files: list[str]) -> set[str]:
        """Those of `users` whose trusted accelerometer readings all come from the landing
        files `files` (read once `accelerometer_trusted` holds their rows). A customer is curated
        once they have a trusted reading, so a customer whose own record has not changed
        becomes curated by `files` only if these are their first trusted readings: for everybody
        else (curated before, or readings that are not trusted: unknown users, no consent) new
        readings add rows but change no status."""
        if not users:
            return set()

        def look_up() -> set[str]:
            from_files = F.col("source_file").isin(sorted(files)).cast("int")
            readings = self.lake.read("accelerometer_trusted").filter(
                F.col("user").isin(sorted(users))
            )
            only_files = readings.groupBy("user").agg(F.min(from_files).alias("only"))
            return _values(only_files.filter(F.col("only") == 1), "user")

        key = ("first readers", tuple(sorted(users)), tuple(sorted(files)))
        return self._looked_up_once(key, "first readers in accelerometer_trusted", look_up)

    def _looked_up_once(self, key: tuple, what: str, look_up: Callable[[], set[str]]) -> set[str]:
        """A lookup's result, made once per run (its jobs named `look up <what>`)."""
        if key not in self._looked_up:
            with self.lake.described(f"look up {what}"):
                self._looked_up[key] = look_up()
        return self._looked_up[key]

    def _new_rows(self, dataset: Dataset, files: Iterable[str], column: str) -> set[str]:
        """Distinct `column` values of the landing rows that came from `files`."""
        return self._landing_values(dataset, column, where="source_file", isin=files)

    def _serials_of(self, emails: set[str]) -> set[str]:
        """Every serial number any record of these customers ever claimed."""
        return self._landing_values(Dataset.CUSTOMER, "serialNumber", where="email", isin=emails)

    def _claimants_of(self, serials: set[str]) -> set[str]:
        """Every customer any of whose records claims one of these serial numbers."""
        return self._landing_values(Dataset.CUSTOMER, "email", where="serialNumber", isin=serials)

    # -- landing --------------------------------------------------------------------------
    def ingest(
        self,
        dataset: Dataset,
        files: list[str],
        report: StageReport,
        background: ThreadPoolExecutor | None = None,
    ) -> Future | None:
        """Validate new landing files into <dataset>_landing and <dataset>_quarantine (both
        tables whole if either is missing). With `background`, the quarantine is written there
        (nothing after the ingest reads it) and its future is returned."""
        counts = report.datasets[dataset] = DatasetCounts(dataset)
        tables = landing_table(dataset), quarantine_table(dataset)
        scope = Scope.of(source_file=files)
        if scope.whole or not all(self.lake.exists(t) for t in tables):
            # too many new files for one predicate, or a table missing: every file, whole
            files = self._settled.get(dataset)
            files = self.lake.landing_files(dataset) if files is None else files
            scope = Scope(whole=True)
        if scope.empty:
            return None
        self.progress(f"reading {len(files):,} file(s) of landing/{dataset}")
        contract = RECORD_CONTRACTS[dataset]
        unreadable = self.lake.unreadable(files)
        lines = self.lake.read_landing(dataset, [f for f in files if f not in unreadable])
        checked = val.validate(lines, contract=contract, not_after=self._not_after(dataset))
        validated = val.without_good_lines(checked).persist(StorageLevel.MEMORY_AND_DISK)
        accepted = val.accepted(validated, contract=contract)
        quarantined = val.quarantined(validated)
        try:
            erased = self.suppressed.subject(dataset, accepted, quarantined)
            if erased:  # lines of people erased before: counted, never kept
                kept = sup.not_erased(self.lake, accepted, dataset, erased)
                kept_lines = sup.lines_not_erased(quarantined, erased)
                dropped = accepted.count() - kept.count() + quarantined.count() - kept_lines.count()
                accepted, quarantined = kept, kept_lines
                counts.excluded[sup.ERASED] = dropped
                self._scrub[dataset] = (files, erased)
            good = self._write(accepted, tables[0], report, scope)
        except BaseException:
            validated.unpersist()
            raise
        counts.files, counts.accepted = len(files), good.rows + counts.excluded.get(sup.ERASED, 0)

        def quarantine() -> None:
            try:
                rows = quarantined.unionByName(self._unreadable_rows(unreadable))
                counts.quarantined = self._write(rows, tables[1], report, scope).rows
            finally:
                validated.unpersist()

        if background is None:
            quarantine()
            return None
        return background.submit(quarantine)

    def _not_after(self, dataset: Dataset) -> dict[str, int]:
        """A customer record dated more than a day after this run reads it comes from a clock
        in the future: accepted, it would win the latest-record rule until that day came."""
        if dataset is not Dataset.CUSTOMER:
            return {}
        return {LATEST_RECORD_FIELD: int(self.started_at.timestamp() * 1000) + DAY_MS}

    def _unreadable_rows(self, unreadable: dict[str, str]) -> DataFrame:
        """One quarantine row for each landing file that cannot be read, with why."""
        rows = [{"raw_line": "", "reason": why, "source_file": f} for f, why in unreadable.items()]
        return local_frame(self.lake.spark, rows, spark_schema(Quarantined))

    # -- trusted --------------------------------------------------------------------------
    def trusted(self) -> StageReport:
        """New landing files -> landing and quarantine tables -> trusted tables. Independent
        writes run side by side: on few cores a small job or a Delta commit leaves them idle."""
        report = StageReport()
        listed = self._listed(report)
        done = self._versions("trusted")
        new = {
            d: [f for f, v in files.items() if not done.get(f, set()) & {v, None}]
            for d, files in listed.items()
        }
        report.changed = sorted(f for files in new.values() for f in files if f in done)
        if report.changed:
            self.progress(f"{len(report.changed):,} file(s) changed since processed: rebuilding")
        # a file delivered again may drop records: whose, only its earlier content could say
        whole = not self._built_with_rules(TRUSTED_TABLES) or bool(report.changed)
        if not whole and not any(new.values()):
            self.progress("trusted: no new landing files")
            return report
        self._check_key(self.pseudonym_key)
        self.expect(When.BEFORE_TRUSTED, files=new)
        with ThreadPoolExecutor(len(Dataset), thread_name_prefix="quarantine") as background:
            quarantines = _together(
                *[partial(self.ingest, d, new[d], report, background) for d in Dataset]
            )
            self._classify(report, new, whole)
            for future in quarantines:
                if future is not None:
                    future.result()
        for dataset, (files, erased) in self._scrub.items():  # the raw lines too, once read
            listed[dataset].update(sup.scrub_landing(self.lake, files, erased))
        self._mark("trusted", {d: {f: {listed[d][f]} for f in new[d]} for d in Dataset}, report)
        return report

    def _listed(self, report: StageReport) -> dict[Dataset, dict[str, str]]:
        """Per dataset, the landing files this run may read -> their version. The others are
        told in `report.skipped`: a name that is not a landing file's, or (settle_seconds) a
        file modified so recently that it may still be being written."""
        listed: dict[Dataset, dict[str, str]] = {}
        settled_before = (time.time() - self.settle_seconds) * 1000
        for d in Dataset:
            files, skipped = self.lake.landing_listing(d)
            report.skipped.update(skipped)
            listed[d] = {}
            for path, file in files.items():
                if file.modified_ms > settled_before:
                    report.skipped[path] = (
                        f"modified in the last {self.settle_seconds:g} s: read once it settles"
                    )
                else:
                    listed[d][path] = file.version
            self._settled[d] = list(listed[d])
        return listed

    def _classify(self, report: StageReport, new: dict[Dataset, list[str]], whole: bool) -> None:
        """The trusted tables, for the landing files `new` (all of them if `whole`)."""
        if whole:
            customer_scope = accelerometer_scope = Scope(whole=True)

            def step_scope() -> Scope:
                return Scope(whole=True)
        else:
            changed = self._new_rows(Dataset.CUSTOMER, new[Dataset.CUSTOMER], "email")
            readers = self._new_rows(Dataset.ACCELEROMETER, new[Dataset.ACCELEROMETER], "user")
            customer_scope = Scope.of(email=changed)
            accelerometer_scope = Scope.of(user=changed, source_file=new[Dataset.ACCELEROMETER])

            def step_scope() -> Scope:
                """A device's readings change status when any claimant changes or becomes
                curated (known once accelerometer_trusted has the new readings)."""
                first = self._first_readers(readers, new[Dataset.ACCELEROMETER])
                return Scope.of(
                    serialNumber=self._serials_of(changed | first),
                    source_file=new[Dataset.STEP_TRAINER],
                )

        self._trusted_tables(report, customer_scope, accelerometer_scope, step_scope)

    def _trusted_tables(
        self,
        report: StageReport,
        customer_scope: Scope,
        accel_scope: Scope,
        step_scope: Callable[[], Scope],
    ) -> None:
        counts = report.datasets
        customers = tr.classify_customers(self.lake.read(landing_table(Dataset.CUSTOMER)))
        persons = tr.people(customers).persist()
        accel_landing = self.lake.read(landing_table(Dataset.ACCELEROMETER))
        readings = self._once(
            tr.classify_accelerometer(
                accel_scope.rows(accel_landing), persons=persons, rules=self.rules
            ),
            "accelerometer_trusted",
            accel_landing,
            accel_scope,
        )
        _together(
            partial(
                self._write_usable,
                customer_scope.rows(customers),
                tr.customer_trusted,
                "customer_trusted",
                counts[Dataset.CUSTOMER],
                report,
                customer_scope,
            ),
            partial(
                self._write_usable,
                readings,
                tr.accelerometer_trusted,
                "accelerometer_trusted",
                counts[Dataset.ACCELEROMETER],
                report,
                accel_scope,
            ),
        )
        curated = tr.customer_curated(
            self.lake.read("customer_trusted"),
            trusted_readings=self.lake.read("accelerometer_trusted"),
        )
        steps_in = step_scope()
        step_landing = self.lake.read(landing_table(Dataset.STEP_TRAINER))
        steps = self._once(
            tr.classify_step_trainer(
                steps_in.rows(step_landing),
                device_owners=tr.devices(persons, curated=curated),
                rules=self.rules,
            ),
            "step_trainer_trusted",
            step_landing,
            steps_in,
        )
        self._write_usable(
            steps,
            tr.step_trainer_trusted,
            "step_trainer_trusted",
            counts[Dataset.STEP_TRAINER],
            report,
            steps_in,
        )
        persons.unpersist()

    def _once(self, classified: DataFrame, table: str, landing: DataFrame, scope: Scope):
        """`classified` with each reading delivered before (by `table`'s natural key) marked
        `duplicate`: the copies outside `scope` were classified by earlier runs."""
        return tr.exclude_duplicates(
            classified,
            key=CATALOGUE[table].natural_key,
            earlier=None if scope.whole else scope.rows(landing, inside=False),
            delivery_order=self._delivery_order(),
        )

    def _delivery_order(self) -> DataFrame:
        """(source_file, _delivered): the landing files the trusted stage processed before
        this run, ranked by when it first did (bookmarks made before that was kept, first)."""
        first: dict[str, datetime] = {}
        for path, _, marked, _, _, at in self._rows():
            if marked == "trusted":
                at = at or datetime.min
                at = at if at.tzinfo else at.replace(tzinfo=UTC)
                first[path] = min(at, first.get(path, at))
        ranked = sorted(first, key=lambda p: (first[p], p))
        rows = [{"source_file": path, tr.DELIVERED: rank} for rank, path in enumerate(ranked)]
        return local_frame(self.lake.spark, rows, tr.DELIVERY_ORDER)

    # -- curated --------------------------------------------------------------------------
    def curated(self, *, pseudonym_key: bytes | None) -> StageReport:
        """Trusted tables -> customer_curated and machine_learning_curated, for the landing
        files the trusted stage has processed since."""
        report = StageReport()
        customers = self.lake.read("customer_trusted", rules=self.rules)
        readings = self.lake.read("accelerometer_trusted", rules=self.rules)
        steps = self.lake.read("step_trainer_trusted", rules=self.rules)
        if self.rules is Rules.PRIVACY and not pseudonym_key:
            raise ConfigError("no pseudonym key: set STEDI_PSEUDONYM_KEY (see README)")
        done, versions = self._versions("curated"), self._versions("trusted")
        pending: dict[Dataset, list[str]] = {d: [] for d in Dataset}
        for path, dataset in sorted(self.processed("trusted").items()):
            if not versions[path] <= done.get(path, set()) and None not in done.get(path, ()):
                pending[Dataset(dataset)].append(path)
        changed = any(path in done for paths in pending.values() for path in paths)
        whole = not self._built_with_rules(CURATED_TABLES) or changed
        if not whole and not any(pending.values()):
            self.progress("curated: nothing new since the last run")
            return report
        self._check_key(pseudonym_key)
        self.expect(When.BEFORE_CURATED)

        ml = "machine_learning_curated"
        added, pairs_scope = Added(), Scope()
        if whole:
            people_scope = pairs_scope = Scope(whole=True)
            subjects: set[str] = set()
        else:
            changed = self._new_rows(Dataset.CUSTOMER, pending[Dataset.CUSTOMER], "email")
            readers = self._new_rows(Dataset.ACCELEROMETER, pending[Dataset.ACCELEROMETER], "user")
            # customers whose curated status may change: a newer record, or first readings
            people = changed | self._first_readers(readers, pending[Dataset.ACCELEROMETER])
            people_scope = Scope.of(email=people)
            if self.rules is Rules.PRIVACY and self._may_add_to(ml, "curated"):
                # the pairs of people and devices whose status may change are replaced; the
                # pairs the new readings make for everybody else are added
                subjects = people | self._claimants_of(self._serials_of(people))
                added = Added(pending[Dataset.ACCELEROMETER], pending[Dataset.STEP_TRAINER])
            else:
                # every pair of anybody the new files touch is replaced
                people = changed | readers
                devices = self._new_rows(
                    Dataset.STEP_TRAINER, pending[Dataset.STEP_TRAINER], "serialNumber"
                )
                devices |= self._serials_of(people)
                subjects = people | self._claimants_of(devices)
                pairs_scope = Scope.of(user=people, serialNumber=devices)

        people_rows = tr.customer_curated(
            people_scope.rows(customers), trusted_readings=people_scope.rows(readings, email="user")
        )
        write_people = partial(self._write, people_rows, "customer_curated", report, people_scope)
        if whole:  # the table will be these rows: the pairs need not wait for it
            curated_customers = people_rows
        else:
            if not people_scope.empty:  # else no customer's status can change
                write_people()
            curated_customers = self.lake.read("customer_curated")
        if self.rules is Rules.UDACITY:
            pairs, scope = self._pairs_same_time(steps, readings, pairs_scope)
        else:
            pairs, scope = self._pairs_same_person(
                steps,
                readings,
                curated_customers,
                subjects,
                whole=whole,
                pseudonym_key=pseudonym_key,
                added=added,
            )
        write_pairs = partial(self._write, pairs, ml, report, scope, adds=bool(added))
        if whole:
            _together(write_people, write_pairs)
        elif not scope.empty or added:
            write_pairs()
        if self.rules is Rules.PRIVACY and pseudonym_key:
            self._record_key(ml, pseudonym_key)
        self._mark(
            "curated", {d: {p: versions[p] for p in paths} for d, paths in pending.items()}, report
        )
        return report

    def _check_key(self, key: bytes | None) -> None:
        """Refuse, before any write, a key other than the one the lake was built with."""
        if key and key != self._checked_key:
            erasure.check_key(self.lake, key)
            self._checked_key = key

    def _record_key(self, table: str, key: bytes) -> None:
        """The table records the fingerprint of the key its subject keys were made with."""
        if self.lake.table_property(table, FINGERPRINT_PROPERTY) != fingerprint(key):
            self.lake.set_table_property(table, FINGERPRINT_PROPERTY, fingerprint(key))

    def _pairs_same_time(
        self, steps: DataFrame, readings: DataFrame, scope: Scope
    ) -> tuple[DataFrame, Scope]:
        """udacity: a pair changes when its reading's user or its device is affected."""
        if scope.whole:
            return cur.pair_same_time(steps, accelerometer_readings=readings), scope
        users = Scope.of(user=scope.keys.get("user", ()))
        devices = Scope.of(serialNumber=scope.keys.get("serialNumber", ()))
        # the pairs of affected users, and the others' pairs with affected devices: disjoint
        of_users = cur.pair_same_time(steps, accelerometer_readings=users.rows(readings))
        others = users.rows(readings, inside=False)
        of_devices = cur.pair_same_time(devices.rows(steps), accelerometer_readings=others)
        return of_users.unionByName(of_devices), scope

    def _pairs_same_person(
        self,
        steps: DataFrame,
        readings: DataFrame,
        curated_customers: DataFrame,
        subjects: set[str],
        *,
        whole: bool,
        pseudonym_key: bytes,
        added: "Added",
    ) -> tuple[DataFrame, Scope]:
        """privacy: the pairs of the affected people, replaced by their subject keys, and the
        pairs the `added` files' readings make for everybody else."""
        pair = partial(cur.pair_same_person, pseudonym_key=pseudonym_key)
        people = Scope.of(email=subjects)
        if whole or people.whole:
            return pair(
                steps, accelerometer_readings=readings, curated_customers=curated_customers
            ), Scope(whole=True)
        keys = subject_keys(subjects, key=pseudonym_key)
        pairs = pair(
            steps,
            accelerometer_readings=people.rows(readings, email="user"),
            curated_customers=people.rows(curated_customers),
        )
        others = people.rows(curated_customers, inside=False)
        # plain filters, not scopes: a scope of too many files is "whole", and adding every
        # pair again would duplicate them
        new_step = F.col("source_file").isin(added.step_trainer)
        new_reading = F.col("source_file").isin(added.accelerometer)
        if added.step_trainer:  # new steps with any reading
            pairs = pairs.unionByName(
                pair(
                    steps.filter(new_step),
                    accelerometer_readings=readings,
                    curated_customers=others,
                )
            )
        if added.accelerometer:  # earlier steps with new readings
            pairs = pairs.unionByName(
                pair(
                    steps.filter(~new_step),
                    accelerometer_readings=readings.filter(new_reading),
                    curated_customers=others,
                )
            )
        return pairs, Scope.of(subject_key=keys)


def run_stages(stages: Stages, command: str, *, pseudonym_key: bytes | None) -> StageReport:
    """Run the trusted stage, the curated stage or both (`all`), and record the run in `runs`,
    also when it fails; a run that found nothing to do writes nothing, not even its record
    (which `stages.record` holds either way)."""
    if pending := erasure.pending_erasures(stages.lake):
        raise LakeError(
            f"{len(pending)} erasure(s) did not finish: run the same `stedi-lake forget "
            "--email ...` again to finish it before any run"
        )
    if stages.pseudonym_key is None:
        stages.pseudonym_key = pseudonym_key
    started_at, report, error = datetime.now(UTC), StageReport(), None
    try:
        if command in ("trusted", "all"):
            report = report.merge(stages.trusted())
        if command in ("curated", "all"):
            report = report.merge(stages.curated(pseudonym_key=pseudonym_key))
        if any(o.expectation.when is When.BEFORE_CURATED for o in stages.outcomes):
            stages.expect(When.AFTER_CURATED, pseudonym_key=pseudonym_key)  # can only warn
        stages.lake.registered()  # in the catalog (registered beside the stages' work)
    except Exception as exc:
        error = exc
        raise
    finally:
        stages.record = run_record(stages, command, started_at, report, error)
        if report.writes or error:
            try:
                if stages.outcomes:
                    q.record_quality(stages.lake, stages.run_id, stages.outcomes)
                record_run(stages.lake, stages.record)
            except Exception:
                if error is None:
                    raise  # else the run's own failure is the one to show
    return report


def watch(
    lake: Lake,
    *,
    rules: Rules,
    pseudonym_key: bytes | None,
    every: float,
    runs: int = 0,
    settle_seconds: float = 0.0,
    progress: Progress = _quiet,
    on_run: Callable[[StageReport, float], None] = lambda report, seconds: None,
    on_idle: Callable[[int], None] = lambda written: None,
    on_failure: Callable[[BaseException, float], None] = lambda error, delay: None,
    sleep: Callable[[float], None] = time.sleep,
    quality: QualitySettings | None = None,
) -> int:
    """Run every stage now, then again every `every` seconds, in this one Spark session, until
    `runs` runs have written something (0: until interrupted). A file modified in the last
    `settle_seconds` may still be being written: it is left for a later look. Each run is a
    run of its own (its own id, bookmarks and `runs` record); later runs find the JVM's code
    compiled and Delta's snapshots cached, so a new file costs them much less than a `run`
    command.
    A failed run is recorded (`run_stages`), told to `on_failure` with the seconds until the
    next look, and tried again with later deliveries after a backoff; only a configuration
    error stops the watcher. Returns the number of runs that wrote something."""
    written = failures = 0
    while True:
        started = time.monotonic()
        stages = Stages(
            lake, rules=rules, progress=progress, settle_seconds=settle_seconds, quality=quality
        )
        try:
            report = run_stages(stages, "all", pseudonym_key=pseudonym_key)
        except ConfigError:
            raise  # no later look can succeed
        except Exception as error:
            failures += 1
            delay = min(every * 2**failures, max(every, MAX_BACKOFF_SECONDS))
            on_failure(error, delay)
            sleep(delay)
            continue
        failures = 0
        if report.writes:
            written += 1
            on_run(report, time.monotonic() - started)
            if runs and written >= runs:
                return written
        on_idle(written)
        sleep(every)


def run_record(
    stages: Stages,
    command: str,
    started_at: datetime,
    report: StageReport,
    error: BaseException | None = None,
) -> dict:
    """The `runs` row of a run."""
    return {
        "run_id": stages.run_id,
        "command": command,
        "rules": str(stages.rules),
        "started_at": started_at,
        "ended_at": datetime.now(UTC),
        "outcome": "failed" if error else "succeeded",
        "error": failure_text(error)[:1000] if error else None,
        "datasets": [
            {
                "dataset": str(c.dataset),
                "files": c.files,
                "read": c.read,
                "accepted": c.accepted,
                "quarantined": c.quarantined,
                "trusted": c.trusted,
                "excluded": c.excluded,
            }
            for c in report.datasets.values()
        ],
        "writes": [
            {
                "table": w.table,
                "rows_written": w.rows,
                "rows_removed": w.removed,
                "version": w.version,
            }
            for w in report.writes
        ],
    }


def record_run(lake: Lake, record: dict) -> TableWrite:
    df = local_frame(lake.spark, [record], spark_schema(RunRecord))
    written = lake.append(df, "runs")
    lake.registered()
    return written
