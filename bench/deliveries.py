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


def new_landing_file(landing: Path, dataset: str, target: Path, lines: int, skip: int = 0) -> int:
    """A later delivery: `lines` lines of the landing set's `dataset` files after the first
    `skip`, as one new file, starting over at the set's first line as often as needed (a small
    set, many deliveries). They repeat readings the lake holds: each run reads, checks and
    records them as a new delivery does, and the trusted stage excludes them as duplicates.
    Returns the lines written."""
    sources = sorted((landing / dataset).rglob("*.json"))
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with target.open("w") as out_file:
        while written < lines:
            seen = 0
            for source in sources:
                with source.open() as in_file:
                    for line in in_file:
                        seen += 1
                        if skip:
                            skip -= 1
                            continue
                        if written == lines:
                            return written
                        out_file.write(line if line.endswith("\n") else line + "\n")
                        written += 1
            if not seen:
                break
    return written
