"""Crash safety and concurrency. A run stopped right after its N-th Delta commit (for every N of
an incremental run), then run again, ends in exactly the state of an uninterrupted run: the
stop is made in this process, by the lake's commit callback. A few tests then show the same
with real processes: `stedi-lake run` killed (SIGKILL) in a first and in an incremental run,
and two runs started together on one lake leaving one clear line for the loser."""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stedi_lakehouse.lake.tables import Lake
from stedi_lakehouse.pipeline import Stages, run_stages
from stedi_lakehouse.presets import Rules
from tests.helpers import BATCHES, FILES, KEY, ROOT, SAMPLE, copy_lake, deliver, new_lake, snapshot

pytestmark = pytest.mark.system  # processes of their own (CLI runs, JVMs, servers)

CLI = str(Path(sys.executable).parent / "stedi-lake")
FIRST, SECOND = BATCHES["readings-first"][:2], BATCHES["readings-first"][2:]


def cli_env(**extra: str) -> dict[str, str]:
    """The suite's environment for a `stedi-lake` process of its own: its lake keeps its own
    catalog (the suite's JVM holds the suite's)."""
    env = {k: v for k, v in os.environ.items() if k != "STEDI_CATALOG__METASTORE_DIR"}
    return env | extra


def stedi_run(root: Path, *, killed_after: int | None = None) -> subprocess.CompletedProcess:
    """`stedi-lake run` on `root`, in a process of its own; `killed_after=N`: one that kills
    itself right after its N-th commit (see tests/killed_cli.py)."""
    args = ["run", "--profile", "test", "--lake-root", str(root)]
    if killed_after is not None:
        command = [sys.executable, "-m", "tests.killed_cli", str(killed_after), *args]
    else:
        command = [CLI, *args]
    return subprocess.run(
        command, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600
    )


class SimulatedCrash(BaseException):
    """The process dies here: a BaseException, so that no `except Exception` handles it."""


def crash_after(n: int):
    """A commit callback that stops the run right after its n-th commit, and any work still
    running beside it at its own next commit (a dead process commits nothing more)."""

    def after_commit(commits: int) -> None:
        if commits >= n:
            raise SimulatedCrash(f"after commit {n}")

    return after_commit


def run_in_process(lake: Lake) -> int:
    """An uninterrupted run (recorded in `quality` and `runs`, as the CLI does); its number of
    commits."""
    report = run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    return len(report.writes) + 2 if report.writes else 0  # and the quality and run records


def deliver_batches(root: Path, batches: list[list[str]]) -> None:
    for batch in batches:
        deliver(root, batch)


@pytest.fixture(scope="module")
def reference(spark, test_settings, tmp_path_factory):
    """Uninterrupted: the first batches in one run, then the rest in a second. Returns the
    final state, the commits of each run, and a lake holding the state after the first run."""
    lake = new_lake(spark, test_settings, tmp_path_factory.mktemp("crash-ref") / "lake")
    deliver_batches(Path(lake.root), FIRST)
    first = run_in_process(lake)
    after_first = tmp_path_factory.mktemp("crash-base") / "lake"
    shutil.copytree(lake.root, after_first, ignore=shutil.ignore_patterns("_metastore"))
    deliver_batches(Path(lake.root), SECOND)
    second = run_in_process(lake)
    return snapshot(lake), first, second, after_first


def crash_in_process(spark, settings, root: Path, n: int) -> None:
    """A run on `root` stopped right after its n-th commit."""
    lake = Lake(spark, str(root), settings.catalog.database, after_commit=crash_after(n))
    with pytest.raises(SimulatedCrash):
        run_in_process(lake)
    lake.catalog.registered()  # a catalog registration under way ends before the next run


