"""What a command's fixed cost is made of: a `stedi-lake` command on an existing lake, timed
with and without the JVM class-data archive (`spark.class_archive`) and with each compiler
(`spark.jit`). By default the lake `make bench SCALE=L` leaves behind, where nothing is new.

    .venv/bin/python bench/startup.py [--lake .cache/bench/L/lake] [--repeat 2]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "stedi-lake")
NO_ARCHIVE = "/nonexistent/spark.jsa"  # a missing archive is not used
VARIANTS = {
    "no archive, default compiler": {
        "STEDI_SPARK__CLASS_ARCHIVE": NO_ARCHIVE,
        "STEDI_SPARK__JIT": "full",
    },
    "archive, default compiler": {"STEDI_SPARK__JIT": "full"},
    "archive, C1 only (quick)": {"STEDI_SPARK__JIT": "quick"},
}
# `status` and `history` start no JVM (they read the Delta logs): `make bench` times them.
COMMANDS = {"run (nothing new)": ["run"]}


def seconds(args: list[str], lake: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [CLI, *args, "--lake-root", str(lake)],
        cwd=ROOT,
        env=os.environ | {"STEDI_CONF_DIR": str(ROOT / "conf")} | env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, default=ROOT / ".cache/bench/L/lake")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not (args.lake / "delta").is_dir():
        raise SystemExit(f"no lake at {args.lake}: run `make bench SCALE=L` first")
    print(f"{'command':20s} {'JVM':32s} seconds")
    for command, cli_args in COMMANDS.items():
        for variant, env in VARIANTS.items():
            runs = [seconds(cli_args, args.lake, env) for _ in range(args.repeat)]
            print(f"{command:20s} {variant:32s} {' '.join(f'{s:5.1f}' for s in runs)}", flush=True)


if __name__ == "__main__":
    main()
