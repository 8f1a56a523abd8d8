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

from stedi_lakehouse.lake.lease import LOST_EXIT, endpoint_of, split_s3
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


# A writer through a Spark Connect endpoint, leasing for `seconds`; given `table`, it writes one
# there after its task has slept for `SLEEP_S` (an operation that outlives a killed writer).
SERVED_WRITER = """
import sys
from stedi_lakehouse.lake import lease, open as opening
from stedi_lakehouse.settings import load_settings

root, url, seconds, table, sleep = sys.argv[1], sys.argv[2], float(sys.argv[3]), *sys.argv[4:]
opening._leases[root] = lease.take(root, seconds=seconds, endpoint=url)
lake = opening.open_lake(load_settings("test", lake_root=root, remote=url))
print(lake.spark.session_id, flush=True)
if table:
    slow = lake.spark.range(1).selectExpr(f"reflect('java.lang.Thread', 'sleep', {sleep}L) AS x")
    slow.write.format("delta").save(table)
"""
SLEEP_S = 30


def served_writer(root: str, url: str, seconds: float, table: str = "") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SERVED_WRITER, root, url, str(seconds), table, str(SLEEP_S * 1000)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_served_writers_work_is_stopped_before_its_lease_is_taken_over(
    root, lake_server, tmp_path
):
    """Killed, a writer's operations go on in its endpoint and would commit beside the next
    writer. The lease names its session; who takes the lease over stops them first, through
    the same endpoint; a writer that cannot reach it (in-process) is refused."""
    table = tmp_path / "written-after-its-writer-died"
    killed = served_writer(root, lake_server, seconds=3, table=str(table))
    session = killed.stdout.readline().strip()
    started = time.monotonic()
    assert session, killed.communicate(timeout=30)
    time.sleep(1.5)  # its write is under way in the endpoint
    killed.kill()
    killed.wait()
    assert json.loads(lease_object(root)["Body"].read())["session"] == {
        "endpoint": endpoint_of(lake_server),
        "session_id": session,
    }
    time.sleep(3.5)  # its lease has expired
    in_process = holder(root, hold=0)
    said = in_process.communicate(timeout=60)[0]
    assert said.startswith("refused") and "died while writing through" in said, said
    taker = served_writer(root, lake_server, seconds=60)
    out, err = taker.communicate(timeout=120)
    assert taker.returncode == 0 and out.strip(), err[-2000:]
    assert time.monotonic() - started < SLEEP_S, "too slow to tell: the write may have ended"
    time.sleep(max(0.0, started + SLEEP_S + 5 - time.monotonic()))
    assert not list(table.glob("_delta_log/*.json")), "the dead writer's write committed"
    assert holder(root, hold=0).communicate(timeout=60)[0].startswith("held")
