"""Crash safety and concurrency. A run stopped right after its N-th Delta commit (for every N of
an incremental run), then run again, ends in exactly the state of an uninterrupted run: the
lake's commit callback keeps, during one uninterrupted run, the files a run killed right after
each commit leaves, and each is run again. A few tests then show the same with real processes:
`stedi-lake run` killed (SIGKILL) in a first and in an incremental run, stopped with Ctrl-C,
and two runs started together on one lake leaving one clear line for the loser."""

import json
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from stedi_lakehouse.lake.open import STOPPED
from stedi_lakehouse.lake.tables import Lake
from stedi_lakehouse.pipeline import Stages, run_stages
from stedi_lakehouse.presets import Rules
from tests.helpers import (
    BATCHES,
    FILES,
    KEY,
    ROOT,
    SAMPLE,
    cli_env,
    copy_files_as_a_kill_leaves_them,
    copy_lake,
    deliver,
    new_lake,
    snapshot,
)

pytestmark = pytest.mark.system  # processes of their own (CLI runs, JVMs, servers)

CLI = str(Path(sys.executable).parent / "stedi-lake")
FIRST, SECOND = BATCHES["readings-first"][:2], BATCHES["readings-first"][2:]


def stedi_run(
    root: Path, *, killed_after: int | None = None, command: tuple[str, ...] = ("run",)
) -> subprocess.CompletedProcess:
    """`stedi-lake run` (or another `command`) on `root`, in a process of its own;
    `killed_after=N`: one that kills itself right after its N-th commit (see
    tests/killed_cli.py)."""
    args = [*command, "--profile", "test", "--lake-root", str(root)]
    if killed_after is not None:
        command = [sys.executable, "-m", "tests.killed_cli", str(killed_after), *args]
    else:
        command = [CLI, *args]
    return subprocess.run(
        command, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600
    )


def kept_after_each_commit(lake: Lake, folder: Path) -> dict[int, Path]:
    """From now on, after each commit of `lake` (the N-th: `lake` counts them), a copy of its
    files under `folder`: the state a run killed right after that commit leaves. N -> the
    copy's root, filled in as the commits are made."""
    kept: dict[int, Path] = {}

    def after_commit(commits: int) -> None:
        kept[commits] = folder / f"after-{commits}" / "lake"
        copy_files_as_a_kill_leaves_them(Path(lake.root), kept[commits])

    lake.after_commit = after_commit
    return kept


def run_in_process(lake: Lake) -> int:
    """An uninterrupted run (recorded in `quality` and `runs`, as the CLI does); its number of
    commits."""
    report = run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    return len(report.writes) + 2 if report.writes else 0  # and the quality and run records


def deliver_batches(root: Path, batches: list[list[str]]) -> None:
    for batch in batches:
        deliver(root, batch)


@dataclass(frozen=True)
class Reference:
    """Uninterrupted runs: the first batches in one, then the rest in a second."""

    expected: dict[str, list[tuple]]  # the final state
    first_commits: int
    second_commits: int
    after_first: Path  # a lake holding the state after the first run
    killed_in_first: dict[int, Path]  # N -> the files of the first run killed after commit N
    killed_in_second: dict[int, Path]  # the same for the second run


@pytest.fixture(scope="module")
def reference(spark, test_settings, tmp_path_factory) -> Reference:
    root = tmp_path_factory.mktemp("crash-ref") / "lake"
    new_lake(spark, test_settings, root)
    deliver_batches(root, FIRST)
    kept = tmp_path_factory.mktemp("crash-kept")

    def lake(run: str) -> tuple[Lake, dict[int, Path]]:
        """The lake seen afresh for one run, as a new process sees it: commits count from 1."""
        seen = Lake(spark, str(root), test_settings.catalog.database)
        return seen, kept_after_each_commit(seen, kept / run)

    first_lake, killed_in_first = lake("first")
    first = run_in_process(first_lake)
    after_first = tmp_path_factory.mktemp("crash-base") / "lake"
    shutil.copytree(root, after_first, ignore=shutil.ignore_patterns("_metastore"))
    deliver_batches(root, SECOND)
    second_lake, killed_in_second = lake("second")
    second = run_in_process(second_lake)
    return Reference(
        snapshot(second_lake), first, second, after_first, killed_in_first, killed_in_second
    )