def crash_then_rerun(spark, settings, roots_and_n: list[tuple[Path, int]]) -> dict[int, dict]:
    """Stop a run after its N-th commit on each lake, then run again; the state of each lake
    per N."""
    states = {}
    for root, n in roots_and_n:
        crash_in_process(spark, settings, root, n)
        lake = Lake(spark, str(root), settings.catalog.database)
        run_in_process(lake)
        states[n] = snapshot(lake)
    return states


def test_a_first_run_killed_then_rerun_converges(reference, spark, test_settings, tmp_path):
    """A first run (tables created whole) killed after its first commit, between the first
    two trusted tables (a table half-created by the killed process must count as missing), and
    before its run record. Every N is covered by the incremental run below."""
    _, first_commits, _, after_first = reference
    expected = snapshot(Lake(spark, str(after_first), test_settings.catalog.database))
    lakes = []
    for n in (1, 7, first_commits - 1):
        root = tmp_path / f"lake-{n}"
        deliver_batches(root, FIRST)
        lakes.append((root, n))
    for n, state in crash_then_rerun(spark, test_settings, lakes).items():
        assert state == expected, f"killed after commit {n}"


def test_an_incremental_run_killed_after_any_commit_then_rerun_converges(
    reference, spark, test_settings, tmp_path
):
    expected, _, second_commits, after_first = reference
    lakes = []
    for n in range(1, second_commits + 1):
        root = tmp_path / f"lake-{n}"
        shutil.copytree(after_first, root)
        deliver_batches(root, SECOND)
        lakes.append((root, n))
    for n, state in crash_then_rerun(spark, test_settings, lakes).items():
        assert state == expected, f"killed after commit {n}"


def test_a_killed_run_is_completed_by_the_next_cli_run(reference, spark, test_settings, tmp_path):
    """A real process: a first run killed between two trusted tables."""
    expected, _, _, _ = reference
    root = tmp_path / "lake"
    deliver_batches(root, FIRST + SECOND)
    assert stedi_run(root, killed_after=7).returncode == -9
    again = stedi_run(root)
    assert again.returncode == 0, again.stderr[-2000:]
    assert snapshot(Lake(spark, str(root), test_settings.catalog.database)) == expected


def test_a_killed_incremental_cli_run_then_rerun_converges(
    reference, spark, test_settings, tmp_path
):
    """A real process: an incremental run killed halfway through its commits."""
    expected, _, second_commits, after_first = reference
    root = tmp_path / "lake"
    shutil.copytree(after_first, root)
    deliver_batches(root, SECOND)
    killed = stedi_run(root, killed_after=second_commits // 2)
    assert killed.returncode == -9, killed.stderr[-2000:]
    lake = Lake(spark, str(root), test_settings.catalog.database)
    run_in_process(lake)
    assert snapshot(lake) == expected


def test_two_runs_at_once_one_waits_its_turn_with_one_clear_line(
    reference, spark, test_settings, tmp_path
):
    expected, _, _, _ = reference
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
    _, first_commits, second_commits, _ = reference
    # landing + quarantine (3 each), 3 trusted, bookmark, 2 curated, bookmark, quality, runs
    assert first_commits == 15
    assert 0 < second_commits <= 15
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
    base = tmp_path / "crashed" / "lake"
    copy_lake(sample_runs().root, base, spark, test_settings)
    again = "accelerometer/2022/06/more.json"  # new readings of known people, at known times
    for root in (Path(lake.root), base):
        (root / "landing" / again).write_text(readings_moved(SAMPLE / FIRST[0][0]))

    report = run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    tables = [w.table for w in report.writes]
    ml = report.writes[tables.index("machine_learning_curated")]
    assert ml.rows > 0 and ml.removed == 0, ml  # added, not replaced
    assert "step_trainer_trusted" not in tables  # nobody's curated status changed

    crash_in_process(spark, test_settings, base, tables.index(ml.table) + 1)
    rerun = Lake(spark, str(base), test_settings.catalog.database)
    run_in_process(rerun)
    assert snapshot(rerun) == snapshot(lake)
