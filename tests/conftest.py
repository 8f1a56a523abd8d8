"""One SparkSession for the whole suite (local[2], quick JVM flags, Delta, S3A, embedded
catalog). The loopback S3 server (moto) starts only for the tests that use it, and points the
running session's S3A at itself."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from stedi_lakehouse.contracts.tables import CATALOGUE
from stedi_lakehouse.pipeline import StageReport
from stedi_lakehouse.presets import Rules
from tests.helpers import (
    KEY,
    ROOT,
    S3_ENV,
    SHARED_METASTORE,
    copy_lake,
    land_sample,
    start_server,
    with_spark,
)

os.environ.setdefault("STEDI_CONF_DIR", str(ROOT / "conf"))
# A pseudonym key a test makes (the local profile has none) goes here, not to the user's config.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="stedi-test-config-")


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on a free 127.0.0.1 port, for the whole session. In a process of its
    own: delta-rs holds the GIL while it waits on S3, so a server thread here could not answer."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    _wait_until_listening(port, server)
    saved = {k: os.environ.get(k) for k in [*S3_ENV, "AWS_ENDPOINT_URL_S3"]}
    os.environ.update(S3_ENV, AWS_ENDPOINT_URL_S3=endpoint)
    _point_s3a_at(os.environ)
    yield endpoint
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    server.terminate()
    server.wait(timeout=10)


def _wait_until_listening(port: int, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"the moto server did not listen on port {port}")


def _point_s3a_at(environ) -> None:
    """Give a running session the S3A settings the session factory takes from `environ` (a
    session started later reads them itself). Hadoop reads them when it first makes an s3a file
    system, which no test does before this fixture."""
    from pyspark.sql import SparkSession

    from stedi_lakehouse.lake.session import s3a_options

    spark = SparkSession.getActiveSession()
    if spark is None:
        return
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_options(environ).items():
        conf.set(key.removeprefix("spark.hadoop."), value)
    # The JVM's environment was fixed at its start: the AWS SDK's default chain reads these
    # Java properties first, so the test credentials reach it there.
    system = spark.sparkContext._jvm.java.lang.System
    system.setProperty("aws.accessKeyId", environ["AWS_ACCESS_KEY_ID"])
    system.setProperty("aws.secretAccessKey", environ["AWS_SECRET_ACCESS_KEY"])
    system.setProperty("aws.region", environ["AWS_REGION"])


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory):
    from stedi_lakehouse.settings import load_settings

    # Every lake of the suite shares the session's one embedded metastore (a JVM holds it).
    metastore = tmp_path_factory.mktemp("metastore")
    os.environ[SHARED_METASTORE] = str(metastore)
    return load_settings("test")


@pytest.fixture(scope="session")
def spark(test_settings, tmp_path_factory):
    from stedi_lakehouse.lake.session import build_session

    # The suite's session lives as long as the suite: the optimising compiler pays off there (a
    # CLI process of the test profile starts quick instead).
    settings = with_spark(test_settings, jit="full")
    session = build_session(settings, str(tmp_path_factory.mktemp("lake")))
    yield session
    session.stop()


@pytest.fixture
def lake(spark, tmp_path, test_settings):
    """An empty lake (its root exists) under tmp_path."""
    from stedi_lakehouse.lake.tables import Lake

    root = tmp_path / "lake"
    root.mkdir()
    return Lake(spark, str(root), test_settings.catalog.database)


@dataclass(frozen=True)
class SampleRun:
    """The whole sample run once into a new lake under one preset, as `stedi-lake run` does:
    the report, and the rows the catalog gave right after the run registered its tables."""

    root: Path
    rules: Rules
    report: StageReport
    catalog_rows: dict[str, int]


@pytest.fixture(scope="session")
def sample_runs(spark, test_settings, tmp_path_factory):
    """`sample_runs(rules)`: the sample run once per session and preset, for the tests that
    only read it; a test that changes it takes a copy (`tests.helpers.copy_lake`)."""
    from stedi_lakehouse.lake.tables import Lake
    from stedi_lakehouse.pipeline import Stages, run_stages

    built: dict[Rules, SampleRun] = {}

    def sample_run(rules: Rules = Rules.PRIVACY) -> SampleRun:
        if rules not in built:
            root = tmp_path_factory.mktemp(f"sample-{rules}") / "lake"
            land_sample(root)
            lake = Lake(spark, str(root), test_settings.catalog.database)
            report = run_stages(Stages(lake, rules=rules), "all", pseudonym_key=KEY)
            # read now: a later lake of the suite registers the same names
            counted = {
                name: spark.sql(f"SELECT count(*) AS n FROM {lake.database}.{name}").first()["n"]
                for name in CATALOGUE
                if lake.exists(name)
            }
            built[rules] = SampleRun(root, rules, report, counted)
        return built[rules]

    return sample_run


@pytest.fixture
def sample_lake_copy(sample_runs, spark, test_settings, tmp_path):
    """A copy of the sample run (privacy), to change."""
    return copy_lake(sample_runs().root, tmp_path / "lake", spark, test_settings)


@pytest.fixture(scope="session")
def lake_server(tmp_path_factory) -> str:
    """A lake server (Spark Connect, a JVM of its own) for the session, started on a lake of its
    own: tests run their lakes through it with `--remote` (tests.helpers.run_through). Its URL."""
    from stedi_lakehouse.lake import server

    root = tmp_path_factory.mktemp("lake-server") / "lake"
    root.mkdir()
    yield start_server(root).url
    server.stop(str(root))


def pytest_collection_modifyitems(items) -> None:
    """Tests that use the suite's SparkSession, directly or through a fixture, are marked
    `spark`: `make test-unit` runs the others (seconds, no JVM in this process)."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker("spark")
