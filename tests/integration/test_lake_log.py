"""`status` and `history` read the Delta logs with delta-rs: the figures Spark gives, on a lake
built by two pipeline runs (the sample, then one more accelerometer file), and no pyspark
module imported on the way."""

import json
import os
import subprocess
import sys
from datetime import UTC

import pytest

from stedi_lakehouse.cli.render import latest_quality, run_summary
from stedi_lakehouse.contracts.tables import CATALOGUE
from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.lake.status import LakeLog, row_count, storage_options
from stedi_lakehouse.pipeline import Stages, run_stages
from stedi_lakehouse.pipeline.quality import latest_checks
from stedi_lakehouse.presets import Rules
from tests.helpers import ROOT, S3_ENV, SAMPLE, copy_lake

KEY = b"test-key"
HISTORY_FIELDS = ("version", "operation", "operationParameters", "operationMetrics")


@pytest.fixture(scope="module")
def built(sample_runs, spark, test_settings, tmp_path_factory):
    """(the Spark lake, the same root through its logs) after two runs."""
    root = tmp_path_factory.mktemp("lake_log") / "lake"
    lake = copy_lake(sample_runs().root, root, spark, test_settings)  # the sample, run
    lines = (SAMPLE / "accelerometer" / "accelerometer-1.json").read_text().splitlines()[1:6]
    (root / "landing" / "accelerometer" / "late.json").write_text("\n".join(lines) + "\n")
    run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    return lake, LakeLog(str(root))


def test_versions_and_row_counts_are_sparks(built):
    lake, log = built
    ours = [log.status(spec) for spec in CATALOGUE.values()]
    sparks = [lake.status(spec) for spec in CATALOGUE.values()]
    fields = ("table", "zone", "rows", "version", "path")
    assert [[getattr(s, f) for f in fields] for s in ours] == [
        [getattr(s, f) for f in fields] for s in sparks
    ]
    assert max(s.version or 0 for s in ours) >= 1 and all(s.rows for s in ours[:8])


def test_history_is_sparks(built):
    lake, log = built
    for name in CATALOGUE:
        if not lake.exists(name):
            continue
        ours, sparks = log.history(name), lake.history(name)
        assert [[c[f] for f in HISTORY_FIELDS] for c in ours] == [
            [c[f] for f in HISTORY_FIELDS] for c in sparks
        ], name
        assert [c["userMetadata"] for c in ours] == [c["userMetadata"] for c in sparks], name
        # Spark dates a commit by its log file's modification time, delta-rs by the commit's
        # own record of it: the same moment, give or take the write of that file
        for mine, theirs in zip(ours, sparks, strict=True):
            gap = mine["timestamp"] - theirs["timestamp"].astimezone(UTC)
            assert abs(gap.total_seconds()) < 2, name
    assert [c["version"] for c in log.history("accelerometer_landing", 1)] == [1]


def test_last_runs_and_quality_are_sparks(built):
    lake, log = built
    newest = lake.read("runs").sort("started_at", ascending=False).limit(5).collect()
    assert [run_summary(r) for r in log.newest_runs(5)] == [
        run_summary(row.asDict(recursive=True)) for row in newest
    ]
    assert len(log.newest_runs(1)) == 1
    checks = latest_checks(lake.read("quality")).collect()
    assert latest_quality(log.latest_checks()) == latest_quality(r.asDict() for r in checks)


def test_a_file_without_statistics_is_counted_from_its_footer(tmp_path):
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    write_deltalake(tmp_path, pa.table({"x": [1, 2, 3]}))
    write_deltalake(tmp_path, pa.table({"x": [4, 5]}), mode="append")
    commit = tmp_path / "_delta_log" / f"{1:020d}.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines()]
    for action in actions:
        action.get("add", {}).pop("stats", None)
    commit.write_text("".join(json.dumps(a) + "\n" for a in actions))
    assert row_count(DeltaTable(str(tmp_path))) == 5


def test_s3_options_come_from_the_standard_environment_without_secrets():
    endpoint = "https://minio.internal:9000"
    assert storage_options("s3://bucket/lake", {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}) == {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        "AWS_ALLOW_HTTP": "false",
    }
    assert storage_options("s3://bucket/lake", {}) == {}  # real AWS, its own credential chain
    assert storage_options("/some/lake", S3_ENV) == {}


def test_a_missing_local_root_is_one_clear_error(tmp_path):
    with pytest.raises(LakeError, match="lake root .*nope does not exist"):
        LakeLog(str(tmp_path / "nope"))


@pytest.mark.parametrize("command", [["status", "--json"], ["history", "runs"]])
def test_status_and_history_import_no_pyspark(built, command):
    _, log = built
    env = {**os.environ, "STEDI_PROFILE": "test", "STEDI_CONF_DIR": str(ROOT / "conf")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "stedi_lakehouse", *command, "-l", log.root],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = [line.split("|")[-1].strip() for line in done.stderr.splitlines()]
    assert "deltalake" in imported
    assert not [m for m in imported if m.split(".")[0] in ("pyspark", "py4j", "delta")]


def test_a_commit_holding_unicode_line_separators_is_read_whole(tmp_path):
    """JSON keeps U+2028, U+0085 and the like unescaped inside strings (a predicate that
    strips white space names them): a commit's lines end at "\\n" only."""
    from stedi_lakehouse.lake.delta_log import DeltaLog
    from stedi_lakehouse.lake.storage import Storage

    log = tmp_path / "table" / "_delta_log"
    log.mkdir(parents=True)
    predicate = "lower(btrim(t.serialNumber, ' \x85\u2028\u2029\x1c')) = s.key"
    info = {"commitInfo": {"operation": "MERGE", "operationParameters": {"predicate": predicate}}}
    text = json.dumps({"protocol": {}}) + "\n" + json.dumps(info, ensure_ascii=False) + "\n"
    (log / "00000000000000000000.json").write_text(text, encoding="utf-8")
    commit = DeltaLog(Storage(str(tmp_path))).last_commit(str(tmp_path / "table"))
    assert commit["operationParameters"]["predicate"] == predicate
