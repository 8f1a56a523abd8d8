"""The served path of `make bench` (bench/run.py): the pipeline through a lake server, and
through another Spark Connect engine.

Through the lake's own server (`stedi-lake server start`, docs/server.md), on a new lake holding
the same landing set, each command a thin client (`stedi-lake run`, no JVM of its own): the
server's start, a cold run, a run with nothing new, one new accelerometer file (the in-process
run's file, line for line), then `status` and `query` (median of several runs each), then small
deliveries (accelerometer and step-trainer lines, one run each; the first and the last are
reported), the files of every table after the cold run and after the deliveries, and the
server's stop. Every command's peak memory counts the server's whole process tree beside its own.

Through another engine: pysail's Spark Connect server (Sail, installed by the `bench` extra),
started on loopback, and a cold run on a new lake sent to it with `STEDI_REMOTE`. A measurement
only: its exit code, seconds, memory (Sail's counted) and first error, which never fails the
bench.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.deliveries import fresh_lake, new_landing_file
from bench.measure import ROOT, latency, measure
from stedi_lakehouse.contracts.tables import CATALOGUE
from stedi_lakehouse.lake.server import LOOPBACK, running
from stedi_lakehouse.lake.status import LakeLog, row_count

BIN = Path(sys.executable).parent
CLI = str(BIN / "stedi-lake")
QUERY = "SELECT COUNT(*) FROM accelerometer_trusted"  # `query`, with and without a server
# a small delivery: lines of each feed, each delivery cut further along the landing set
DELIVERY_LINES = {"accelerometer": 800, "step_trainer": 300}
SAIL = "pysail"
SAIL_START_S = 60.0
# the first failure a Spark Connect client logs at SPARK_CONNECT_LOG_LEVEL=error: gRPC's details
GRPC_DETAILS = re.compile(r'^\s*details = "(.*)"$', re.M)

out = Console()


def lake_tables(lake: Path) -> dict[str, dict]:
    """Every table the lake has written: its rows, Delta version and data files (the add
    actions of its current version), read from the Delta logs with delta-rs."""
    log = LakeLog(str(lake))
    tables = {}
    for table in CATALOGUE:
        delta = log.open(table)
        if delta is not None:
            files = delta.get_add_actions(flatten=True).num_rows
            tables[str(table)] = {
                "rows": row_count(delta),
                "version": delta.version(),
                "files": files,
            }
    return tables


# Small deliveries' numbers start here: the watch deliveries of bench/run.py use the first ones.
DELIVERY_NUMBERS = 1000


def deliver(landing: Path, lake: Path, number: int) -> int:
    """Small delivery `number`: one new file per feed of `DELIVERY_LINES`. Lines written."""
    written = 0
    for dataset, lines in DELIVERY_LINES.items():
        target = lake / "landing" / dataset / "later" / f"{dataset}-delivery-{number}.json"
        written += new_landing_file(
            landing, dataset, target, lines, delivery=DELIVERY_NUMBERS + number, skip=number * lines
        )
    return written


def served_runs(
    landing: Path,
    folder: Path,
    env: dict[str, str],
    *,
    one_file: tuple[str, int],
    deliveries: int,
    in_process_counts: dict[str, int | None],
) -> dict:
    """The pipeline through a lake server on a new lake (see the module's docstring).
    `one_file`: the in-process run's name for its one new accelerometer file, and its lines;
    `in_process_counts`: the in-process cold run's row counts, which the served one must equal."""
    lake = folder / "lake-served"
    fresh_lake(landing, lake)
    root = ["--lake-root", str(lake)]
    runs: dict[str, dict] = {}
    result: dict = {"lake": str(lake), "runs": runs, "commands": {}, "deliveries": {}}

    def timed(name: str, command: list[str], log: str, daemons: list[int]) -> None:
        runs[name] = measure(command, env=env, log=folder / log, daemons=daemons)
        out.print(f"  {name}: {runs[name]['wall_s']:.1f} s, exit {runs[name]['exit_code']}")

    out.print("served: `stedi-lake server start` on a new lake, then its runs ...")
    timed("server start", [CLI, "server", "start", *root], "served-start.log", [])
    address = running(str(lake)).address
    if address is None:
        return result
    daemons = [address.pid]
    try:
        timed("cold run", [CLI, "run", *root], "served.log", daemons)
        after_cold = lake_tables(lake)
        served_counts = {name: after_cold.get(name, {}).get("rows") for name in in_process_counts}
        result["counts_match_in_process"] = served_counts == in_process_counts
        timed("no new file", [CLI, "run", *root], "served-no-op.log", daemons)
        name, lines = one_file
        late = lake / "landing" / "accelerometer" / "later" / "accelerometer-later.json"
        new_landing_file(landing, "accelerometer", late, lines, delivery=0)  # as in-process
        timed(name, [CLI, "run", *root], "served-one-file.log", daemons)
        runs[name]["lines"] = lines

        out.print("served: `status` and `query` with the server running, each several times ...")
        for args, how in (
            (["status"], "a server running"),
            (["query", QUERY], "through the server"),
        ):
            result["commands"][f"stedi-lake {shlex.join(args)}, {how}"] = latency(
                [CLI, *args, *root], env=env, log=folder / f"served-{args[0]}.log", daemons=daemons
            )

        out.print(f"served: {deliveries} small deliveries, one run each ...")
        result["deliveries"] = served_deliveries(landing, lake, folder, env, deliveries, daemons)
        result["tables"] = {
            name: {"after_cold_run": after_cold.get(name), "after_deliveries": table}
            for name, table in lake_tables(lake).items()
        }
    finally:
        timed("server stop", [CLI, "server", "stop", *root], "served-stop.log", [])
    return result


def served_deliveries(
    landing: Path, lake: Path, folder: Path, env: dict[str, str], count: int, daemons: list[int]
) -> dict:
    """`count` small deliveries, each followed by a `stedi-lake run` through the server: every
    run's seconds and exit code; the first and the last run as `measure` gives them."""
    walls, codes, first, last = [], [], None, None
    for number in range(1, count + 1):
        lines = deliver(landing, lake, number)
        log = folder / ("served-delivery-first.log" if number == 1 else "served-delivery-last.log")
        run = measure([CLI, "run", "--lake-root", str(lake)], env=env, log=log, daemons=daemons)
        walls.append(run["wall_s"])
        codes.append(run["exit_code"])
        if number == 1:
            first = run | {"lines": lines}
        last = run | {"lines": lines}
        if number % 10 == 0 or number == count:
            out.print(f"  {number} of {count}: {run['wall_s']:.1f} s, exit {run['exit_code']}")
    return {
        "count": count,
        "lines_each": DELIVERY_LINES,
        "wall_s": walls,
        "exit_codes": codes,
        "first": first,
        "last": last,
    }


# --- another Spark Connect engine ----------------------------------------------------------


def sail_cold_run(landing: Path, folder: Path, env: dict[str, str]) -> dict:
    """A cold run on a new lake sent to pysail's Spark Connect server (see the module's
    docstring); `skipped` says why none was made."""
    try:
        version = importlib.metadata.version(SAIL)
    except importlib.metadata.PackageNotFoundError:
        return {"engine": SAIL, "skipped": "not installed (the `bench` extra: make bench)"}
    lake = folder / "lake-sail"
    fresh_lake(landing, lake)
    log = folder / "sail-server.log"
    out.print(f"{SAIL} {version}: its Spark Connect server, then a cold run through it ...")
    started = time.perf_counter()
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [str(BIN / "sail"), "spark", "server", "--ip", LOOPBACK, "--port", "0"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=folder,
            start_new_session=True,
        )
    try:
        port = _sail_port(server, log)
        result: dict = {
            "engine": f"{SAIL} {version}",
            "server_start_s": None,
            "server_log": str(log.relative_to(ROOT)),
        }
        if port is None:
            return result | {"exit_code": None, "first_error": _last_line(log) or "did not start"}
        result["server_start_s"] = round(time.perf_counter() - started, 3)
        remote = {"STEDI_REMOTE": f"sc://{LOOPBACK}:{port}", "SPARK_CONNECT_LOG_LEVEL": "error"}
        run = measure(
            [CLI, "run", "--lake-root", str(lake)],
            env=env | remote,
            log=folder / "sail-run.log",
            daemons=[server.pid],
        )
        if run["exit_code"] != 0:
            run["first_error"] = first_error(folder / "sail-run.log")
        out.print(f"  {run['wall_s']:.1f} s, exit {run['exit_code']}")
        return result | run
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _sail_port(server: subprocess.Popen, log: Path) -> int | None:
    """The port Sail's server said it listens on, once it accepts connections; None if it
    ended or did not answer in time."""
    deadline = time.monotonic() + SAIL_START_S
    while time.monotonic() < deadline and server.poll() is None:
        said = re.search(rf"{re.escape(LOOPBACK)}:(\d+)", log.read_text(errors="replace"))
        if said:
            try:
                socket.create_connection((LOOPBACK, int(said.group(1))), timeout=1).close()
                return int(said.group(1))
            except OSError:
                pass
        time.sleep(0.1)
    return None


def first_error(log: Path) -> str:
    """The first failure a command reports in its log, in one line: the details of the first
    gRPC error its Spark Connect client logged, else its own `error:` line."""
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        said = GRPC_DETAILS.search(str((record.get("exception") or {}).get("msg", "")))
        if said:
            return said.group(1)
    return _last_line(log, starting="error:")


def _last_line(log: Path, starting: str = "") -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    said = [line for line in lines if line and line.startswith(starting)]
    return said[-1] if said else ""


# --- report --------------------------------------------------------------------------------


def served_rows(served: dict) -> dict[str, dict]:
    """The served runs in the order they ran, the first and the last small delivery among them."""
    runs, deliveries = dict(served["runs"]), served["deliveries"]
    stop = runs.pop("server stop", None)
    if deliveries.get("first"):
        count = deliveries["count"]
        runs[f"small delivery 1 of {count}"] = deliveries["first"]
        if count > 1:
            runs[f"small delivery {count} of {count}"] = deliveries["last"]
    return runs | ({"server stop": stop} if stop else {})


def served_table(served: dict, in_process: dict[str, dict]) -> Table:
    """The served runs beside the in-process runs of the same name (`in_process`)."""
    table = Table(
        title="Through a lake server (a new lake; each command a thin client)",
        title_justify="left",
        caption="memory: the command's process tree and the server's; a small delivery: "
        + " + ".join(f"{n:,} {d}" for d, n in DELIVERY_LINES.items())
        + " lines",
        caption_justify="left",
    )
    for column in ("run", "wall s", "in-process s", "x in-process", "peak memory GiB", "exit"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, run in served_rows(served).items():
        alone = in_process.get(name)
        table.add_row(
            name,
            f"{run['wall_s']:.1f}",
            "-" if alone is None else f"{alone['wall_s']:.1f}",
            "-" if alone is None else f"{run['wall_s'] / alone['wall_s']:.2f}",
            f"{run['peak_rss_gib']:.2f}",
            str(run["exit_code"]),
        )
    return table


def files_table(tables: dict[str, dict], deliveries: int) -> Table:
    table = Table(
        title="Data files per table through the server (the current Delta version)",
        title_justify="left",
    )
    for column in ("table", "files, cold run", f"files, {deliveries} deliveries", "rows"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, states in tables.items():
        cold, after = states["after_cold_run"], states["after_deliveries"]
        table.add_row(
            name,
            "-" if cold is None else f"{cold['files']:,}",
            f"{after['files']:,}",
            f"{after['rows']:,}",
        )
    return table


def engines_table(engines: dict[str, dict]) -> Table:
    errors = {name: run["first_error"] for name, run in engines.items() if run.get("first_error")}
    table = Table(
        title="Cold run through another Spark Connect engine (`--remote`; a measurement only)",
        title_justify="left",
        caption="\n".join(f"{name}, first error: {said}" for name, said in errors.items()) or None,
        caption_justify="left",
    )
    for column in ("engine", "server start s", "wall s", "peak memory GiB", "exit"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for name, run in engines.items():
        if "skipped" in run:
            table.add_row(name, "-", "-", "-", run["skipped"])
            continue
        start = run.get("server_start_s")
        table.add_row(
            name,
            "-" if start is None else f"{start:.1f}",
            "-" if run.get("wall_s") is None else f"{run['wall_s']:.1f}",
            "-" if run.get("peak_rss_gib") is None else f"{run['peak_rss_gib']:.2f}",
            str(run.get("exit_code")),
        )
    return table
