"""The stages: landing -> trusted -> curated (split into modules next)."""

from stedi_lakehouse.pipeline.stages import (
    DatasetCounts,
    StageReport,
    Stages,
    record_run,
    run_record,
    run_stages,
    watch,
)

__all__ = [
    "DatasetCounts",
    "StageReport",
    "Stages",
    "record_run",
    "run_record",
    "run_stages",
    "watch",
]
