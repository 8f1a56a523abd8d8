"""`Stages`: the context of one run (the lake, the rules, the run's bookmarks and lookups) and
the writes every stage makes through it."""

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime

from pyspark.sql import DataFrame, Observation

from stedi_lakehouse.contracts.expectations import When, expectations
from stedi_lakehouse.contracts.tables import Dataset, landing_table
from stedi_lakehouse.erasure import forget as erasure
from stedi_lakehouse.erasure import suppression as sup
from stedi_lakehouse.erasure.identifiers import Subject
from stedi_lakehouse.lake.tables import Lake, TableWrite
from stedi_lakehouse.pipeline import curated, ingest, trusted
from stedi_lakehouse.pipeline import quality as q
from stedi_lakehouse.pipeline.bookmarks import (
    ADDS_KEY,
    IDENTIFIERS_KEY,
    LOWER_CASE,
    RUN_KEY,
    Bookmarks,
)
from stedi_lakehouse.pipeline.lookups import Lookups
from stedi_lakehouse.pipeline.results import DatasetCounts, StageReport
from stedi_lakehouse.pipeline.scope import WHOLE, Scope
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.settings import MaintenanceSettings, QualitySettings
from stedi_lakehouse.transforms import trusted as tr

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    pass


class Stages:
    """One run's context: the lake under one rules preset, the run's bookmarks and lookups,
    and its writes; `trusted()` and `curated()` run the stages with it."""

    def __init__(
        self,
        lake: Lake,
        *,
        rules: Rules,
        progress: Progress = quiet,
        run_id: str | None = None,
        pseudonym_key: bytes | None = None,
        settle_seconds: float = 0.0,
        quality: QualitySettings | None = None,
        maintenance: MaintenanceSettings | None = None,
    ):
        self.lake, self.rules, self.progress = lake, rules, progress
        self.maintenance = maintenance or MaintenanceSettings.model_validate({})
        self.settle_seconds = settle_seconds
        self.settled: dict[Dataset, list[str]] = {}  # the landing files this run may read
        self.run_id = run_id or uuid.uuid4().hex
        self.pseudonym_key = pseudonym_key
        self.scrub: dict[Dataset, tuple[list[str], Subject]] = {}  # landing lines to erase
        self.started_at = datetime.now(UTC)
        self.expectations = expectations(rules, quality or QualitySettings.model_validate({}))
        self.outcomes: list[q.Outcome] = []  # every expectation checked, for `quality`
        self.bookmarks = Bookmarks(lake, run_id=self.run_id, started_at=self.started_at)
        self.lookups = Lookups(lake)
        self.record: dict[str, object] | None = None  # the run's `runs` row, once run
        self._suppressed: sup.Suppressed | None = None
        self._kept_ambiguous: set[str] | None = None
        self._checked_key: bytes | None = None

    def trusted(self) -> StageReport:
        """New landing files -> landing and quarantine tables -> trusted tables."""
        return trusted.trusted(self)

    def curated(self, *, pseudonym_key: bytes | None) -> StageReport:
        """Trusted tables -> curated tables, for the files the trusted stage processed since."""
        return curated.curated(self, pseudonym_key=pseudonym_key)

    def ingest(self, dataset: Dataset, files: list[str], report: StageReport) -> None:
        """Validate new landing files into <dataset>_landing and <dataset>_quarantine."""
        batch = ingest.read_batch(self, dataset, files)
        if batch is not None:
            ingest.ingest(self, batch, report)

    def processed(self, stage: str) -> dict[str, str]:
        """The landing files `stage` has processed: path -> dataset."""
        return self.bookmarks.processed(stage)

    @property
    def suppressed(self) -> sup.Suppressed:
        """The suppression list (read once per run)."""
        if self._suppressed is None:
            self._suppressed = sup.Suppressed.of(self.lake, self.pseudonym_key)
        return self._suppressed

    def suppressions_changed(self) -> None:
        self._suppressed = self._kept_ambiguous = None  # read again when next used

    def kept_ambiguous(self) -> set[str]:
        """The devices customers claim that an erased person claimed too (`privacy`: a device
        with two owners is nobody's), found once per run. Every run recomputes their rows: a
        device listed so after its readings were trusted (a forgotten person's later claim)
        loses them, also when the run that listed it stopped before it could."""
        if self.rules is not Rules.PRIVACY or not self.suppressed.shared:
            return set()
        if self._kept_ambiguous is None:
            claims = self.lake.read(landing_table(Dataset.CUSTOMER)).select("serialNumber")
            self._kept_ambiguous = self.suppressed.shared_devices(claims)
        return self._kept_ambiguous

    def expect(
        self,
        when: When,
        *,
        landing: dict[Dataset, tuple[int, int]] | None = None,
        pseudonym_key: bytes | None = None,
    ) -> None:
        """Check the expectations of `when`; stop on a failed `fail` (before the stage writes)."""
        self.progress(f"checking expectations {when}")
        outcomes = q.check(
            self.lake, self.expectations, when, landing=landing, pseudonym_key=pseudonym_key
        )
        self.outcomes += outcomes
        q.enforce(outcomes)

    def check_key(self, key: bytes | None) -> None:
        """Refuse, before any write, a key other than the one the lake was built with."""
        if key and key != self._checked_key:
            erasure.check_key(self.lake, key)
            self._checked_key = key

    def built_with_rules(self, tables: Iterable[str]) -> bool:
        """Whether every table exists, made under this run's rules and in lower case."""
        return all(
            self.lake.exists(t) and self.lake.table_rules(t) == self.rules and self.lower_case(t)
            for t in tables
        )

    def lower_case(self, table: str) -> bool:
        """Whether the table's addresses and serial numbers are in lower case (it was written
        since 0.3)."""
        return self.lake.table_metadata(table).get(IDENTIFIERS_KEY) == LOWER_CASE

    def write(
        self,
        df: DataFrame,
        table: str,
        *,
        report: StageReport,
        scope: Scope = WHOLE,
        adds: bool = False,
        recorded: dict[str, str] | None = None,
    ) -> TableWrite:
        """Write `df` as the rows of `scope` (adds: and add its rows outside the scope), the
        commit recording `recorded` beside the run's id."""
        self.progress(f"writing {table}")
        started = time.monotonic()
        metadata = {RUN_KEY: self.run_id, IDENTIFIERS_KEY: LOWER_CASE}
        metadata |= ({ADDS_KEY: "true"} if adds else {}) | (recorded or {})
        # nothing in the table to replace: its rows are added, no files searched for
        append = scope.empty if adds else self._only_new_rows(table, scope)
        where = scope.predicate()
        if append:
            written = self.lake.append(df, table, rules=self.rules, metadata=metadata)
        elif where is None:
            written = self.lake.overwrite(df, table, rules=self.rules, metadata=metadata)
        else:
            written = self.lake.replace_where(
                df, table, where, rules=self.rules, metadata=metadata, adds=adds
            )
        written = replace(written, seconds=time.monotonic() - started)
        if not written.committed:
            self.progress(f"{table}: nothing to change")
            return written
        report.writes.append(written)
        replaced = f", {written.removed:,} replaced" if written.removed else ""
        self.progress(f"wrote {table}: {written.rows:,} rows{replaced} (version {written.version})")
        return written

    def write_usable(
        self,
        classified: DataFrame,
        *,
        usable: Callable[[DataFrame], DataFrame],
        table: str,
        counts: DatasetCounts,
        report: StageReport,
        scope: Scope,
    ) -> None:
        """Write the `usable` rows of a classified frame; count every reason in the same job."""
        if scope.empty:
            return
        observation = Observation(f"{table}-exclusions")
        observed = classified.observe(observation, *tr.exclusion_metrics())
        self.write(usable(observed), table, report=report, scope=scope)
        metrics = observation.get
        counts.trusted = metrics.pop(tr.USABLE)
        counts.excluded.update({reason: n for reason, n in metrics.items() if n})

    def _only_new_rows(self, table: str, scope: Scope) -> bool:
        """Whether the table holds none of the rows of `scope`, which then need no replacing:
        the scope is rows of landing files the trusted stage has not processed, and the
        table's latest write was made by a run that finished that stage. (A run that stopped
        before its bookmark may have written rows of those files; the next run replaces them.)
        Appending spares Delta finding the files that hold the rows to replace."""
        files = scope.keys.get("source_file")
        if scope.whole or files is None or len(scope.keys) != 1 or not self.lake.exists(table):
            return False
        if not files.isdisjoint(self.bookmarks.processed("trusted")):
            return False
        return self.bookmarks.written_by_finished_run(table, "trusted")
