"""Maintenance: small files compacted, replaced files deleted once their retention has passed.

Every table is compacted (`OPTIMIZE`: many small files, one per delivery, become few) and
vacuumed (`VACUUM` with the configured retention): files no version within the retention uses
are deleted, so the data of a person who withdrew consent leaves the storage, not only the
current version. Old log entries go with Delta's log retention (30 days). `run` maintains the
lake when the last maintenance is older than `maintenance.every_hours`; each maintenance is
recorded in `runs` (command `maintain`).
"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pyspark.sql import functions as F

from stedi_lakehouse.contracts.tables import CATALOGUE, RunRecord, Table, TableRun
from stedi_lakehouse.errors import failure_text
from stedi_lakehouse.io import Lake, records_frame
from stedi_lakehouse.settings import MaintenanceSettings

COMMAND = "maintain"


def maintain(
    lake: Lake, settings: MaintenanceSettings, *, progress: Callable[[str], None] = print
) -> RunRecord:
    """Compact and vacuum every table; the maintenance's `runs` record."""
    started, error, writes = datetime.now(UTC), None, []
    try:
        for name in CATALOGUE:
            if lake.exists(name):
                progress(f"compacting and vacuuming {name}")
                removed = lake.compact(name)
                lake.vacuum(name, retention_hours=settings.retention_hours)
                writes.append(
                    TableRun(
                        table=name, rows_written=0, rows_removed=removed, version=lake.version(name)
                    )
                )
    except Exception as exc:
        error = exc
        raise
    finally:
        record = RunRecord(
            run_id=uuid.uuid4().hex,
            command=COMMAND,
            rules="",
            started_at=started,
            ended_at=datetime.now(UTC),
            outcome="failed" if error else "succeeded",
            error=failure_text(error)[:1000] if error else None,
            datasets=[],
            writes=writes,
        )
        if writes or error:
            lake.append(records_frame(lake.spark, RunRecord, [record]), Table.RUNS)
    return record


def due(lake: Lake, settings: MaintenanceSettings, now: datetime | None = None) -> bool:
    """Whether the last maintenance (or, for a lake never maintained, its first run) is older
    than `every_hours`."""
    if not lake.exists(Table.RUNS):
        return False
    runs = lake.read(Table.RUNS)
    maintained = runs.filter(F.col("command") == COMMAND)
    since = (
        maintained.agg(F.max("started_at")).collect()[0][0]
        or runs.agg(F.min("started_at")).collect()[0][0]
    )
    if since is None:
        return False
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) - since > timedelta(hours=settings.every_hours)
