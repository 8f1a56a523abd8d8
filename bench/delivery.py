"""One small delivery into a lake (800 accelerometer and 300 step-trainer lines cut from the
sample, as `make bench` makes them), then `stedi-lake run` with the package found in SRC: what
`farm-bench --vs` pairs to compare two versions of the pipeline, the two taking turns on one
lake (through its server, if one runs). Exits with `run`'s exit code.

    git worktree add /tmp/old HEAD~1
    farm-bench -n 8 --timeout 900 --vs '.venv/bin/python bench/delivery.py LAKE /tmp/old/src' \\
        -- .venv/bin/python bench/delivery.py LAKE src
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import PSEUDONYM_KEY, SAMPLE  # noqa: E402
from bench.served import deliver  # noqa: E402


def next_number(lake: Path) -> int:
    """One more than the highest delivery number the lake's landing folder holds."""
    numbers = [
        int(m.group(1))
        for path in (lake / "landing").rglob("*-delivery-*.json")
        if (m := re.search(r"-delivery-(\d+)\.json$", path.name))
    ]
    return max(numbers, default=0) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lake", type=Path)
    parser.add_argument("src", type=Path, help="the folder holding the stedi_lakehouse package")
    args = parser.parse_args()
    if not (args.src / "stedi_lakehouse").is_dir():
        raise SystemExit(f"error: {args.src} holds no stedi_lakehouse package")
    deliver(SAMPLE, args.lake, next_number(args.lake))
    env = os.environ | {
        "PYTHONPATH": str(args.src.resolve()),
        "STEDI_CONF_DIR": str(ROOT / "conf"),
        "STEDI_PSEUDONYM_KEY": PSEUDONYM_KEY,
    }
    run = [sys.executable, "-c", "from stedi_lakehouse.cli import main; main()", "run"]
    sys.exit(subprocess.run([*run, "--lake-root", str(args.lake)], env=env).returncode)


if __name__ == "__main__":
    main()
