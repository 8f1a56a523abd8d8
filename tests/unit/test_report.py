"""What a person reads survives a log file: at 80 columns no number is cut."""

import io
import re

from rich.console import Console

from stedi_lakehouse.cli.render import fitted, records_table, runs_table, writes_table
from stedi_lakehouse.lake.tables import TableWrite
from stedi_lakehouse.pipeline import DatasetCounts

DATASETS = [
    DatasetCounts("customer", 3, 100_000, 1_008, 99_000, {"superseded": 1_000}),
    DatasetCounts("accelerometer", 40, 10_008_123, 1_234, 9_000_000, {"no consent": 1_008_123}),
    DatasetCounts("step_trainer", 4, 1_500_000, 77, 1_000_000, {"ambiguous device": 500_000}),
]
WRITES = [TableWrite("machine_learning_curated", 12_345_678, 12, "/x", 123.4, 1_234_567)]
RUNS = [
    {
        "started_at": "2026-12-04T17:00:00+00:00",
        "command": "all",
        "rules": "privacy",
        "outcome": "succeeded",
        "seconds": 1234.5,
        "new_files": 12_345,
        "rows_written": 123_456_789,
        "error": None,
    }
]


def printed(renderable, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(fitted(renderable, width))
    return console.file.getvalue()


def numbers(text: str) -> set[str]:
    return set(re.findall(r"\d[\d,.]*\d|\d", text))


def test_at_80_columns_every_number_is_printed_whole():
    for table in (records_table(DATASETS), writes_table(WRITES), runs_table(RUNS)):
        wide = printed(table, 200)
        narrow = printed(table, 80)
        assert "…" not in narrow, narrow
        assert numbers(wide) <= numbers(narrow), narrow
        assert max(map(len, narrow.splitlines())) <= 80, narrow
    for figure in ("10,009,357", "10,008,123", "1,008,123", "9,000,000"):
        assert figure in printed(records_table(DATASETS), 80)


def test_a_table_that_fits_stays_a_table():
    assert "┃ files ┃" in printed(records_table(DATASETS), 120)
    assert "┃ files ┃" not in printed(records_table(DATASETS), 80)
