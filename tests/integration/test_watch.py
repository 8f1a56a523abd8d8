"""`watch` keeps watching: a failed run is recorded and tried again after a backoff, with the
deliveries that came since; only a configuration error or a lost Spark Connect endpoint stops
the watcher."""

import shutil
from pathlib import Path

import pytest

from stedi_lakehouse.errors import ConfigError
from stedi_lakehouse.pipeline import watch
from stedi_lakehouse.presets import Rules
from tests.helpers import FILES, KEY, deliver, new_lake


def test_a_failed_run_is_recorded_retried_with_backoff_and_watching_goes_on(
    spark, test_settings, tmp_path
):
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    deliver(Path(lake.root), FILES)
    step_trainer = Path(lake.root) / "landing" / "step_trainer"
    shutil.move(step_trainer, tmp_path / "step_trainer")  # a folder gone for a while
    delays, failures, reports = [], [], []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:  # the folder is back before the third look
            shutil.move(tmp_path / "step_trainer", step_trainer)

    written = watch(
        lake,
        rules=Rules.PRIVACY,
        pseudonym_key=KEY,
        every=10,
        runs=1,
        on_run=lambda report, seconds: reports.append(report),
        on_failure=lambda error, delay: failures.append((type(error).__name__, delay)),
        sleep=sleep,
    )
    assert written == 1 and delays == [20, 40]
    assert failures == [("LakeError", 20), ("LakeError", 40)]
    runs = lake.read("runs").orderBy("started_at").collect()
    assert [r["outcome"] for r in runs] == ["failed", "failed", "succeeded"]
    assert runs[0]["error"].startswith("LakeError: no landing folder for 'step_trainer'")
    assert lake.read("machine_learning_curated").count() == 221


def test_the_backoff_is_capped_and_a_configuration_error_stops_the_watcher(
    spark, test_settings, tmp_path
):
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    shutil.rmtree(Path(lake.root) / "landing" / "customer")
    delays = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 8:  # then a setting goes wrong: no look can succeed
            (Path(lake.root) / "landing" / "customer").mkdir()
            deliver(Path(lake.root), FILES)

    with pytest.raises(ConfigError, match="no pseudonym key"):
        watch(lake, rules=Rules.PRIVACY, pseudonym_key=None, every=10, sleep=sleep)
    assert delays == [20, 40, 80, 160, 320, 600, 600, 600]


def test_a_watcher_whose_spark_connect_endpoint_is_gone_stops(
    spark, test_settings, tmp_path, monkeypatch
):
    """Every later look would fail alike: the session's endpoint (its address, its token) is
    gone even if a new server starts."""
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    from stedi_lakehouse.pipeline import run

    def gone(*args, **kwargs):  # what pyspark raises for a call the stopped server cut
        raise SparkConnectGrpcException("<RPC terminated with: status = StatusCode.CANCELLED>")

    monkeypatch.setattr(run, "run_stages", gone)
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    delays = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        assert len(delays) < 3, "still watching"

    with pytest.raises(SparkConnectGrpcException):
        watch(lake, rules=Rules.PRIVACY, pseudonym_key=KEY, every=10, sleep=sleep)
    assert delays == []