def run_again(spark, settings, root: Path) -> dict[str, list[tuple]]:
    """Run again on the files a killed run left at `root` (each such copy is run once); the
    state it ends in."""
    lake = Lake(spark, str(root), settings.catalog.database)
    run_in_process(lake)
    return snapshot(lake)


def test_a_first_run_killed_then_rerun_converges(reference, spark, test_settings):
    """A first run (tables created whole) killed after its first commit, between the first
    two trusted tables (a table half-created by the killed process must count as missing), and
    before its run record. Every N is covered by the incremental run below."""
    expected = snapshot(Lake(spark, str(reference.after_first), test_settings.catalog.database))
    for n in (1, 7, reference.first_commits - 1):
        state = run_again(spark, test_settings, reference.killed_in_first[n])
        assert state == expected, f"killed after commit {n}"


def test_an_incremental_run_killed_after_any_commit_then_rerun_converges(
    reference, spark, test_settings
):
    killed = reference.killed_in_second
    assert sorted(killed) == list(range(1, reference.second_commits + 1))
    for n, root in sorted(killed.items()):
        state = run_again(spark, test_settings, root)
        assert state == reference.expected, f"killed after commit {n}"


def test_a_killed_run_is_completed_by_the_next_cli_run(reference, spark, test_settings, tmp_path):
    """A real process: a first run killed between two trusted tables."""
    expected = reference.expected
    root = tmp_path / "lake"
    deliver_batches(root, FIRST + SECOND)
    assert stedi_run(root, killed_after=7).returncode == -9
    again = stedi_run(root)
    assert again.returncode == 0, again.stderr[-2000:]
    assert snapshot(Lake(spark, str(root), test_settings.catalog.database)) == expected


def test_a_table_whose_registration_a_kill_cut_short_is_found_by_name(
    spark, test_settings, tmp_path
):
    """A first run killed right after the commit that made the bookmarks table (the trusted
    stage's bookmark), before registering it: the next run only adds to that table, and every
    table still answers a query by name."""
    root = tmp_path / "lake"
    deliver_batches(root, FIRST)
    assert stedi_run(root, killed_after=10).returncode == -9
    killed = Lake(spark, str(root), test_settings.catalog.database)
    assert killed.version("processed_files") == 0 and not killed.exists("runs")
    again = stedi_run(root)
    assert again.returncode == 0, again.stderr[-2000:]
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in killed.tables())
    asked = stedi_run(root, command=("query", sql))
    assert asked.returncode == 0, asked.stderr[-2000:]


