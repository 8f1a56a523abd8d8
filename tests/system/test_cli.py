"""The CLI: quick answers without a JVM, one clear line for user mistakes, tables and JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stedi_lakehouse import __version__
from stedi_lakehouse.cli import app
from stedi_lakehouse.contracts.tables import CATALOGUE
from stedi_lakehouse.lake.layout import LINKED, NAMES_A_PERSON, NOT_LANDING
from tests.helpers import ROOT, SAMPLE, SHARED_METASTORE, land_sample

pytestmark = pytest.mark.system  # processes of their own (CLI runs, JVMs, servers)

runner = CliRunner()
CLI = [str(Path(sys.executable).parent / "stedi-lake")]


def invoke(*args, env=None):
    return runner.invoke(app, [*args], env=env)


def test_help_and_argument_errors_do_not_start_the_jvm():
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom stedi_lakehouse.cli import app\n"
        "r = CliRunner()\nassert r.invoke(app, ['--help']).exit_code == 0\n"
        "assert r.invoke(app, ['run', '--rules', 'nope']).exit_code == 2\n"
        "assert r.invoke(app, ['watch', '--every', '0']).exit_code == 2\n"
        "assert r.invoke(app, ['watch', '--help']).exit_code == 0\n"
        "assert r.invoke(app, ['--version']).exit_code == 0\n"
        "assert 'pyspark' not in sys.modules, 'pyspark was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def test_unknown_rules_preset_is_rejected():
    result = invoke("run", "--rules", "nope")
    assert result.exit_code == 2 and "'nope' is not one of" in result.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["run", "--lake-root", "/no/such/lake"],
            {},
            "error: lake root /no/such/lake does not exist",
        ),
        (["run", "--profile", "nope"], {}, "error: no profile 'nope'"),
        (["run"], {"STEDI_SPARK__SHUFFLE_PARTITIONS": "zero"}, "error: bad configuration"),
        (["land", "/no/such/folder", "--lake-root", "/tmp/x"], {}, "error: source folder"),
        (["land", __file__, "--lake-root", "/tmp/x"], {}, f"error: source folder {__file__} is a"),
        (["status", "--lake-root", "/tmp"], {"STEDI_SPARK__CONF": "{"}, "error: bad configuration"),
        (["land", str(SAMPLE), "--lake-root", __file__], {}, f"error: File exists: {__file__}"),
        (
            ["report", "--out", "/no/such/folder/r.html", "--lake-root", "/tmp"],
            {},
            "error: No such file or directory: /no/such/folder/r.html",
        ),
        (
            ["watch", "--lake-root", "/no/such/lake"],
            {},
            "error: lake root /no/such/lake does not exist",
        ),
    ],
)
def test_user_mistakes_end_with_one_line_and_exit_1(args, env, message):
    result = invoke(*args, env=env)
    assert result.exit_code == 1
    assert result.output.startswith(message), result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"JAVA_HOME": "{tmp}/no-java"}, "{tmp}/no-java/bin/java: No such file or directory"),
        (
            {"STEDI_SPARK__CONF": '{"spark.sql.shuffle.partitions": "abc"}'},
            "java.lang.IllegalArgumentException: spark.sql.shuffle.partitions should be int, "
            "but was abc",
        ),
    ],
    ids=["no java at JAVA_HOME", "a Spark setting Spark refuses"],
)
def test_spark_that_cannot_start_is_one_line(tmp_path, env, words):
    """What the launcher or the JVM said, which Java, where the log is; no traceback. (A new
    process: in this one, Spark is already running.)"""
    land_sample(tmp_path / "lake")
    log = tmp_path / "jvm.log"
    env = {
        **os.environ,
        "STEDI_CONF_DIR": str(ROOT / "conf"),
        "STEDI_SPARK__JVM_LOG": str(log),
        **{k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()},
    }
    java = f"JAVA_HOME={env['JAVA_HOME']}" if env.get("JAVA_HOME") else "the java on the PATH"
    done = subprocess.run(
        [*CLI, "run", "--lake-root", str(tmp_path / "lake")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    said = done.stderr.strip()
    assert said.startswith(
        f"error: Spark did not start: {words.replace('{tmp}', str(tmp_path))}. "
    ), said
    assert f"Java: {java}" in said and said.endswith(f"The JVM's log: {log}"), said
    assert "Traceback" not in said and len(said.splitlines()) == 1


def test_invalid_yaml_profile_is_one_line(tmp_path):
    (tmp_path / "broken.yaml").write_text("spark: [unclosed\n")
    result = invoke("status", "--profile", "broken", env={"STEDI_CONF_DIR": str(tmp_path)})
    assert result.exit_code == 1 and "is not valid YAML" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_promote_status_and_query_in_process(spark, tmp_path):
    land_sample(tmp_path)
    env = {"STEDI_PROFILE": "test"}
    trusted = invoke("promote", "trusted", "--lake-root", str(tmp_path), env=env)
    assert trusted.exit_code == 0, trusted.output
    assert "step_trainer_trusted" in trusted.stdout and "quarantined" in trusted.stdout
    assert "machine_learning_curated" not in trusted.stdout
    curated = invoke("promote", "curated", "--lake-root", str(tmp_path), env=env)
    assert curated.exit_code == 0, curated.output
    assert "machine_learning_curated" in curated.stdout

    status = invoke("status", "--lake-root", str(tmp_path), "--json", env=env)
    tables = json.loads(status.stdout)["tables"]
    assert set(tables) == set(CATALOGUE)
    assert tables["machine_learning_curated"]["rows"] == 221
    assert tables["customer_quarantine"] == {
        "rows": 37,
        "version": 0,
        "path": f"{tmp_path}/delta/quarantine/customer_quarantine",
    }

    query = invoke(
        "query", "--lake-root", str(tmp_path), "SELECT count(*) AS n FROM customer_curated", env=env
    )
    assert query.exit_code == 0 and " 39 " in query.stdout

    bad_sql = invoke("query", "--lake-root", str(tmp_path), "SELECT nope FROM nowhere", env=env)
    assert bad_sql.exit_code == 1 and "TABLE_OR_VIEW_NOT_FOUND" in bad_sql.output
    assert len(bad_sql.output.strip().splitlines()) == 1


def test_catalog_persists_for_a_new_process(tmp_path):
    """`run` in one process, `query` in another: the tables are found by name."""
    land_sample(tmp_path)
    env = {**os.environ, "STEDI_PROFILE": "test", "STEDI_CONF_DIR": str(ROOT / "conf")}
    env.pop(SHARED_METASTORE, None)  # the test JVM holds that one: use the lake's
    common = ["--lake-root", str(tmp_path)]
    subprocess.run(
        [*CLI, "run", *common, "--rules", "udacity"], env=env, check=True, capture_output=True
    )
    query = subprocess.run(
        [*CLI, "query", *common, "SELECT count(*) AS pairs FROM stedi.machine_learning_curated"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert " 296 " in query.stdout


def test_run_json_prints_the_runs_record(spark, tmp_path):
    """`run --json`: the run's record on stdout, with the fields of the `runs` table."""
    from stedi_lakehouse.contracts.spark import columns
    from stedi_lakehouse.contracts.tables import RunRecord

    land_sample(tmp_path)
    env = {"STEDI_PROFILE": "test"}
    result = invoke("run", "--lake-root", str(tmp_path), "--json", env=env)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert list(record) == columns(RunRecord)
    assert record["outcome"] == "succeeded" and record["error"] is None
    counts = {d["dataset"]: d for d in record["datasets"]}
    assert (counts["customer"]["accepted"], counts["customer"]["quarantined"]) == (94, 37)
    assert "machine_learning_curated" in {w["table"] for w in record["writes"]}
    status = json.loads(invoke("status", "--lake-root", str(tmp_path), "--json", env=env).stdout)
    assert status["runs"][0]["run_id"] == record["run_id"]


