"""`make bench SCALE=SAMPLE|S|M|L`: the project's pipeline against an independent DuckDB
reference, in-process and through a lake server.

1. Generates the landing set once into .cache/bench/<scale>/landing (kept while the generator
   and its parameters are unchanged; SAMPLE is data/sample as it is).
2. Runs, each as a subprocess, measured for wall seconds and the peak memory of its whole
   process tree (sum of RSS of the process and all its descendants, the JVM included, sampled
   every 0.2 s; bench/measure.py):
   a. the project's full cold run: a fresh lake whose landing files are hard links to the
      generated ones (a copy if linking fails; never timed), `stedi-lake run --lake-root`;
   b. the reference, bench/reference.py.
3. Compares the row count of every table (project: `stedi-lake status --json`, not timed), and
   at scales SAMPLE and S also against tests/oracle.py.
4. Times the later runs on the same lake (nothing new, one new accelerometer file of 1 % of the
   feed, the same to `stedi-lake watch` twice), then `stedi-lake status` and `history` (they
   read the Delta logs, no JVM) and `query` (a JVM of its own) on the finished lake, several
   runs each: the median.
5. The served path (bench/served.py; `--no-served` leaves it out): on a new lake, a lake server
   (`stedi-lake server start`) and through it the cold run (whose row counts must equal the
   in-process run's), nothing new, the same new file, `status` and `query`, then `--deliveries`
   small deliveries (800 accelerometer and 300 step-trainer lines, one run each; the first and
   the last are reported, and every table's data files after them); the server's process tree
   counts in each of these commands' memory. Then a cold run on a new lake through pysail's
   Spark Connect server (`STEDI_REMOTE`), a measurement only: its exit code and first error
   never fail the bench.
6. Prints the results and writes them to bench/results/<scale>.json; exits 1 when a count
   differs or a system fails.

Later deliveries repeat lines of the landing set (bench/deliveries.py): each run reads, checks and
records them, and the trusted stage excludes the readings as duplicates, so they add files to the
landing, quarantine and bookkeeping tables but none to the trusted and curated ones.

The logs of every command (stdout and stderr) are kept under .cache/bench/<scale>/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from stedi_lakehouse.contracts.tables import CATALOGUE, Zone

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ and devdata/ live beside the package, not in it

from bench.deliveries import fresh_lake, new_landing_file  # noqa: E402
from bench.measure import GIB, LATENCY_RUNS, latency, measure  # noqa: E402
from bench.served import (  # noqa: E402
    QUERY,
    engines_table,
    files_table,
    sail_cold_run,
    served_rows,
    served_runs,
    served_table,
)

BIN = Path(sys.executable).parent
CACHE = ROOT / ".cache" / "bench"
RESULTS = ROOT / "bench" / "results"
GENERATOR = ROOT / "devdata" / "generate.py"

SCALES = {"SAMPLE": 0, "S": 1_000, "M": 20_000, "L": 100_000}  # customers (SAMPLE: data/sample)
SAMPLE = ROOT / "data" / "sample"
GENERATOR_PARAMS = {
    "seed": 42,
    "ambiguous_share": 0.01,
    "unknown_share": 0.01,
    "bad_share": 0.001,
    "readings_per_device": 25,
    "files_per_dataset": None,
}
PSEUDONYM_KEY = "bench-key-not-secret"
# Spark settings the bench passes to the project (environment variables, see README
# "Configuration"); anything STEDI_* already in the environment wins.
SPARK_ENV: dict[str, dict[str, str]] = {
    "SAMPLE": {},
    "S": {},
    "M": {},
    "L": {},
}
WATCH_EVERY_S = 0.5  # how often the measured `watch` looks for new files
WATCH_TIMEOUT_S = 900  # a delivery whose run has not ended by then: the watcher is stopped

out = Console()


# --- the landing set -----------------------------------------------------------------------


def landing_set(scale: str, *, regenerate: bool) -> tuple[Path, dict]:
    """The scale's landing folder, generated unless an identical one is cached (SAMPLE: the
    bundled sample, as it is)."""
    folder = CACHE / scale
    if scale == "SAMPLE":
        files = [p for p in SAMPLE.rglob("*.json") if p.is_file()]
        texts = {
            d: [line for p in (SAMPLE / d).rglob("*.json") for line in p.read_text().splitlines()]
            for d in ("customer", "accelerometer", "step_trainer")
        }
        datasets = {
            d: {"lines": len(lines), "records": sum(1 for line in lines if line.strip())}
            for d, lines in texts.items()
        }
        summary = {  # records as the generator counts them: every line that is not blank
            "records": sum(d["records"] for d in datasets.values()),
            "bytes": sum(p.stat().st_size for p in files),
            "datasets": datasets,
        }
        out.print(f"landing set: {SAMPLE.relative_to(ROOT)}")
        return SAMPLE, {
            "fingerprint": {"params": "data/sample"},
            "seconds": 0,
            "cached": True,
            "summary": summary,
        }
    landing, stamp = folder / "landing", folder / "landing.json"
    params = {"customers": SCALES[scale], **GENERATOR_PARAMS}
    fingerprint = {
        "params": params,
        "generator_sha256": hashlib.sha256(GENERATOR.read_bytes()).hexdigest(),
    }
    if not regenerate and landing.is_dir() and stamp.is_file():
        cached = json.loads(stamp.read_text())
        if cached.get("fingerprint") == fingerprint:
            out.print(f"landing set: cached in {landing.relative_to(ROOT)}")
            return landing, {**cached, "cached": True}
    from devdata.generate import generate_landing

    stamp.unlink(missing_ok=True)
    shutil.rmtree(landing, ignore_errors=True)
    out.print(f"generating the landing set ({params['customers']:,} customers) ...")
    started = time.perf_counter()
    summary = generate_landing(landing, **params)
    seconds = time.perf_counter() - started
    record = {"fingerprint": fingerprint, "seconds": round(seconds, 3), "summary": summary}
    stamp.write_text(json.dumps(record, indent=2) + "\n")
    out.print(f"generated {summary['bytes'] / 1e6:,.0f} MB in {seconds:.1f} s")
    return landing, {**record, "cached": False}


# --- counts --------------------------------------------------------------------------------


def project_counts(lake: Path, env: dict[str, str], log: Path) -> dict[str, int | None]:
    command = [str(BIN / "stedi-lake"), "status", "--lake-root", str(lake), "--json"]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    with log.open("a") as handle:
        handle.write(f"\n$ {' '.join(command)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        return {}
    document = json.loads(result.stdout[result.stdout.index("{") :])
    return {
        name: table["rows"]
        for name, table in document["tables"].items()
        if CATALOGUE[name].zone != Zone.SYSTEM  # the lake's bookkeeping: no reference
    }


WATCH_RUN = re.compile(r"UTC · .* · ([\d.]+) s$", re.M)  # the line `watch` prints per run


def watch_deliveries(landing: Path, lake: Path, lines: int, count: int) -> Callable:
    """For `measure(during=...)` of `stedi-lake watch --runs <count>`: deliver one new
    accelerometer file at a time, each once the watcher has printed the run of the one before;
    per delivery, seconds from the file's arrival to its run's line, and the run's own."""

    def during(process: subprocess.Popen, log: Path) -> dict:
        runs = []
        for i in range(1, count + 1):
            target = lake / "landing" / "accelerometer" / "later" / f"accelerometer-watch-{i}.json"
            new_landing_file(landing, "accelerometer", target, lines, delivery=i, skip=i * lines)
            delivered = time.perf_counter()
            while len(seen := WATCH_RUN.findall(log.read_text())) < i:
                if process.poll() is not None:
                    return {"runs": runs}
                if time.perf_counter() - delivered > WATCH_TIMEOUT_S:
                    process.terminate()
                    return {"runs": runs}
                time.sleep(0.05)
            runs.append(
                {
                    "arrival_to_run_done_s": round(time.perf_counter() - delivered, 3),
                    "run_s": float(seen[i - 1]),
                }
            )
        return {"runs": runs}

    return during


