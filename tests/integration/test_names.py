"""Names as people make them: spaces, '%', '+', brackets, braces and non-ASCII letters in
folder and file names, on a local lake and on S3; other files are listed, never read in
silence."""

import json
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.lake.layout import NAMES_A_PERSON
from stedi_lakehouse.lake.tables import Lake
from stedi_lakehouse.pipeline import Stages
from stedi_lakehouse.presets import Rules
from tests.helpers import KEY, new_lake, snapshot, versions

READING = {"user": "Larry.Clayton@test.com", "x": 1.0, "y": 2.0, "z": 3.0}
# each file holds one reading of its own millisecond; "part-[12].json" is also a glob pattern
# that would match "part-1.json" and "part-2.json"
ODD = [
    "new file.json",
    "part-1.json",
    "part-2.json",
    "part-[12].json",
    "{a,b} 50% é+ü.json",
    "dossier d'été [2022]/a*b?.json",
    "gz folder/readings.json.gz",
]
SKIPPED = {
    "UPPER.JSON": "not *.json or *.json.gz",
    "lines.jsonl": "not *.json or *.json.gz",
    "notes.txt": "not *.json or *.json.gz",
    ".hidden.json": "a hidden or temporary name (a file being written)",
    "_partial.json": "a hidden or temporary name (a file being written)",
    "upload.json.tmp": "a hidden or temporary name (a file being written)",
    "copy.json._COPYING_": "a hidden or temporary name (a file being written)",
    "_tmp/inside.json": "a hidden or temporary name (a file being written)",
    "kim@test.com.json": NAMES_A_PERSON,
    "kim@test.com/readings.json.gz": NAMES_A_PERSON,
}


def contents() -> dict[str, bytes]:
    import gzip

    files = {}
    for i, name in enumerate([*ODD, *SKIPPED]):
        line = json.dumps(READING | {"timestamp": 1655564000000 + i}).encode() + b"\n"
        files[name] = gzip.compress(line) if name.endswith(".gz") else line
    return files


def source_files(lake: Lake) -> list[str]:
    rows = lake.read("accelerometer_landing").select("source_file")
    return sorted(r[0] for r in rows.collect() if r[0].startswith("landing/accelerometer/new/"))


def expected() -> list[str]:
    return sorted(f"landing/accelerometer/new/{name}" for name in ODD)


def test_odd_names_are_read_once_under_their_real_names(spark, test_settings, tmp_path):
    lake = new_lake(spark, test_settings, tmp_path / "a lake [test] é")
    for name, data in contents().items():
        target = Path(lake.root) / "landing" / "accelerometer" / "new" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    stages = Stages(lake, rules=Rules.PRIVACY)
    report = stages.trusted().merge(stages.curated(pseudonym_key=KEY))
    assert source_files(lake) == expected()
    assert sorted(p for p in stages.processed("trusted") if "/new/" in p) == expected()
    assert report.skipped == {f"landing/accelerometer/new/{n}": w for n, w in SKIPPED.items()}
    before, tables = versions(lake), snapshot(lake)
    again = Stages(lake, rules=Rules.PRIVACY)
    assert again.trusted().merge(again.curated(pseudonym_key=KEY)).writes == []
    assert versions(lake) == before and snapshot(lake) == tables


def test_the_run_lists_the_files_it_does_not_read(spark, tmp_path):
    root = tmp_path / "lake"
    for dataset in ("customer", "accelerometer", "step_trainer"):
        (root / "landing" / dataset).mkdir(parents=True)
    (root / "landing" / "accelerometer" / "UPPER.JSON").write_text("{}\n")
    result = CliRunner().invoke(
        app, ["run", "--lake-root", str(root)], env={"STEDI_PROFILE": "test"}
    )
    assert result.exit_code == 0, result.output
    assert "landing/accelerometer/UPPER.JSON: not *.json or *.json.gz" in result.stdout


@pytest.fixture(scope="module")
def bucket(s3_endpoint):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="odd-names")
    return s3


def test_odd_names_on_s3(spark, test_settings, bucket, tmp_path):
    source = tmp_path / "delivery"
    for name, data in contents().items():
        target = source / "accelerometer" / "new" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for dataset in ("customer", "step_trainer"):
        (source / dataset).mkdir()
        (source / dataset / "empty.json").write_text("")
    root = "s3://odd-names/lake é"
    env = {"STEDI_PROFILE": "test"}
    landed = CliRunner().invoke(app, ["land", str(source), "--lake-root", root], env=env)
    assert landed.exit_code == 0, landed.output
    keys = {o["Key"] for o in bucket.list_objects_v2(Bucket="odd-names")["Contents"]}
    assert {f"lake é/landing/accelerometer/new/{n}" for n in ODD} <= keys
    lake = Lake(spark, root, test_settings.catalog.database)
    stages = Stages(lake, rules=Rules.PRIVACY)
    stages.trusted()
    assert source_files(lake) == expected()
