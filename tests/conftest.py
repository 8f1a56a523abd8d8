"""One SparkSession for the whole suite (local[2], quick JVM flags, Delta, S3A, embedded
catalog), started after a loopback S3 server (moto) so that S3A talks to it."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
os.environ.setdefault("STEDI_CONF_DIR", str(ROOT / "conf"))
# A pseudonym key a test makes (the local profile has none) goes here, not to the user's config.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="stedi-test-config-")
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_REGION": "us-east-1",
}


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


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory):
    from stedi_lakehouse.settings import load_settings

    # Every lake of the suite shares the session's one embedded metastore (a JVM holds it).
    metastore = tmp_path_factory.mktemp("metastore")
    os.environ["STEDI_CATALOG__METASTORE_DIR"] = str(metastore)
    return load_settings("test")


@pytest.fixture(scope="session")
def spark(test_settings, s3_endpoint, tmp_path_factory):
    from stedi_lakehouse.lake.session import build_session

    session = build_session(test_settings, str(tmp_path_factory.mktemp("lake")))
    yield session
    session.stop()


@pytest.fixture
def lake(spark, tmp_path, test_settings):
    """An empty lake (its root exists) under tmp_path."""
    from stedi_lakehouse.lake.tables import Lake

    root = tmp_path / "lake"
    root.mkdir()
    return Lake(spark, str(root), test_settings.catalog.database)


def land_sample(root: Path) -> None:
    for dataset_dir in SAMPLE.iterdir():
        shutil.copytree(dataset_dir, root / "landing" / dataset_dir.name)
