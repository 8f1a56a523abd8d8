"""Two writers on an S3 lake cannot interleave: the lease (`lease.py`) against the S3 server on
loopback, held by real processes: of writers started together one wins and the others are told
who holds it; a dead holder's lease is taken over once expired; a holder whose lease was taken
stops; every writing command refuses while another holds it."""

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

from stedi_lakehouse.lake.lease import LOST_EXIT, split_s3
from tests.helpers import ROOT

pytestmark = pytest.mark.system  # processes of their own (CLI runs, JVMs, servers)

CLI = str(Path(sys.executable).parent / "stedi-lake")
HOLD = """
import sys, time
from stedi_lakehouse.lake import lease
from stedi_lakehouse.errors import LakeError

try:
    lease.take(sys.argv[1], seconds=float(sys.argv[2]))
except LakeError as error:
    print("refused:", error, flush=True)
    sys.exit(3)
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


@pytest.fixture
def root(s3_endpoint) -> str:
    bucket = f"lease-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/lake one"


def holder(root: str, *, seconds: float = 30, hold: float = 5) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, root, str(seconds), str(hold)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lease_object(root: str) -> dict:
    bucket, prefix = split_s3(root)
    return boto3.client("s3").get_object(Bucket=bucket, Key=f"{prefix}_lock")


def test_of_writers_started_together_one_holds_the_lake(root):
    writers = [holder(root, hold=4) for _ in range(4)]
    outputs = [w.communicate(timeout=60) for w in writers]
    held = [out for out, _ in outputs if out.startswith("held")]
    refused = [out for out, _ in outputs if out.startswith("refused")]
    assert len(held) == 1 and len(refused) == 3, outputs
    assert all("is in use by" in out and "pid" in out for out in refused)
    # released at exit: the next writer takes it at once
    after = holder(root, hold=0)
    assert after.communicate(timeout=60)[0].startswith("held")


def test_a_dead_holders_lease_is_taken_over_once_expired(root):
    dead = holder(root, seconds=8, hold=60)
    assert dead.stdout.readline().startswith("held")
    dead.kill()  # no release: its lease stays until it expires
    dead.wait()
    early = holder(root, hold=0)
    assert early.communicate(timeout=60)[0].startswith("refused")
    time.sleep(9)
    late = holder(root, hold=0)
    assert late.communicate(timeout=60)[0].startswith("held")


def test_a_holder_whose_lease_was_taken_stops(root):
    alive = holder(root, seconds=2, hold=30)
    assert alive.stdout.readline().startswith("held")
    bucket, prefix = split_s3(root)
    body = json.dumps({"holder": "another writer", "lease_seconds": 60})
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}_lock", Body=body)
    _, err = alive.communicate(timeout=30)
    assert alive.returncode == LOST_EXIT
    assert err.strip().splitlines()[-1].startswith("error: lost the lease of lake")
    assert json.loads(lease_object(root)["Body"].read())["holder"] == "another writer"


@pytest.mark.parametrize(
    "command",
    [["run"], ["maintain"], ["forget", "--email", "someone@example.com"], ["watch"]],
    ids=lambda c: c[0],
)
def test_every_writing_command_refuses_while_another_holds_the_lake(root, command):
    busy = holder(root, hold=60)
    try:
        assert busy.stdout.readline().startswith("held")
        done = subprocess.run(
            [CLI, *command, "--profile", "test", "--lake-root", root],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: lake s3://"), done.stderr
        assert "is in use by" in lines[0] and "pid" in lines[0]
    finally:
        busy.kill()
        busy.wait()
