"""History, time travel and the last runs, through the CLI (in-process), on one lake built by
two runs: the sample, then one more accelerometer file."""

import json

import pytest
from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.pipeline import Stages, run_stages
from stedi_lakehouse.presets import Rules
from tests.helpers import KEY, SAMPLE, copy_lake

runner = CliRunner()
COUNT = "SELECT count(*) AS n FROM accelerometer_landing"


@pytest.fixture(scope="module")
def built(sample_runs, spark, test_settings, tmp_path_factory):
    """(lake root, lake) after two runs; accelerometer_landing has versions 0 and 1."""
    root = tmp_path_factory.mktemp("history") / "lake"
    lake = copy_lake(sample_runs().root, root, spark, test_settings)
    lines = (SAMPLE / "accelerometer" / "accelerometer-1.json").read_text().splitlines()[1:6]
    (root / "landing" / "accelerometer" / "late.json").write_text("\n".join(lines) + "\n")
    run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    return root, lake


def invoke(root, *args):
    return runner.invoke(app, [*args, "--profile", "test", "--lake-root", str(root)])


def one_line_error(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: {message}"), result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_history_shows_every_version_with_its_metrics_and_rules(built):
    root, lake = built
    result = invoke(root, "history", "accelerometer_landing")
    assert result.exit_code == 0, result.output
    first, second = (line for line in result.stdout.splitlines() if "WRITE" in line)
    assert first.split()[1] == "1" and second.split()[1] == "0"  # newest first
    assert "privacy" in first and "written" in first

    limited = invoke(root, "history", "accelerometer_landing", "--limit", "1")
    assert limited.exit_code == 0 and "use --limit to see more" in limited.stdout


def test_history_of_an_unknown_or_unbuilt_table_is_one_line(built, tmp_path):
    root, _ = built
    one_line_error(invoke(root, "history", "nope"), "no table 'nope' in the catalogue: one of")
    one_line_error(invoke(tmp_path, "history", "erasures"), "table erasures not found")


def test_query_as_of_reads_the_old_version(built):
    root, lake = built
    old = lake.read("accelerometer_landing", version=0).count()
    now = lake.read("accelerometer_landing").count()
    assert old < now
    result = invoke(root, "query", COUNT, "--as-of", "0")
    assert result.exit_code == 0, result.output
    assert f" {old} " in result.stdout and f" {now} " not in result.stdout
    current = invoke(root, "query", COUNT)  # the time-travel view is gone
    assert current.exit_code == 0 and f" {now} " in current.stdout


def test_query_as_of_a_missing_version_is_one_line(built):
    root, _ = built
    one_line_error(
        invoke(root, "query", COUNT, "--as-of", "7"),
        "accelerometer_landing has no version 7 (versions 0 to 1)",
    )
    qualified = "SELECT count(*) FROM stedi.accelerometer_landing"
    one_line_error(invoke(root, "query", qualified, "--as-of", "0"), "--as-of reads unqualified")


def test_status_shows_the_last_runs(built):
    root, _ = built
    result = invoke(root, "status", "--json")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert [r["outcome"] for r in runs] == ["succeeded", "succeeded"]
    assert runs[0]["started_at"] > runs[1]["started_at"] and runs[0]["new_files"] == 1
    assert runs[1]["new_files"] == sum(1 for _ in SAMPLE.rglob("*.json"))
    assert all(r["command"] == "all" and r["rules"] == "privacy" for r in runs)

    table = invoke(root, "status", "--runs", "1")
    assert table.exit_code == 0 and "Last runs" in table.stdout
    assert table.stdout.count("succeeded") == 1
