"""One SparkSession for the whole suite (local[2], quick JVM flags, Delta, embedded catalog)."""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
os.environ.setdefault("STEDI_CONF_DIR", str(ROOT / "conf"))


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory):
    from stedi_lakehouse.settings import load_settings

    metastore = tmp_path_factory.mktemp("metastore")
    return load_settings("test", catalog={"metastore_dir": metastore})


@pytest.fixture(scope="session")
def spark(test_settings, tmp_path_factory):
    from stedi_lakehouse.session import build_session

    session = build_session(test_settings, str(tmp_path_factory.mktemp("lake")))
    yield session
    session.stop()


@pytest.fixture
def lake(spark, tmp_path, test_settings):
    """An empty lake (its root exists) under tmp_path."""
    from stedi_lakehouse.io import Lake

    root = tmp_path / "lake"
    root.mkdir()
    return Lake(spark, str(root), test_settings.catalog.database)


def land_sample(root: Path) -> None:
    for dataset_dir in SAMPLE.iterdir():
        shutil.copytree(dataset_dir, root / "landing" / dataset_dir.name)
