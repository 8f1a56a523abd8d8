"""Maintenance: small files compacted, replaced files deleted once their retention has passed.

Every table is compacted (`OPTIMIZE`: many small files, one per delivery, become few) and
vacuumed (`VACUUM` with the configured retention): files no version within the retention uses
are deleted, so the data of a person who withdrew consent leaves the storage, not only the
current version. Old log entries go with Delta's log retention (30 days). `run` maintains the
lake when the last maintenance is older than `maintenance.every_hours`; each maintenance is
recorded in `runs` (command `maintain`).
"""

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pyspark.sql import functions as F

from stedi_lakehouse.contracts.tables import CATALOGUE, RunRecord, Table, TableRun
from stedi_lakehouse.errors import failure_text
from stedi_lakehouse.lake.status import LakeLog
from stedi_lakehouse.lake.tables import Lake, records_frame
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
                removed = compact(lake, name)
                vacuum(lake, name, retention_hours=settings.retention_hours)
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


RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


def compact(lake: Lake, name: str) -> int:
    """Rewrite the table's small files into few (OPTIMIZE); the number of files replaced.
    The rows do not change."""
    path = lake.table_path(name)
    with lake.stating_rules(name):
        lake.spark.sql(f"OPTIMIZE delta.`{path}`").collect()
    lake.changed(name)
    commit = lake.log.last_commit(path)
    if commit.get("operation") != "OPTIMIZE":
        return 0
    return int((commit.get("operationMetrics") or {}).get("numRemovedFiles", 0))


def vacuum(lake: Lake, name: str, *, retention_hours: float) -> None:
    """Delete the data files no version of the last `retention_hours` uses (a retention
    below Delta's one-week safety check is the operator's explicit choice)."""
    path = lake.table_path(name)
    with lake.setting(RETENTION_CHECK, "false"), lake.stating_rules(name):
        lake.spark.sql(f"VACUUM delta.`{path}` RETAIN {retention_hours:g} HOURS").collect()
    lake.changed(name)


# A file of a table's Delta log that belongs to one version: a commit, its checksum, a
# checkpoint (local file systems also keep a hidden checksum of each file: `.<name>.crc`).
VERSION_FILE = re.compile(r"\.?(\d{20})\.")


def purge_history(lake: Lake, name: str) -> None:
    """Make table `name`'s current version its only one: rewrite files carrying deletion
    vectors, delete every data file it no longer uses (VACUUM with a zero retention, the
    retention safety check lifted for this call only), then checkpoint the log (with
    delta-rs) and delete the log files before it. Earlier versions can no longer be read.
    SQL and delta-rs only: it runs in-process and through a lake server alike, whose Delta
    reads the log again from the checkpoint at its next query."""
    spark, path = lake.spark, lake.table_path(name)
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()[0]["properties"]
    if properties.get("delta.enableDeletionVectors") == "true":
        spark.sql(f"REORG TABLE delta.`{path}` APPLY (PURGE)")
    with lake.setting(RETENTION_CHECK, "false"), lake.stating_rules(name):
        spark.sql(f"VACUUM delta.`{path}` RETAIN 0 HOURS")
    delta = LakeLog(lake.root).open(name)
    assert delta is not None, f"{name} has no Delta log"
    delta.create_checkpoint()
    latest = delta.version()
    log = f"{path}/_delta_log".removeprefix(f"{lake.root}/")
    for file in lake.storage.names_in(log):
        match = VERSION_FILE.match(file)
        if match and int(match.group(1)) < latest:
            lake.storage.delete(f"{log}/{file}")
    lake.changed(name)
