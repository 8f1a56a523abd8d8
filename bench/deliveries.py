"""Landing files for `make bench` (bench/run.py): a fresh lake holding the landing set, and
later deliveries cut from it.
"""

from __future__ import annotations

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


def new_accelerometer_file(landing: Path, target: Path, lines: int, skip: int = 0) -> int:
    """A later delivery for the incremental measurement: `lines` readings of the landing set's
    accelerometer files after the first `skip`, as one new file. Returns the lines written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with target.open("w") as out_file:
        for source in sorted((landing / "accelerometer").rglob("*.json")):
            with source.open() as in_file:
                for line in in_file:
                    if skip:
                        skip -= 1
                        continue
                    if written == lines:
                        return written
                    out_file.write(line)
                    written += 1
    return written