# table │ rows written │ replaced │ version │ seconds │
WRITE_ROW = re.compile(
    r"^\W*([a-z_]+)\s*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│\s*(\d+)\s*│\s*([\d.]+)\s*│"
)


def project_write_seconds(log: Path) -> dict[str, float]:
    """Per-table seconds from the project's 'Tables written' report, when it prints them."""
    seconds = {}
    for line in log.read_text(errors="replace").splitlines():
        if match := WRITE_ROW.match(line):
            seconds[match.group(1)] = float(match.group(5))
    return seconds


def oracle_counts(landing: Path) -> dict[str, int]:
    sys.path.insert(0, str(ROOT / "tests"))
    from oracle import expected_counts

    return expected_counts(landing, "privacy")


# --- the machine ---------------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
        java = java.splitlines()[0] if java else None
    except OSError:
        java = None
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "java": java,
    }


def git_state() -> dict:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip()

    # the tree may hold uncommitted work: fingerprint what the pipeline runs
    digest = hashlib.sha256()
    for path in sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "conf").glob("*.yaml")]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain")),
        "source_sha256": digest.hexdigest(),
    }


# --- report --------------------------------------------------------------------------------


def systems_table(systems: dict[str, dict], records: int) -> Table:
    table = Table(title=f"Cold run, {records:,} input records", title_justify="left")
    for column in ("system", "wall s", "x reference", "peak memory GiB", "rows/s", "exit"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for name, run in systems.items():
        table.add_row(
            name,
            f"{run['wall_s']:.1f}",
            f"{run['ratio_to_reference']:.2f}",
            f"{run['peak_rss_gib']:.2f}",
            f"{run['rows_per_s']:,.0f}",
            str(run["exit_code"]),
        )
    return table


def incremental_table(runs: dict[str, dict]) -> Table:
    table = Table(
        title="Later runs on the same lake (project)",
        title_justify="left",
        caption="`watch` rows: seconds from the file's arrival to its run's end; memory: the "
        "watcher's peak over both",
        caption_justify="left",
    )
    for column in ("run", "wall s", "share of cold run", "peak memory GiB", "exit"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, run in runs.items():
        table.add_row(
            name,
            f"{run['wall_s']:.1f}",
            f"{run['share_of_cold_run']:.0%}",
            f"{run['peak_rss_gib']:.2f}",
            str(run["exit_code"]),
        )
    return table


def commands_table(commands: dict[str, dict]) -> Table:
    table = Table(
        title=f"Commands on the finished lake (median of {LATENCY_RUNS} runs each)",
        caption="with a server: on the served lake, the server's memory counted",
        caption_justify="left",
        title_justify="left",
    )
    for column in ("command", "wall s", "min-max s", "peak memory GiB", "exit"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, run in commands.items():
        table.add_row(
            name,
            f"{run['wall_s']:.2f}",
            f"{run['min_s']:.2f}-{run['max_s']:.2f}",
            f"{run['peak_rss_gib']:.2f}",
            str(run["exit_code"]),
        )
    return table


def counts_table(counts: dict[str, dict]) -> Table:
    with_oracle = any(c.get("oracle") is not None for c in counts.values())
    table = Table(title="Row counts per table", title_justify="left")
    columns = ["table", "project", "reference", *(["oracle"] if with_oracle else []), "same"]
    for column in columns:
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, c in counts.items():
        cells = [name] + [
            "-" if c.get(key) is None else f"{c[key]:,}"
            for key in ("project", "reference", *(["oracle"] if with_oracle else []))
        ]
        table.add_row(*cells, "[green]yes[/green]" if c["match"] else "[red]NO[/red]")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark the pipeline against a reference, in-process and served."
    )
    parser.add_argument("--scale", choices=SCALES, default="S", type=str.upper)
    parser.add_argument("--regenerate", action="store_true", help="regenerate the landing set")
    parser.add_argument(
        "--oracle",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also check the counts with tests/oracle.py [default: at scales SAMPLE and S]",
    )
    parser.add_argument(
        "--served",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also the served path: the runs through a lake server, then a cold run through "
        "pysail's Spark Connect server [default: on]",
    )
    parser.add_argument(
        "--deliveries",
        type=int,
        default=100,
        metavar="N",
        help="small deliveries through the lake server, one run each [default: 100]",
    )
    args = parser.parse_args(argv)
    if args.deliveries < 0:
        parser.error("--deliveries: 0 or more")
    scale = args.scale
    folder = CACHE / scale
    load_before = os.getloadavg()

    landing, generated = landing_set(scale, regenerate=args.regenerate)
    summary = generated["summary"]
    records = summary["records"]

    env = {
        **os.environ,
        "STEDI_CONF_DIR": str(ROOT / "conf"),
        "STEDI_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "STEDI_SPARK__JVM_LOG": str(folder / "project-jvm.log"),
        "COLUMNS": "200",  # the project's report tables, unwrapped in the log
    }
    for key, value in SPARK_ENV[scale].items():
        env.setdefault(key, value)
    stedi_env = {
        k: v for k, v in env.items() if k.startswith("STEDI_") and k != "STEDI_PSEUDONYM_KEY"
    }

    # (a) the project, cold: a fresh lake, a new JVM
    lake = folder / "lake"
    placed = fresh_lake(landing, lake)
    out.print(f"project: stedi-lake run on {records:,} records ({placed}) ...")
    project = measure(
        [str(BIN / "stedi-lake"), "run", "--lake-root", str(lake)],
        env=env,
        log=folder / "project.log",
    )
    project["landing_files"] = placed
    project["env"] = stedi_env
    project["write_seconds"] = project_write_seconds(folder / "project.log")
    out.print(f"  {project['wall_s']:.1f} s, exit {project['exit_code']}")

    # (b) the reference
    out.print("reference: bench/reference.py (DuckDB) ...")
    reference_json = folder / "reference.json"
    reference_json.unlink(missing_ok=True)
    reference = measure(
        [
            sys.executable,
            str(ROOT / "bench" / "reference.py"),
            str(landing),
            str(folder / "reference"),
            "--pseudonym-key",
            PSEUDONYM_KEY,
            "--json-out",
            str(reference_json),
        ],
        env=env,
        log=folder / "reference.log",
    )
    out.print(f"  {reference['wall_s']:.1f} s, exit {reference['exit_code']}")
    reference_result = json.loads(reference_json.read_text()) if reference_json.is_file() else {}
    reference["phases_s"] = reference_result.get("phases_s")

    # counts (not timed)
    got = {
        "project": project_counts(lake, env, folder / "project.log"),
        "reference": {k: v["rows"] for k, v in reference_result.get("tables", {}).items()},
    }
    use_oracle = args.oracle if args.oracle is not None else scale in ("SAMPLE", "S")
    if use_oracle:
        got["oracle"] = oracle_counts(landing)
    names = list(dict.fromkeys([*got["reference"], *got["project"]]))
    counts = {}
    for name in names:
        row = {system: got[system].get(name) for system in got}
        values = set(row.values())
        row["match"] = len(values) == 1 and None not in values
        counts[name] = row
    counts_match = bool(counts) and all(c["match"] for c in counts.values())

    # (c) the project again on the same lake: nothing new, then one new accelerometer file
    # holding 1% of the feed's readings (issue: at most 15% of the cold run)
    command = [str(BIN / "stedi-lake"), "run", "--lake-root", str(lake)]
    out.print("project: a run with nothing new ...")
    no_op = measure(command, env=env, log=folder / "project-no-op.log")
    late = lake / "landing" / "accelerometer" / "later" / "accelerometer-later.json"
    share = 0.01
    one_file_name = f"one new accelerometer file ({share:.0%})"
    lines = new_landing_file(
        landing,
        "accelerometer",
        late,
        round(summary["datasets"]["accelerometer"]["lines"] * share),
        delivery=0,
    )
    out.print(f"project: a run after one new accelerometer file ({lines:,} lines) ...")
    one_file = measure(command, env=env, log=folder / "project-one-file.log")
    one_file["write_seconds"] = project_write_seconds(folder / "project-one-file.log")
    # (d) the same deliveries to `stedi-lake watch`: its first run pays the JVM's start and
    # warm-up like `run`; the later ones are what a watcher costs per delivery
    out.print("project: `stedi-lake watch`, one new accelerometer file at a time, twice ...")
    watcher = measure(
        [*command[:1], "watch", *command[2:], "--every", str(WATCH_EVERY_S), "--runs", "2"],
        env=env,
        log=folder / "project-watch.log",
        during=watch_deliveries(landing, lake, lines, count=2),
    )
    process_s = watcher.pop("wall_s")
    watched = [
        {**watcher, "process_s": process_s, "wall_s": run["arrival_to_run_done_s"], **run}
        for run in watcher.pop("runs")
    ]
    incremental = {
        "no new file": no_op,
        one_file_name: {**one_file, "lines": lines},
        **{
            f"the same in `watch`, {which} delivery": {**run, "lines": lines}
            for which, run in zip(("first", "second"), watched, strict=False)
        },
    }
    for run in incremental.values():
        run["share_of_cold_run"] = round(run["wall_s"] / project["wall_s"], 3)
        out.print(f"  {run['wall_s']:.1f} s, exit {run['exit_code']}")

    # (e) the commands that read the lake's Delta logs only (no JVM), on the finished lake
    # and `query`, which starts a JVM of its own when no server runs
    out.print("project: `status`, `history` and `query`, each several times ...")
    lake_root = ["--lake-root", str(lake)]
    commands = {
        f"stedi-lake {shlex.join(words)}": latency(
            [str(BIN / "stedi-lake"), *words, *lake_root], env=env, log=folder / f"{words[0]}.log"
        )
        for words in (["status"], ["history", "accelerometer_landing"], ["query", QUERY])
    }

    # (f) the served path: the same runs through a lake server on a new lake, small deliveries;
    # then a cold run through another Spark Connect engine
    served, engines = {}, {}
    in_process = {"cold run": project, **incremental}
    if args.served:
        served = served_runs(
            landing,
            folder,
            env,
            one_file=(one_file_name, lines),
            deliveries=args.deliveries,
            in_process_counts=got["project"],
        )
        commands |= served.pop("commands")
        for name, run in served["runs"].items():
            if name in in_process:
                run["ratio_to_in_process"] = round(run["wall_s"] / in_process[name]["wall_s"], 3)
        sail = sail_cold_run(landing, folder, env)
        engines[sail["engine"]] = sail

    systems = {"project (Spark)": project, "reference (DuckDB)": reference}
    for run in systems.values():
        run["ratio_to_reference"] = round(run["wall_s"] / reference["wall_s"], 3)
        run["rows_per_s"] = round(records / run["wall_s"], 1)

    out.print(systems_table(systems, records))
    out.print(incremental_table(incremental))
    out.print(commands_table(commands))
    if served:
        out.print(served_table(served, in_process))
        if "tables" in served:
            out.print(files_table(served["tables"], served["deliveries"]["count"]))
        out.print(engines_table(engines))
    out.print(counts_table(counts))
    measured = {**systems, **incremental, **commands}
    if served:
        measured |= {f"served: {name}": run for name, run in served_rows(served).items()}
    failed = [name for name, run in measured.items() if run["exit_code"] != 0]
    if len(watched) < 2:
        failed.append(f"`watch` (exit {watcher['exit_code']}, {len(watched)} of 2 runs)")
    if served and "cold run" not in served["runs"]:
        failed.append("the lake server did not start")
    if served and any(served["deliveries"].get("exit_codes", [])):
        failed.append("served: a small delivery")
    if served.get("counts_match_in_process") is False:
        failed.append("served: the cold run's row counts differ from the in-process run's")
    ok = counts_match and not failed

    result = {
        "scale": scale,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "make": f"make bench SCALE={scale}",
        "machine": {
            **machine(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "git": git_state(),
        "generator": {
            "params": generated["fingerprint"]["params"],
            "seconds": generated["seconds"],
            "cached": generated["cached"],
            "summary": summary,
        },
        "input_records": records,
        "input_bytes": summary["bytes"],
        "systems": systems,
        "incremental": incremental,
        "commands": commands,
        "served": served,
        "other_engines": engines,
        "counts": counts,
        "counts_match": counts_match,
        "ok": ok,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{scale}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    out.print(f"results: {target.relative_to(ROOT)}; logs: {folder.relative_to(ROOT)}/")
    if failed:
        out.print(f"[red]failed:[/red] {', '.join(failed)} (see the logs)")
    if not counts_match:
        out.print("[red]row counts differ[/red]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
