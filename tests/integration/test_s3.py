"""The same lake on S3: the whole pipeline against a real S3 API (moto) on loopback."""

import json
import subprocess
import sys

import boto3
import pytest
from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.erasure.forget import forget
from stedi_lakehouse.lake.session import s3a_options
from stedi_lakehouse.lake.tables import Lake
from stedi_lakehouse.pipeline import Stages
from stedi_lakehouse.presets import Rules
from tests.helpers import (
    EXPECTED_EXCLUSIONS,
    EXPECTED_ROWS,
    KEY,
    S3_ENV,
    SAMPLE,
    cli_env,
    files_naming,
    pick_person,
    start_server,
    written_rows,
)

BUCKET = "stedi-lake"
ROOT = f"s3://{BUCKET}/prod"


@pytest.fixture(scope="module")
def s3_run(spark, s3_endpoint, test_settings):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for file in SAMPLE.rglob("*.json"):
        s3.upload_file(str(file), BUCKET, f"prod/landing/{file.relative_to(SAMPLE)}")
    lake = Lake(spark, ROOT, test_settings.catalog.database)
    stages = Stages(lake, rules=Rules.PRIVACY)
    return lake, stages.trusted().merge(stages.curated(pseudonym_key=KEY))


def test_s3_lake_gives_the_local_counts(s3_run):
    _, report = s3_run
    assert written_rows(report) == EXPECTED_ROWS[Rules.PRIVACY]
    excluded = {name: counts.excluded for name, counts in report.datasets.items()}
    assert excluded == EXPECTED_EXCLUSIONS[Rules.PRIVACY]


def test_tables_and_quarantine_live_in_the_bucket(s3_run):
    lake, report = s3_run
    assert all(w.path.startswith(f"{ROOT}/delta/") for w in report.writes)
    keys = {
        o["Key"]
        for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="prod/delta/quarantine/")[
            "Contents"
        ]
    }
    assert any(k.endswith("_delta_log/00000000000000000000.json") for k in keys)
    sources = {r["source_file"] for r in lake.read("customer_quarantine").collect()}
    assert sources and all(s.startswith("landing/customer/") for s in sources)


def test_s3a_scheme_reads_the_same_tables(s3_run, spark, test_settings):
    _, report = s3_run
    s3a = Lake(spark, f"s3a://{BUCKET}/prod", test_settings.catalog.database)
    assert (
        s3a.read("machine_learning_curated").count()
        == EXPECTED_ROWS[Rules.PRIVACY]["machine_learning_curated"]
    )


def test_cli_status_and_query_on_s3(s3_run):
    env = {"STEDI_PROFILE": "test"}
    status = CliRunner().invoke(app, ["status", "--lake-root", ROOT, "--json"], env=env)
    assert status.exit_code == 0, status.output
    tables = json.loads(status.stdout)["tables"]
    assert tables["step_trainer_quarantine"]["rows"] == 32
    assert tables["customer_trusted"]["path"] == f"{ROOT}/delta/trusted/customer_trusted"
    query = CliRunner().invoke(
        app, ["query", "--lake-root", ROOT, "SELECT count(*) FROM customer_curated"], env=env
    )
    assert query.exit_code == 0 and " 39 " in query.stdout


def test_missing_bucket_is_one_clear_line(s3_run):
    result = CliRunner().invoke(
        app, ["status", "--lake-root", "s3://no-such-bucket/lake"], env={"STEDI_PROFILE": "test"}
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: cannot reach s3://no-such-bucket/lake: UnknownStoreException: "
        "The specified bucket does not exist"
    )


def test_s3a_settings_come_from_the_standard_environment_without_secrets():
    options = s3a_options({**S3_ENV, "AWS_ENDPOINT_URL": "https://minio.internal:9000"})
    assert options["spark.hadoop.fs.s3a.endpoint"] == "https://minio.internal:9000"
    assert options["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert options["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert options["spark.hadoop.fs.s3a.endpoint.region"] == "us-east-1"
    assert not any(secret in str(options) for secret in S3_ENV.values() if secret != "us-east-1")
    assert "spark.hadoop.fs.s3a.endpoint" not in s3a_options({})  # real AWS by default


def test_no_credential_is_written_to_the_lake(s3_run):
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    for key in keys:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert S3_ENV["AWS_SECRET_ACCESS_KEY"].encode() not in body, key
        assert S3_ENV["AWS_ACCESS_KEY_ID"].encode() not in body or key.startswith("prod/landing"), (
            key
        )


def test_land_uploads_to_s3(s3_run):
    """`land` delivers the sample into an S3 lake, keeping sub-folders."""
    env = {"STEDI_PROFILE": "test"}
    root = f"s3://{BUCKET}/landed"
    result = CliRunner().invoke(app, ["land", str(SAMPLE), "--lake-root", root], env=env)
    assert result.exit_code == 0, result.output
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="landed/landing/")
    keys = {o["Key"].removeprefix("landed/landing/") for o in listed["Contents"]}
    assert keys == {str(f.relative_to(SAMPLE)) for f in SAMPLE.rglob("*.json")}


def test_a_second_run_on_s3_finds_nothing_new(s3_run):
    lake, _ = s3_run
    again = Stages(lake, rules=Rules.PRIVACY)
    assert again.trusted().writes == []
    assert again.curated(pseudonym_key=KEY).writes == []


@pytest.mark.system  # a server and a CLI run, each a process of its own
def test_an_s3_lake_runs_through_a_spark_connect_endpoint(s3_endpoint, tmp_path):
    """A thin client (no JVM) runs an S3 lake through a Spark Connect endpoint, as through a
    cluster's: the client lists and reads the lake's files itself, the endpoint its tables."""
    from stedi_lakehouse.lake import server

    boto3.client("s3").create_bucket(Bucket="stedi-served")  # this test's own: runs alone too
    root = "s3://stedi-served/lake"
    land = CliRunner().invoke(app, ["land", str(SAMPLE), "--lake-root", root], env=cli_env())
    assert land.exit_code == 0, land.output
    endpoint = tmp_path / "endpoint"  # a server's own lake, empty: it only lends its Spark
    endpoint.mkdir()
    address = start_server(endpoint)
    try:
        command = [sys.executable, "-m", "stedi_lakehouse", "run", "--profile", "test", "--json"]
        command += ["--lake-root", root, "--remote", address.url]
        done = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=600)
    finally:
        server.stop(str(endpoint))
    assert done.returncode == 0, done.stderr[-3000:]
    written = {w["table"]: w["rows_written"] for w in json.loads(done.stdout)["writes"]}
    assert {t: written.get(t) for t in EXPECTED_ROWS[Rules.PRIVACY]} == EXPECTED_ROWS[Rules.PRIVACY]


def test_forget_on_s3_leaves_no_object_naming_the_person(s3_run, tmp_path):
    """Last of the module's tests on its lake (it changes it): every object under the lake
    root, downloaded and decoded, names the person no more."""
    lake, _ = s3_run
    person = pick_person(lake)
    forget(lake, person["email"], pseudonym_key=KEY, progress=lambda _: None)
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="prod/"):
        for found in page.get("Contents", []):
            target = tmp_path / found["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(BUCKET, found["Key"], str(target))
    assert files_naming(tmp_path, person["email"], person["serial"]) == []
    assert len(lake.history("accelerometer_trusted")) == 1
