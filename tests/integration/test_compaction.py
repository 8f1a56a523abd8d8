"""Small files: a run compacts the tables it wrote once they hold more small files than
`maintenance.small_files`, so a lake fed many small deliveries keeps few files per table, with
the rows it would have had anyway. Which tables are due is read from their Delta logs."""

from pathlib import Path

import pyarrow as pa
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.tables import Table
from stedi_lakehouse.lake.maintenance import compaction_due
from stedi_lakehouse.lake.readers import open_if_present
from stedi_lakehouse.lake.status import LakeLog
from stedi_lakehouse.lake.tables import Lake
from stedi_lakehouse.pipeline import Stages, run_stages
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.settings import MaintenanceSettings
from tests.helpers import BATCHES, KEY, deliver, new_lake, snapshot

THRESHOLD = 3
# `runs` and `quality` are appended after the run's compaction: one file more at most.
RECORDS = {Table.RUNS, Table.QUALITY}


def _written(log: LakeLog, name: str, files: int) -> None:
    """Table `name` in `files` appends of one row each (one data file each), by delta-rs."""
    from deltalake import write_deltalake

    for n in range(files):
        write_deltalake(log.table_path(name), pa.table({"n": [n]}), mode="append")


def test_the_tables_due_hold_more_small_files_than_the_threshold(tmp_path):
    log = LakeLog(str(tmp_path))
    _written(log, Table.ACCELEROMETER_LANDING, THRESHOLD + 1)
    _written(log, Table.STEP_TRAINER_LANDING, THRESHOLD)
    _written(log, Table.CUSTOMER_LANDING, THRESHOLD + 1)
    from deltalake import write_deltalake

    # its latest version has one file: the ones it replaced do not count
    write_deltalake(log.table_path(Table.CUSTOMER_LANDING), pa.table({"n": [0]}), mode="overwrite")
    tables = [
        Table.ACCELEROMETER_LANDING,
        Table.STEP_TRAINER_LANDING,
        Table.CUSTOMER_LANDING,
        Table.RUNS,  # never written
    ]
    due = compaction_due(log, tables, MaintenanceSettings(small_files=THRESHOLD))
    assert due == [Table.ACCELEROMETER_LANDING]
    assert compaction_due(log, tables, MaintenanceSettings(small_files=THRESHOLD - 1)) == [
        Table.ACCELEROMETER_LANDING,
        Table.STEP_TRAINER_LANDING,
    ]
    # files of a few hundred bytes are not small under a limit of about 100 bytes
    tiny = MaintenanceSettings(small_files=THRESHOLD, small_file_mb=0.0001)
    assert compaction_due(log, tables, tiny) == []
    assert compaction_due(log, tables, MaintenanceSettings(small_files=0)) == []  # never


def _files(root: Path) -> dict[str, int]:
    """Data files of each table's latest version."""
    found = {}
    for name in Table:
        delta = open_if_present(str(root), name)
        if delta is not None:
            found[name] = len(delta.file_uris())
    return found


def test_small_deliveries_leave_few_files_and_the_rows_of_one_run(
    sample_runs, spark, test_settings, tmp_path
):
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    settings = MaintenanceSettings(small_files=THRESHOLD)
    compacted = []
    for batch in BATCHES["readings-first"]:
        deliver(Path(lake.root), batch)
        stages = Stages(lake, rules=Rules.PRIVACY, maintenance=settings)
        report = run_stages(stages, "all", pseudonym_key=KEY)
        compacted += [c.table for c in report.compactions]
        for name, files in _files(Path(lake.root)).items():
            assert files <= THRESHOLD + (name in RECORDS), f"{name}: {files} files"
    assert {Table.PROCESSED_FILES, Table.ACCELEROMETER_LANDING} <= set(compacted)
    recorded = lake.read(Table.RUNS).select(F.explode("compactions").alias("c"))
    assert sorted(r["c"]["table"] for r in recorded.collect()) == sorted(compacted)
    # the rows the whole sample gives in one run, in a lake with no compaction
    one_run = Lake(spark, str(sample_runs().root), test_settings.catalog.database)
    assert snapshot(lake) == snapshot(one_run)
