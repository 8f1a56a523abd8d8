"""The `processed_files` bookkeeping of one run: which landing files (in which versions) each
stage has processed, and by which run, read once per run and marked as the stages finish."""

from datetime import UTC, datetime
from typing import NamedTuple

from pyspark.sql import DataFrame

from stedi_lakehouse.contracts.spark import columns
from stedi_lakehouse.contracts.tables import Dataset, ProcessedFile, Table
from stedi_lakehouse.lake.status import LakeLog
from stedi_lakehouse.lake.tables import Lake, local_frame, records_frame
from stedi_lakehouse.pipeline.results import StageReport
from stedi_lakehouse.transforms import trusted as tr

# Recorded with each commit: the run that made it, and whether it added rows outside its scope.
RUN_KEY, ADDS_KEY = "run_id", "adds"
# and that its addresses and serial numbers are in lower case (not so in a lake made before 0.3)
IDENTIFIERS_KEY, LOWER_CASE = "identifiers", "lower case"


class Mark(NamedTuple):
    """A `processed_files` row, in the contract's column order."""

    path: str
    dataset: str
    stage: str
    run_id: str
    version: str | None
    processed_at: datetime | None


class Bookmarks:
    """The bookmarks of one lake as this run sees them: the table's rows, read once, and this
    run's own marks added as it makes them."""

    def __init__(self, lake: Lake, *, run_id: str, started_at: datetime):
        self.lake, self.run_id, self.started_at = lake, run_id, started_at
        self._marks: list[Mark] | None = None

    def processed(self, stage: str) -> dict[str, str]:
        """The landing files `stage` has processed: path -> dataset."""
        return {m.path: m.dataset for m in self._of(stage)}

    def versions(self, stage: str) -> dict[str, set[str | None]]:
        """path -> every version of the file `stage` has processed (None: bookmarked before
        versions were kept, taken as the file's current one)."""
        versions: dict[str, set[str | None]] = {}
        for mark in self._of(stage):
            versions.setdefault(mark.path, set()).add(mark.version)
        return versions

    def written_by_finished_run(self, table: str, stage: str) -> bool:
        """Whether the table's latest write was made by a run that finished `stage` (its run
        id is among the stage's bookmarks)."""
        finished = {mark.run_id for mark in self._of(stage)}
        return self.lake.table_metadata(table).get(RUN_KEY) in finished

    def mark(
        self, stage: str, files: dict[Dataset, dict[str, set[str | None]]], report: StageReport
    ) -> None:
        """Bookmark the files (path -> the versions processed) for `stage`."""
        marks = [
            Mark(path, str(d), stage, self.run_id, version, self.started_at)
            for d, paths in files.items()
            for path, versions in paths.items()
            for version in sorted(versions, key=str)
        ]
        if marks:
            rows = self._rows()  # read before this run's first mark
            names = columns(ProcessedFile)
            records = [ProcessedFile(**dict(zip(names, mark, strict=True))) for mark in marks]
            df = records_frame(self.lake.spark, ProcessedFile, records)
            report.writes.append(self.lake.append(df, Table.PROCESSED_FILES))
            rows.extend(marks)

    def delivery_order(self) -> DataFrame:
        """(source_file, _delivered): the landing files the trusted stage processed before
        this run, ranked by when it first did (bookmarks made before that was kept, first)."""
        first: dict[str, datetime] = {}
        for mark in self._of("trusted"):
            at = mark.processed_at or datetime.min
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            first[mark.path] = min(at, first.get(mark.path, at))
        ranked = sorted(first, key=lambda p: (first[p], p))
        rows = [{"source_file": path, tr.DELIVERED: rank} for rank, path in enumerate(ranked)]
        return local_frame(self.lake.spark, rows, tr.DELIVERY_ORDER)

    def _of(self, stage: str) -> list[Mark]:
        return [mark for mark in self._rows() if mark.stage == stage]

    def _rows(self) -> list[Mark]:
        """The rows of `processed_files`, read once per run from the table's Delta log and
        files (delta-rs: no Spark query)."""
        if self._marks is None:
            rows = LakeLog(self.lake.root).rows(Table.PROCESSED_FILES, columns(ProcessedFile))
            self._marks = [Mark(**row) for row in rows]
        return self._marks
