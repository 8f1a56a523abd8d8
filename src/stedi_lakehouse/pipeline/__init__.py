"""The stages: landing -> trusted -> curated, incremental and idempotent.

Each stage processes only the landing files it has not processed before (the `processed_files`
table is its bookmark) and recomputes exactly the rows those files can change: the rows of the
new files, and every row of a person or device whose status a new record may change (a newer
customer record, a first accelerometer reading, a second owner of a serial). Those rows are
replaced in one Delta commit per table (`replaceWhere`; appended when they can only be new), so
the work grows with the new data.
A table that does not exist yet, or was built under another rules preset, is built whole; the
result is the same either way, which the tests check batch by batch.

The bookmark is written after the stage's last table. A run that dies anywhere before it leaves
the files unprocessed; the next run recomputes the same rows from the same inputs and replaces
them again, so it ends in the state an uninterrupted run would have reached.

A stage returns what it wrote and counted, so every run can show that nothing was lost: per
dataset, records read = accepted + quarantined, and rows evaluated = trusted + excluded.

    results    what a stage reports (plain data)
    scope      the rows a stage replaces, the files it adds
    bookmarks  processed_files: what each stage has processed, by which run
    lookups    whose status new files may change, looked up once per run
    context    Stages: one run's context, and the writes every stage makes
    ingest     new landing files -> landing and quarantine tables
    trusted    the trusted stage
    curated    the curated stage
    run        run_stages, watch, the run's record in `runs`
"""

from stedi_lakehouse.pipeline.context import Stages
from stedi_lakehouse.pipeline.results import DatasetCounts, StageReport
from stedi_lakehouse.pipeline.run import record_run, run_record, run_stages, watch

__all__ = [
    "DatasetCounts",
    "StageReport",
    "Stages",
    "record_run",
    "run_record",
    "run_stages",
    "watch",
]
