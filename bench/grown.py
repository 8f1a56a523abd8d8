"""The cold run of a lake grown by deliveries, the denominator of a delivery's share: the
landing folder of a lake (say the served lake `make bench SCALE=SAMPLE DELIVERIES=100` left)
hard-linked into new lakes, then `stedi-lake run` on each, through a new lake server and
in-process in turn, `--runs` times each way. Prints every run's seconds and the medians.

    .venv/bin/python bench/grown.py .cache/bench/SAMPLE/lake-served [--runs 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deliveries import fresh_lake  # noqa: E402
from bench.run import PSEUDONYM_KEY  # noqa: E402

CLI = str(Path(sys.executable).parent / "stedi-lake")
WAYS = ("through a new server", "in-process")


def cold_run(landing: Path, lake: Path, env: dict[str, str], *, served: bool) -> float:
    """Seconds of `stedi-lake run` on a new lake holding `landing` (the server's start and
    stop not counted)."""
    fresh_lake(landing, lake)
    root = ["--lake-root", str(lake)]
    if served:
        subprocess.run([CLI, "server", "start", *root], env=env, check=True, capture_output=True)
    try:
        started = time.perf_counter()
        subprocess.run([CLI, "run", *root], env=env, check=True, capture_output=True)
        return time.perf_counter() - started
    finally:
        if served:
            subprocess.run([CLI, "server", "stop", *root], env=env, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lake", type=Path, help="a lake whose landing folder is reused")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    landing = args.lake / "landing"
    if not landing.is_dir():
        raise SystemExit(f"error: {landing} is not a folder")
    env = {**os.environ, "STEDI_PSEUDONYM_KEY": PSEUDONYM_KEY}
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory(prefix="grown-") as folder:
        for i in range(args.runs):
            for way in WAYS:  # alternating: the machine's drift falls on both alike
                lake = Path(folder) / f"lake-{i}-{WAYS.index(way)}"
                seconds[way].append(cold_run(landing, lake, env, served=way == WAYS[0]))
                print(f"{way}: {seconds[way][-1]:.1f} s", flush=True)
    for way, runs in seconds.items():
        shown = ", ".join(f"{s:.1f}" for s in runs)
        print(f"{way}: median {statistics.median(runs):.1f} s ({shown})")


if __name__ == "__main__":
    main()