def test_a_killed_incremental_cli_run_then_rerun_converges(
    reference, spark, test_settings, tmp_path
):
    """A real process: an incremental run killed halfway through its commits."""
    expected = reference.expected
    root = tmp_path / "lake"
    shutil.copytree(reference.after_first, root)
    deliver_batches(root, SECOND)
    killed = stedi_run(root, killed_after=reference.second_commits // 2)
    assert killed.returncode == -9, killed.stderr[-2000:]
    lake = Lake(spark, str(root), test_settings.catalog.database)
    run_in_process(lake)
    assert snapshot(lake) == expected


def running_in_group(group: int) -> list[str]:
    """The pids of the processes of process group `group` still running (a zombie, ended and
    not yet reaped, is not)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except OSError:  # ended meanwhile
            continue
        if int(pgrp) == group and state != "Z":
            found.append(stat.parent.name)
    return found


def test_a_run_stopped_with_ctrl_c_says_so_in_one_line_and_the_next_run_finishes_it(
    reference, spark, test_settings, tmp_path
):
    """Ctrl-C (twice) in the middle of a run's Spark work: one line, ended by the signal, its
    JVM ended before it (nothing commits after the lock is free), no run record of a failure;
    the next run ends in the state of an uninterrupted one."""
    root = tmp_path / "lake"
    deliver_batches(root, FIRST + SECOND)
    first_commit = root / "delta/landing/customer_landing/_delta_log/00000000000000000000.json"
    command = [CLI, "run", "--profile", "test", "--lake-root", str(root)]
    said = tmp_path / "stderr"  # a file: a pipe would stay open while the JVM lives
    with said.open("w") as stderr_file:
        running = subprocess.Popen(
            command,
            cwd=ROOT,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            start_new_session=True,  # its process group: the command and its JVM
        )
    deadline = time.monotonic() + 300
    while not first_commit.exists() and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    time.sleep(0.05)
    running.send_signal(signal.SIGINT)  # pressed again while it stops
    running.wait(timeout=120)
    left = running_in_group(running.pid)  # at once: its JVM must end before it does
    stderr = said.read_text()
    assert running.returncode == -signal.SIGINT, stderr[-2000:]  # a shell's 130
    assert left == [], "the command's JVM outlived it"
    assert stderr.splitlines()[-1] == STOPPED and stderr.count(STOPPED) == 1, stderr[-2000:]
    assert "Traceback" not in stderr and "rror" not in stderr, stderr[-2000:]
    lake = Lake(spark, str(root), test_settings.catalog.database)
    run_in_process(lake)
    assert snapshot(lake) == reference.expected
    assert [r["outcome"] for r in lake.read("runs").collect()] == ["succeeded"]


def test_two_runs_at_once_one_waits_its_turn_with_one_clear_line(
    reference, spark, test_settings, tmp_path
):
    expected = reference.expected
    root = tmp_path / "lake"
    deliver_batches(root, FIRST + SECOND)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: stedi_run(root), range(2)))
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 1], [r.stderr[-2000:] for r in results]
    loser = next(r for r in results if r.returncode == 1)
    lines = loser.stderr.strip().splitlines()
    assert len(lines) == 1 and "is in use by another stedi-lake process" in lines[0], lines
    assert stedi_run(root).returncode == 0  # a later run: nothing left to do, or finishes it
    lake = Lake(spark, str(root), test_settings.catalog.database)
    assert snapshot(lake) == expected
    runs = lake.read("runs").collect()
    assert [r["outcome"] for r in runs] == ["succeeded"]


def test_the_commit_callback_counts_every_commit(reference):
    # landing + quarantine (3 each), 3 trusted, bookmark, 2 curated, bookmark, quality, runs
    assert reference.first_commits == 15
    assert 0 < reference.second_commits <= 15
    assert sorted(FILES) == sorted(f for b in FIRST + SECOND for f in b)


def readings_moved(file: Path) -> str:
    """The file's readings with `x` moved a little: new readings (not copies, which are
    duplicates), at the same moments as the step readings they pair with."""
    lines = []
    for line in file.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("x"), int | float):
            lines.append(json.dumps(record | {"x": record["x"] + 0.001}))
    return "\n".join(lines) + "\n"


def test_a_run_killed_after_adding_pairs_does_not_add_them_twice(
    sample_runs, spark, test_settings, tmp_path
):
    """New readings of people already curated add pairs to machine_learning_curated (nothing
    replaced). Killed right after that commit, before the stage's bookmark, the next run must
    not add them again: it replaces those people's pairs instead."""
    lake = copy_lake(sample_runs().root, tmp_path / "reference" / "lake", spark, test_settings)
    again = "accelerometer/2022/06/more.json"  # new readings of known people, at known times
    (Path(lake.root) / "landing" / again).write_text(readings_moved(SAMPLE / FIRST[0][0]))
    killed = kept_after_each_commit(lake, tmp_path / "killed")

    report = run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    tables = [w.table for w in report.writes]
    ml = report.writes[tables.index("machine_learning_curated")]
    assert ml.rows > 0 and ml.removed == 0, ml  # added, not replaced
    assert "step_trainer_trusted" not in tables  # nobody's curated status changed

    rerun = Lake(spark, str(killed[tables.index(ml.table) + 1]), test_settings.catalog.database)
    run_in_process(rerun)
    assert snapshot(rerun) == snapshot(lake)
