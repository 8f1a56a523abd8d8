"""What docs/emr.md says that can be checked here: the emr profile, the Spark settings it
produces under spark-submit, and the configuration JSON in the docs."""

import json
import os
import re
from pathlib import Path

import pytest

from stedi_lakehouse.lake.session import session_options
from stedi_lakehouse.settings import load_settings
from tests.helpers import ROOT, SHARED_METASTORE

pytestmark = pytest.mark.system  # processes of their own (CLI runs, JVMs, servers)

DOC = (ROOT / "docs" / "emr.md").read_text()
GLUE = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
FACTORY_KEY = "spark.hadoop.hive.metastore.client.factory.class"


@pytest.fixture
def emr(monkeypatch):
    monkeypatch.delenv(SHARED_METASTORE, raising=False)
    return load_settings("emr")


def test_emr_profile_is_an_s3_lake_on_glue_without_local_jars(emr):
    assert emr.lake_root.startswith("s3://")
    assert emr.catalog.metastore == "external"
    assert emr.spark.jars_dir is None and emr.pseudonym_key is None


def test_under_spark_submit_the_cluster_keeps_master_jars_and_metastore(emr):
    options = session_options(emr, emr.lake_root, submitted=True)
    assert not {"spark.master", "spark.jars", "spark.driver.memory"} & set(options)
    assert not any("javax.jdo" in key or "derby" in value for key, value in options.items())
    assert options[FACTORY_KEY] == GLUE
    assert options["spark.sql.catalogImplementation"] == "hive"
    assert options["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_local_launch_brings_its_own_master_and_jars(test_settings):
    options = session_options(test_settings, "/tmp/lake", submitted=False)
    assert options["spark.master"] == "local[2]"
    class_path = options["spark.driver.extraClassPath"].split(os.pathsep)
    assert {"delta-spark_2.13-4.0.0.jar", "hadoop-aws-3.4.1.jar"} <= {
        Path(p).name for p in class_path
    }


def _json_blocks() -> list:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC, re.S)]


def test_docs_classifications_agree_with_the_profile(emr):
    classifications = {c["Classification"]: c["Properties"] for c in _json_blocks()[0]}
    assert classifications["delta-defaults"] == {"delta.enabled": "true"}
    factory = classifications["spark-hive-site"]["hive.metastore.client.factory.class"]
    assert factory == emr.spark.conf[FACTORY_KEY] == GLUE


def test_docs_step_runs_the_packaged_artifacts():
    (step,) = _json_blocks()[1]
    args = " ".join(step["Args"])
    for artifact in (
        "stedi_lakehouse_env.tar.gz#environment",
        "stedi_conf.tar.gz#conf",
        "stedi_job.py",
    ):
        assert artifact in args
    assert "PYSPARK_PYTHON=./environment/bin/python" in args
    assert "STEDI_PROFILE=emr" in args
    assert step["Args"][-3:] == ["run", "--lake-root", "s3://stedi-lakehouse/lake"]
