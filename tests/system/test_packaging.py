"""`make package` and `make submit-local`: the packaged job runs under spark-submit, from dist/
only, and gives the same counts as a local run."""

import os
import subprocess
import tarfile

import pytest

from stedi_lakehouse.contracts.tables import CATALOGUE
from stedi_lakehouse.presets import Rules
from tests.helpers import EXPECTED_ROWS, ROOT

pytestmark = pytest.mark.system  # processes of their own (CLI runs, JVMs, servers)


def test_packaged_job_under_spark_submit_gives_the_local_counts(spark, tmp_path):
    lake = tmp_path / "lake"
    # nothing of the sources' on the path: the job must run from dist/ alone
    clean_env = {
        k: v for k, v in os.environ.items() if not k.startswith("STEDI_") and k != "PYTHONPATH"
    }
    result = subprocess.run(
        ["make", "--no-print-directory", "submit-local", f"LAKE={lake}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean_env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    dist = {p.name for p in (ROOT / "dist").iterdir()}
    assert {"stedi_job.py", "stedi_lakehouse_env.tar.gz", "stedi_conf.tar.gz"} <= dist
    with tarfile.open(ROOT / "dist" / "stedi_lakehouse_env.tar.gz") as env:
        names = env.getnames()
    assert any("site-packages/stedi_lakehouse/cli/app.py" in n for n in names)
    assert not any("devdata" in n or "edge_cases" in n for n in names)  # test data stays home
    assert not any("site-packages/pyspark/" in n for n in names)  # the cluster provides it

    for table, rows in EXPECTED_ROWS[Rules.PRIVACY].items():
        path = lake / "delta" / CATALOGUE[table].zone / table
        assert spark.read.format("delta").load(str(path)).count() == rows, table
    assert (lake / "_metastore" / "metastore_db").is_dir()
