"""A run: the stages one after the other, then the compaction of the tables it left with too
many small files, recorded in `runs` (also when it fails), once or again and again (`watch`)."""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from stedi_lakehouse.contracts.tables import DatasetRun, RunRecord, Table, TableRun
from stedi_lakehouse.erasure import forget as erasure
from stedi_lakehouse.errors import ConfigError, LakeError, failure_text, lost_endpoint
from stedi_lakehouse.lake.maintenance import compact_small_files
from stedi_lakehouse.lake.tables import Lake, TableWrite, records_frame
from stedi_lakehouse.parallel import together
from stedi_lakehouse.pipeline import quality as q
from stedi_lakehouse.pipeline.context import Progress, Stages, quiet
from stedi_lakehouse.pipeline.results import StageReport
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.settings import MaintenanceSettings, QualitySettings

# After a failed run, `watch` waits its interval doubled per failure in a row, up to this.
MAX_BACKOFF_SECONDS = 600.0


def run_stages(stages: Stages, command: str, *, pseudonym_key: bytes | None) -> StageReport:
    """Run the trusted stage, the curated stage or both (`all`), compact the tables it wrote
    that now hold too many small files, and record the run in `runs`, also when it fails; a run
    that found nothing to do writes nothing, not even its record (which `stages.record` holds
    either way)."""
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
        stages.lake.catalog.registered()  # in the catalog (registered beside the stages' work)
        if report.writes:
            report.compactions = compact_small_files(
                stages.lake,
                written_tables(stages, report),
                stages.maintenance,
                progress=stages.progress,
            )
    except Exception as exc:
        error = exc
        raise
    finally:
        record = run_record(stages, command, started_at, report, error)
        stages.record = record.model_dump()
        # an endpoint that went away cannot take the record either: no half-minute of retries
        if (report.writes or error) and not (error and lost_endpoint(error)):
            records = [partial(record_run, stages.lake, record)]
            if outcomes := stages.outcomes:
                records.append(partial(q.record_quality, stages.lake, stages.run_id, outcomes))
            try:
                together(*records)  # two tables: neither commit waits for the other
                stages.lake.catalog.registered()
            except Exception:
                if error is None:
                    raise  # else the run's own failure is the one to show
    return report


def written_tables(stages: Stages, report: StageReport) -> list[str]:
    """The tables a run writes: those it committed to, then the records it appends last (a
    compaction before them leaves them at most one small file over the threshold)."""
    records = [Table.QUALITY] if stages.outcomes else []
    return list(dict.fromkeys([*(w.table for w in report.writes), *records, Table.RUNS]))


def watch(
    lake: Lake,
    *,
    rules: Rules,
    pseudonym_key: bytes | None,
    every: float,
    runs: int = 0,
    settle_seconds: float = 0.0,
    progress: Progress = quiet,
    on_run: Callable[[StageReport, float], None] = lambda report, seconds: None,
    on_idle: Callable[[int], None] = lambda written: None,
    on_failure: Callable[[BaseException, float], None] = lambda error, delay: None,
    sleep: Callable[[float], None] = time.sleep,
    quality: QualitySettings | None = None,
    maintenance: MaintenanceSettings | None = None,
) -> int:
    """Run every stage now, then again every `every` seconds, in this one Spark session, until
    `runs` runs have written something (0: until interrupted). A file modified in the last
    `settle_seconds` may still be being written: it is left for a later look. Each run is a
    run of its own (its own id, bookmarks and `runs` record); later runs find the JVM's code
    compiled and Delta's snapshots cached, so a new file costs them much less than a `run`
    command.
    A failed run is recorded (`run_stages`), told to `on_failure` with the seconds until the
    next look, and tried again with later deliveries after a backoff; only a configuration
    error or the loss of a Spark Connect endpoint stops the watcher. Returns the number of
    runs that wrote something."""
    written = failures = 0
    while True:
        started = time.monotonic()
        stages = Stages(
            lake,
            rules=rules,
            progress=progress,
            settle_seconds=settle_seconds,
            quality=quality,
            maintenance=maintenance,
        )
        try:
            report = run_stages(stages, "all", pseudonym_key=pseudonym_key)
        except ConfigError:
            raise  # no later look can succeed
        except Exception as error:
            if lost_endpoint(error):
                raise  # nor through a session whose endpoint is gone
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
) -> RunRecord:
    """The `runs` row of a run."""
    return RunRecord(
        run_id=stages.run_id,
        command=command,
        rules=str(stages.rules),
        started_at=started_at,
        ended_at=datetime.now(UTC),
        outcome="failed" if error else "succeeded",
        error=failure_text(error)[:1000] if error else None,
        datasets=[
            DatasetRun(
                dataset=str(c.dataset),
                files=c.files,
                read=c.read,
                accepted=c.accepted,
                quarantined=c.quarantined,
                trusted=c.trusted,
                excluded=c.excluded,
            )
            for c in report.datasets.values()
        ],
        writes=[
            TableRun(table=w.table, rows_written=w.rows, rows_removed=w.removed, version=w.version)
            for w in report.writes
        ],
        compactions=report.compactions,
    )


def record_run(lake: Lake, record: RunRecord) -> TableWrite:
    """Append the run's record to `runs`."""
    return lake.append(records_frame(lake.spark, RunRecord, [record]), Table.RUNS)
