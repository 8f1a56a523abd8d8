"""How the local JVM is started: from the class-data archive when there is one, with the quick
(C1-only) compiler for small work, and under a locale that lowers letters as Python does."""

import os
import subprocess
import sys
import time
import tomllib

import pytest

from stedi_lakehouse.lake.open import (
    BOOKMARKS_LOG,
    QUICK_RUN_BYTES,
    new_landing_bytes,
    with_jit_for,
)
from stedi_lakehouse.lake.session import session_options
from tests.helpers import ROOT, cli_env, with_spark

pytestmark = pytest.mark.system  # processes of their own (CLI runs, JVMs, servers)


def _java_options(settings) -> str:
    return session_options(settings, "/tmp/lake", submitted=False)["spark.driver.extraJavaOptions"]


@pytest.mark.parametrize(("args", "code"), [(["--help"], 0), (["no-such-command"], 2)])
def test_the_script_keeps_the_exit_code_and_runs_the_exit_handlers(args, code):
    """`stedi-lake` ends its process itself (a native library's teardown can abort it after
    the command has finished): the exit handlers run first, and the command's code stays."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["stedi-lake"] == "stedi_lakehouse.cli:main"
    program = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('exit handlers ran', file=sys.stderr))\n"
        f"sys.argv = ['stedi-lake', *{args!r}]\n"
        "from stedi_lakehouse.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == code, done.stderr
    assert done.stderr.rstrip().endswith("exit handlers ran"), done.stderr


def test_a_jvm_of_ours_keeps_the_code_of_more_queries_than_a_run_sends(spark):
    """Queries sent again (a watch's or a server's next run, the suite's) reuse their compiled
    code: a query made again after more distinct ones than Spark keeps by default (100) is not
    compiled again."""
    from pyspark.sql import functions as F

    compiled = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME

    def query(n: int) -> None:  # a class of its own: the constant is in the generated code
        spark.range(1).select((F.col("id") * 7 + n).alias("x")).collect()

    query(0)
    for n in range(1, 120):
        query(n)
    before = compiled().getCount()
    query(0)
    assert compiled().getCount() == before


def test_jvm_starts_from_the_class_archive_only_if_there_is_one(test_settings, tmp_path):
    archive = tmp_path / "spark.jsa"
    settings = with_spark(test_settings, class_archive=archive)
    assert "SharedArchiveFile" not in _java_options(settings)
    archive.write_bytes(b"")
    assert f"-XX:SharedArchiveFile={archive}" in _java_options(settings)


def test_quick_compiler_only_when_chosen(test_settings):
    assert "-XX:TieredStopAtLevel=1" in _java_options(with_spark(test_settings, jit="quick"))
    for jit in ("full", "auto"):
        assert "TieredStopAtLevel" not in _java_options(with_spark(test_settings, jit=jit))


def test_auto_is_quick_for_known_small_work_only(test_settings):
    auto = with_spark(test_settings, jit="auto")
    assert with_jit_for(auto, 0).spark.jit == "quick"
    assert with_jit_for(auto, QUICK_RUN_BYTES - 1).spark.jit == "quick"
    assert with_jit_for(auto, QUICK_RUN_BYTES).spark.jit == "full"
    assert with_jit_for(auto, None).spark.jit == "full"  # unknown: a cold run, an S3 lake
    assert with_jit_for(with_spark(test_settings, jit="full"), 0).spark.jit == "full"


def test_new_landing_bytes_are_those_that_arrived_after_the_last_bookmark(tmp_path):
    landing = tmp_path / "landing" / "accelerometer"
    landing.mkdir(parents=True)
    (landing / "old.json").write_text("x" * 100)
    assert new_landing_bytes(str(tmp_path)) is None  # never run: unknown
    log = tmp_path / BOOKMARKS_LOG
    log.mkdir(parents=True)
    (log / "00000000000000000000.json").write_text("{}")
    assert new_landing_bytes(str(tmp_path)) == 0
    time.sleep(0.05)  # a later inode change time than the bookmark's commit
    (landing / "new.json").write_text("y" * 7)
    os.link(landing / "new.json", landing / "linked.json")  # a second name: one more file
    assert new_landing_bytes(str(tmp_path)) == 14
    assert new_landing_bytes("s3://bucket/lake") is None


def test_a_jvm_that_fails_in_spark_is_named_with_the_java_in_use(monkeypatch):
    from py4j.protocol import Py4JJavaError

    from stedi_lakehouse.lake.session import _not_started

    class JavaException:  # what py4j hands over: a reference to the JVM's exception
        _target_id = "o1"

        def toString(self):  # noqa: N802 (the Java methods' names)
            return "java.lang.UnsupportedOperationException: getSubject is not supported"

        def getCause(self):  # noqa: N802
            return None

    monkeypatch.setenv("JAVA_HOME", "/opt/java-25")
    said = _not_started(Py4JJavaError("An error occurred", JavaException()), None, 0)
    assert said == (
        "Spark did not start: java.lang.UnsupportedOperationException: getSubject is not "
        "supported. Java: JAVA_HOME=/opt/java-25; Spark runs on 17 or 21."
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [("sc://[::1", "Invalid IPv6 URL"), ("http://host:15002", "INVALID_CONNECT_URL")],
)
def test_an_endpoint_address_that_does_not_parse_is_one_error_line(tmp_path, url, said):
    """In a process of its own: a failed remote session leaves pyspark in Connect mode."""
    command = [sys.executable, "-m", "stedi_lakehouse", "query", "SELECT 1"]
    command += ["--lake-root", str(tmp_path), "--remote", url]
    done = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot reach the Spark Connect endpoint"), done.stderr
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_metastore_a_killed_process_left_half_made_is_made_again(tmp_path):
    from stedi_lakehouse.lake.session import mend_half_made_metastore

    half = tmp_path / "metastore_db"
    (half / "seg0").mkdir(parents=True)  # created, killed before `service.properties`
    mend_half_made_metastore(tmp_path)
    assert not half.exists()
    (half / "seg0").mkdir(parents=True)
    (half / "service.properties").write_text("derby")
    mend_half_made_metastore(tmp_path)
    assert (half / "service.properties").exists()  # a whole one is kept


# Builds a session under a Turkish JVM locale, from the factory or plainly, and says whether
# it lowers letters as Python does.
_LOWERS_AS_PYTHON = """
import sys
from pyspark.sql import SparkSession
from stedi_lakehouse.errors import ConfigError
from stedi_lakehouse.lake.session import build_session, check_case_mapping
from stedi_lakehouse.settings import load_settings

if sys.argv[1] == "factory":
    spark = build_session(load_settings("test"), sys.argv[2])
else:
    spark = SparkSession.builder.master("local[1]").getOrCreate()
try:
    check_case_mapping(spark)
    print("agrees")
except ConfigError as exc:
    print(exc)
"""


def test_a_jvm_under_a_turkish_locale_lowers_identifiers_as_forget_does(tmp_path):
    """Spark lowers under the JVM's locale, `forget` under none: the JVMs the lake starts pin
    theirs, and one it did not start whose lowering differs is refused."""
    env = cli_env(JAVA_TOOL_OPTIONS="-Duser.language=tr -Duser.country=TR")
    started = {
        how: subprocess.Popen(
            [sys.executable, "-c", _LOWERS_AS_PYTHON, how, str(tmp_path / how)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for how in ("factory", "plain")
    }
    said = {how: process.communicate(timeout=300)[0].strip() for how, process in started.items()}
    assert said["factory"] == "agrees"
    assert said["plain"].startswith("this Spark lowers 'ÉIİ' to 'éıi',"), said["plain"]
    assert "-Duser.language=en" in said["plain"]


def test_no_java_option_undoes_the_lakes_locale(test_settings):
    turkish = with_spark(test_settings, java_options="-Duser.language=tr -Duser.country=TR")
    options = _java_options(turkish)
    assert options.endswith("-Duser.language=en -Duser.country=US"), options