def test_a_forget_without_an_address_starts_nothing(tmp_path, monkeypatch):
    from stedi_lakehouse.lake import open as opening

    def opened(*args, **kwargs):
        raise AssertionError("the lake was opened (Spark started) first")

    monkeypatch.setattr(opening, "open_lake", opened)
    result = invoke("forget", "--email", " ", "--lake-root", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert result.output.strip() == "error: --email must not be empty"


def test_land_names_every_file_it_leaves(tmp_path):
    source = tmp_path / "delivery"
    for name in ("customer/a.json", "customer/kim@test.com.json", "customer/notes.txt"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("{}\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/b.json").write_text("{}\n")
    (source / "customer/key.json").symlink_to(tmp_path / "elsewhere/b.json")
    (source / "customer/more").symlink_to(tmp_path / "elsewhere")
    result = invoke("land", str(source), "--lake-root", str(tmp_path / "lake"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[lines.index(f"not landed: 4 file(s) of {source}:") + 1 :] == [
        "  customer/key.json: " + LINKED,
        "  customer/kim@test.com.json: " + NAMES_A_PERSON,
        "  customer/more: " + LINKED,
        "  customer/notes.txt: " + NOT_LANDING,
    ]
    assert [p.name for p in (tmp_path / "lake" / "landing" / "customer").iterdir()] == ["a.json"]
