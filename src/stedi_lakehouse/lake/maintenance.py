"""Maintenance: small files compacted, replaced files deleted once their retention has passed.

Every table is compacted (`OPTIMIZE`: many small files, one per delivery, become few) and
vacuumed (`VACUUM` with the configured retention): files no version within the retention uses
are deleted, so the data of a person who withdrew consent leaves the storage, not only the
current version. Old log entries go with Delta's log retention (30 days). `run` maintains the
lake when the last maintenance is older than `maintenance.every_hours`; each maintenance is
recorded in `runs` (command `maintain`).

Between maintenances, a run compacts the tables it wrote that hold more than
`maintenance.small_files` small files (`compact_small_files`), counted from their Delta logs,
so that a lake fed many small deliveries keeps few files per table.
"""

import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote

from stedi_lakehouse.contracts.tables import CATALOGUE, RunRecord, Table, TableCompaction
from stedi_lakehouse.errors import failure_text
from stedi_lakehouse.lake.layout import CHECKSUM_FILE
from stedi_lakehouse.lake.status import LakeLog
from stedi_lakehouse.lake.tables import Lake, records_frame
from stedi_lakehouse.settings import MaintenanceSettings

if TYPE_CHECKING:
    from deltalake import DeltaTable

COMMAND = "maintain"


def maintain(
    lake: Lake, settings: MaintenanceSettings, *, progress: Callable[[str], None] = print
) -> RunRecord:
    """Compact and vacuum every table; the maintenance's `runs` record."""
    started, error, compactions = datetime.now(UTC), None, []
    try:
        for name in CATALOGUE:
            if lake.exists(name):
                progress(f"compacting and vacuuming {name}")
                compactions.append(compact(lake, name, small_file_bytes=settings.small_file_bytes))
                vacuum(lake, name, retention_hours=settings.retention_hours)
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
            writes=[],
            compactions=compactions,
        )
        if compactions or error:
            lake.append(records_frame(lake.spark, RunRecord, [record]), Table.RUNS)
    return record


def due(lake: Lake, settings: MaintenanceSettings, now: datetime | None = None) -> bool:
    """Whether the last maintenance (or, for a lake never maintained, its first run) is older
    than `every_hours`. Read from the `runs` log with delta-rs: no Spark job on every run."""
    found = LakeLog(lake.root).query(
        Table.RUNS,
        f"SELECT max(started_at) FILTER (WHERE command = '{COMMAND}') AS maintained, "
        "min(started_at) AS first FROM runs",
    )
    if not found:
        return False
    since = found[0]["maintained"] or found[0]["first"]
    if since is None:
        return False
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) - since > timedelta(hours=settings.every_hours)


def compaction_due(log: LakeLog, tables: Iterable[str], settings: MaintenanceSettings) -> list[str]:
    """Those of `tables` that hold more than `small_files` small files (none when it is 0),
    counted from their Delta logs."""
    if not settings.small_files:
        return []
    below = settings.small_file_bytes
    return [name for name in tables if log.small_files(name, below) > settings.small_files]


def compact_small_files(
    lake: Lake,
    tables: Iterable[str],
    settings: MaintenanceSettings,
    *,
    progress: Callable[[str], None] = print,
) -> list[TableCompaction]:
    """Compact those of `tables` that hold too many small files (`compaction_due`)."""
    compactions = []
    for name in compaction_due(LakeLog(lake.root), tables, settings):
        progress(f"compacting {name}")
        compactions.append(compact(lake, name, small_file_bytes=settings.small_file_bytes))
    return compactions


RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
MIN_FILE_SIZE = "spark.databricks.delta.optimize.minFileSize"


def compact(lake: Lake, name: str, *, small_file_bytes: int) -> TableCompaction:
    """Rewrite the table's files under `small_file_bytes` into few (OPTIMIZE); how many it
    replaced and wrote. The rows do not change."""
    path = lake.table_path(name)
    with (
        lake.described(f"compact {name}"),
        lake.setting(MIN_FILE_SIZE, str(small_file_bytes)),
        lake.stating_rules(name),
    ):
        metrics = lake.spark.sql(f"OPTIMIZE delta.`{path}`").collect()[0]["metrics"]
    lake.changed(name)
    return TableCompaction(
        table=name,
        files_removed=metrics["numFilesRemoved"],
        files_added=metrics["numFilesAdded"],
        version=lake.version(name),
    )


def vacuum(lake: Lake, name: str, *, retention_hours: float) -> None:
    """Delete the data files no version of the last `retention_hours` uses (a retention
    below Delta's one-week safety check is the operator's explicit choice)."""
    path = lake.table_path(name)
    with lake.setting(RETENTION_CHECK, "false"), lake.stating_rules(name):
        lake.spark.sql(f"VACUUM delta.`{path}` RETAIN {retention_hours:g} HOURS").collect()
    lake.changed(name)


# Set by `purge_history`: the table's versions before the one it made were deleted.
HISTORY_PROPERTY = "stedi.history"
# A file of a table's Delta log that belongs to one version: a commit, its checksum, a
# checkpoint (local file systems also keep a hidden checksum of each file: `.<name>.crc`).
VERSION_FILE = re.compile(r"\.?(\d{20})\.")


def purge_history(lake: Lake, name: str) -> None:
    """Make table `name`'s current version its only one. The purge commits first (a table
    property, the commit stating the table's metadata): the one commit the log keeps is then
    its own, not a run's, whose predicate may spell an address. Then every file of the table
    that version does not use is deleted, the log is checkpointed (with delta-rs) and its files
    before that version are deleted. Earlier versions can no longer be read. One commit and
    file operations: a VACUUM would list and plan at length even for a small table. It runs
    in-process and through a lake server alike, whose Delta reads the log again from the
    checkpoint at its next query."""
    before = LakeLog(lake.root).open(name)
    assert before is not None, f"{name} has no Delta log"
    if "deletionVectors" in (before.protocol().reader_features or []):
        lake.spark.sql(f"REORG TABLE delta.`{lake.table_path(name)}` APPLY (PURGE)")
    lake.set_table_property(name, HISTORY_PROPERTY, "purged")
    delta = LakeLog(lake.root).open(name)
    assert delta is not None
    for relative in unused_files(lake, name, delta):
        lake.storage.delete(relative)
    delta.create_checkpoint()
    latest = delta.version()
    log = f"{lake.table_path(name)}/_delta_log".removeprefix(f"{lake.root}/")
    for file in lake.storage.names_in(log):
        match = VERSION_FILE.match(file)
        if match and int(match.group(1)) < latest:
            lake.storage.delete(f"{log}/{file}")


def unused_files(lake: Lake, name: str, delta: "DeltaTable") -> list[str]:
    """The files under table `name`'s folder (its Delta log aside) that its current version
    does not use: files replaced by later versions, files of writes that never committed, and
    their local checksums. Paths relative to the lake root."""
    folder = lake.table_path(name).removeprefix(f"{lake.root}/")
    # the log may spell a name URL-encoded: either spelling keeps a file
    used = {
        p
        for path in delta.get_add_actions().column("path").to_pylist()
        for p in (path, unquote(path))
    }
    unused = []
    for relative in lake.storage.paths_under(folder):
        inside = relative.removeprefix(f"{folder}/")
        if inside.startswith("_delta_log/"):
            continue
        directory, _, file = inside.rpartition("/")
        checked = file[1:-4] if CHECKSUM_FILE.fullmatch(file) else file  # .<name>.crc
        if f"{directory}/{checked}".lstrip("/") not in used:
            unused.append(relative)
    return unused
