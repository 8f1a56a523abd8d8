"""How long `stedi-lake forget` takes on a small lake: the sample landed and run once, then
each timed `forget` on a fresh copy of that lake, the same person each time.

    .venv/bin/python bench/forget.py [--repeat 5]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stedi_lakehouse.lake.readers import open_table

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "stedi-lake")
ENV = os.environ | {"STEDI_CONF_DIR": str(ROOT / "conf"), "STEDI_PSEUDONYM_KEY": "bench-key"}


def stedi(*args: str) -> float:
    """Run one `stedi-lake` command; its wall seconds."""
    started = time.monotonic()
    done = subprocess.run([CLI, *args], cwd=ROOT, env=ENV, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="forget-bench-") as work:
        lake = Path(work) / "lake"
        stedi("land", str(ROOT / "data/sample"), "--lake-root", str(lake))
        stedi("run", "--lake-root", str(lake))
        emails = open_table(str(lake), "customer_curated").to_pyarrow_table()["email"]
        person = sorted(emails.to_pylist())[0]
        timed = []
        for n in range(args.repeat):
            copy = Path(work) / f"copy-{n}"
            shutil.copytree(lake, copy)
            timed.append(stedi("forget", "--email", person, "--lake-root", str(copy)))
            shutil.rmtree(copy)
            print(f"forget {n + 1}: {timed[-1]:.1f} s", flush=True)
    print(f"median of {len(timed)}: {statistics.median(timed):.1f} s")


if __name__ == "__main__":
    main()
