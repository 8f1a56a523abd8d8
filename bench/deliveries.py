"""Landing files for `make bench` (bench/run.py): a fresh lake holding the landing set, and
later deliveries cut from it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def fresh_lake(landing: Path, lake: Path) -> str:
    """A new lake folder whose landing zone holds the generated files (hard links, or copies
    where linking is impossible). Returns how the files were put in place."""
    shutil.rmtree(lake, ignore_errors=True)
    how = "hard links"
    for source in sorted(p for p in landing.rglob("*.json") if p.is_file()):
        target = lake / "landing" / source.relative_to(landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
            how = "copies"
    return how


# The field that says when a reading was taken, per feed: a delivery moves it to new moments.
TIME_FIELDS = {"accelerometer": "timestamp", "step_trainer": "sensorReadingTime"}
HOUR_MS = 3_600_000


def new_landing_file(
    landing: Path, dataset: str, target: Path, lines: int, *, delivery: int, skip: int = 0
) -> int:
    """Later delivery number `delivery`: `lines` lines of the landing set's `dataset` files
    after the first `skip`, as one new file, starting over at the set's first line as often as
    needed (a small set, many deliveries). The readings are moved to new moments, hours later
    per delivery and per pass over the set, both feeds alike (so steps still meet their
    owner's readings): new readings, as a real delivery brings, not copies the trusted stage
    would exclude as duplicates. Lines that are not JSON objects are kept as they are.
    Returns the lines written."""
    sources = sorted((landing / dataset).rglob("*.json"))
    target.parent.mkdir(parents=True, exist_ok=True)
    field = TIME_FIELDS.get(dataset)
    written = passes = 0
    with target.open("w") as out_file:
        while written < lines:
            seen = 0
            shift = (delivery * 100 + passes + 1) * HOUR_MS
            for source in sorted(sources):
                with source.open() as in_file:
                    for line in in_file:
                        seen += 1
                        if skip:
                            skip -= 1
                            continue
                        if written == lines:
                            return written
                        out_file.write(_moved(line.rstrip("\n"), field, shift) + "\n")
                        written += 1
            passes += 1
            if not seen:
                break
    return written


def _moved(line: str, field: str | None, shift: int) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not field or not isinstance(record, dict) or not isinstance(record.get(field), int):
        return line
    return json.dumps(record | {field: record[field] + shift}, separators=(",", ":"))
