"""The lake server (server.py) as real processes: one server for the module, on a lake landed
from the sample, which `run` builds through it, compared with the suite's run of the sample in
process (whose session also gives the in-process answers). The rest needs no JVM: a stand-in
process plays a server that dies."""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.errors import ENDPOINT_LOST, LakeError
from stedi_lakehouse.lake import server
from stedi_lakehouse.lake.open import STOPPED
from tests.helpers import ROOT, cli_env, files_naming, land_sample, start_server

pytestmark = pytest.mark.system  # processes of their own (CLI runs, JVMs, servers)

QUESTION = "SELECT count(*) AS customers, count(DISTINCT serialNumber) AS serials FROM {table}"
SQL = QUESTION.format(table="customer_trusted")


def _cli(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "stedi_lakehouse", *args]
    done = subprocess.run(command, env=cli_env() | env, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def built(sample_runs) -> tuple[Path, str]:
    """The sample run in this process (the suite's lake of it), and `SQL`'s answer in-process."""
    from stedi_lakehouse.lake.readers import open_if_present

    root = sample_runs().root
    runs = open_if_present(str(root), "runs").to_pyarrow_table()
    assert runs["outcome"].to_pylist() == ["succeeded"]  # one run, as `run` makes
    asked = CliRunner().invoke(app, ["query", SQL, "--lake-root", str(root), "--profile", "test"])
    assert asked.exit_code == 0, asked.output
    return root, asked.stdout


@pytest.fixture(scope="module")
def served_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served") / "lake"
    root.mkdir()
    land_sample(root)
    return root


RUN = ["run", "--profile", "test"]
# The served run compacts every table it leaves with more than one small file.
SMALL_FILES = 1
COMPACTING = {"STEDI_MAINTENANCE__SMALL_FILES": str(SMALL_FILES)}


@pytest.fixture(scope="module")
def killed_run(served_root) -> subprocess.CompletedProcess:
    """A `run` through a server of the lake killed (SIGKILL) right after its 7th commit, then
    the next `run` through the same server, which must be refused; the server then stops.
    Returns that refusal."""
    start_server(served_root)
    try:
        killed = subprocess.run(
            [sys.executable, "-m", "tests.killed_cli", "7", *RUN, "--lake-root", str(served_root)],
            cwd=ROOT,
            env=cli_env() | COMPACTING,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert killed.returncode == -9, killed.stderr[-2000:]
        return _cli(*RUN, "--lake-root", str(served_root), check=False, **COMPACTING)
    finally:
        server.stop(str(served_root))


@pytest.fixture(scope="module")
def served(served_root, killed_run):
    """The lake's server, started after the killed run's."""
    address = start_server(served_root)
    yield address
    server.stop(str(served_root))


@pytest.fixture(scope="module")
def served_run(served, served_root) -> subprocess.CompletedProcess:
    """`run` through the new server, which finishes the killed run's work."""
    return _cli(*RUN, "--lake-root", str(served_root), **COMPACTING)


def test_a_writer_after_a_killed_one_waits_for_a_new_server(killed_run, served_run):
    """What a killed writer had sent may still run in its server: the next writer is refused
    (one line, saying what to do) until a new server starts."""
    assert killed_run.returncode == 1
    assert killed_run.stderr.startswith("error:"), killed_run.stderr
    assert "was killed" in killed_run.stderr and "restart the server" in killed_run.stderr
    assert "Traceback" not in killed_run.stderr
    assert served_run.returncode == 0


# What differs between two lakes landed and run alike: run ids, check and processing times,
# and the landing files' versions (size and modification time of each lake's copy).
VOLATILE = ["run_id", "checked_at", "processed_at", "version"]


def _rows(root: Path, table: str) -> list[str] | None:
    """The table's rows as text, sorted, without `VOLATILE` columns; None: no such table."""
    from stedi_lakehouse.lake.readers import open_if_present

    delta = open_if_present(str(root), table)
    if delta is None:
        return None
    frame = delta.to_pyarrow_table().to_pandas()
    frame = frame.drop(columns=[c for c in VOLATILE if c in frame.columns])
    return sorted(map(str, frame.astype(str).values.tolist()))


def test_a_served_run_killed_then_rerun_builds_the_tables_an_in_process_run_builds(
    built, served_root, served_run
):
    from stedi_lakehouse.contracts.tables import CATALOGUE

    assert "rules: privacy" in served_run.stdout
    compared = [name for name in CATALOGUE if name != "runs"]  # one row of ids and times
    for name in compared:
        assert _rows(served_root, name) == _rows(built[0], name), name
    assert _rows(served_root, "customer_curated"), "nothing was built"


def test_a_run_through_the_server_compacts_the_tables_it_left_with_small_files(
    served_root, served_run
):
    """The rows are those of the run in-process, which compacts nothing (the test above)."""
    from stedi_lakehouse.contracts.tables import CATALOGUE, Table
    from stedi_lakehouse.lake.readers import open_if_present
    from stedi_lakehouse.lake.status import LakeLog

    compactions = LakeLog(str(served_root)).newest_runs(1)[0]["compactions"]
    assert {c["table"] for c in compactions} >= {"processed_files", "accelerometer_landing"}
    assert all(c["files_removed"] > c["files_added"] for c in compactions)
    assert "compacted small files: " in served_run.stdout
    for name in CATALOGUE:
        delta = open_if_present(str(served_root), name)
        files = 0 if delta is None else len(delta.file_uris())
        # the run's records are appended after its compaction
        assert files <= SMALL_FILES + (name in (Table.RUNS, Table.QUALITY)), name


def test_a_run_whose_server_stops_ends_with_one_line_and_the_next_run_finishes_it(built, tmp_path):
    """`server stop` while a `run` writes through it: the run ends with one line (not after
    the client's ten minutes of retries), frees the writer's lock, and a run through a new
    server builds what an in-process run builds."""
    from stedi_lakehouse.contracts.tables import CATALOGUE

    root = tmp_path / "lake"
    land_sample(root)
    start_server(root)
    try:
        running = subprocess.Popen(
            [sys.executable, "-m", "stedi_lakehouse", *RUN, "--lake-root", str(root)],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while not list(root.glob("delta/*/*/_delta_log/*.json")):  # its first commit
            assert running.poll() is None, running.communicate()
            time.sleep(0.1)
        time.sleep(2)  # results under way: closing them fails as the client exits
    finally:
        server.stop(str(root))
    _, said = running.communicate(timeout=120)
    assert running.returncode == 1
    # after the lines of the tables it had written, if any
    assert [line for line in said.splitlines() if not line.startswith("  ✓ ")] == [
        "error: " + ENDPOINT_LOST
    ], said
    start_server(root)
    try:
        _cli(*RUN, "--lake-root", str(root))  # not refused: the stopped run's writer left
    finally:
        server.stop(str(root))
    for name in [name for name in CATALOGUE if name != "runs"]:
        assert _rows(root, name) == _rows(built[0], name), name


def test_a_server_whose_metastore_is_new_registers_every_table(built, tmp_path):
    """A lake whose `_metastore` is gone (deleted, or a lake copied without it): the server
    registers every table as it starts, since commits that only add rows take the tables to
    be in its metastore; a query by name finds them."""
    root = tmp_path / "lake"
    shutil.copytree(built[0], root)
    shutil.rmtree(root / "_metastore", ignore_errors=True)
    start_server(root)
    try:
        asked = _cli("query", SQL, "--lake-root", str(root), "--profile", "test")
    finally:
        server.stop(str(root))
    assert asked.stdout == built[1]


def test_a_command_in_process_registers_every_table_its_metastore_lacks(built, tmp_path):
    """In-process, the same: a lake copied without `_metastore` (or whose folder was deleted)
    answers a query by name; and one moved with its `_metastore`, whose entries still point
    where it was, answers from where it is now."""
    root, moved = tmp_path / "lake", tmp_path / "moved"
    shutil.copytree(built[0], root, ignore=shutil.ignore_patterns("_metastore"))
    assert _cli("query", SQL, "--lake-root", str(root), "--profile", "test").stdout == built[1]
    shutil.copytree(root, moved)
    shutil.rmtree(root)
    asked = _cli("query", SQL, "--lake-root", str(moved), "--profile", "test")
    assert asked.stdout == built[1]


def test_a_table_made_behind_a_servers_back_is_registered_by_the_next_client(built, tmp_path):
    """A table whose registration never followed its making (a command stopped in between)
    while the lake's server runs: the next command through it registers it."""
    root = tmp_path / "lake"
    runs = Path("delta") / "system" / "runs"
    shutil.copytree(built[0], root, ignore=shutil.ignore_patterns("_metastore"))
    shutil.rmtree(root / runs)
    start_server(root)
    try:
        shutil.copytree(built[0] / runs, root / runs)
        asked = _cli(
            "query", "SELECT count(*) AS n FROM runs", "--lake-root", str(root), "--profile", "test"
        )
    finally:
        server.stop(str(root))
    assert re.search(r"│\s+1\s+│", asked.stdout), asked.stdout


def test_status_names_the_running_server(served_root, served):
    shown = CliRunner().invoke(app, ["server", "status", "--lake-root", str(served_root)])
    assert shown.exit_code == 0, shown.output
    assert f"running: sc://localhost:{served.port} (pid {served.pid}" in shown.output
    assert "answered in" in shown.output


def test_the_address_and_token_are_readable_by_the_owner_only(served_root, served):
    folder = server.state_dir(str(served_root))
    address = folder / server.ADDRESS_FILE
    assert stat.S_IMODE(address.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert json.loads(address.read_text())["token"] == served.token
    assert len(served.token) >= 32


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as the kernel lists them) of sockets listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            host, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(host)
    return found


def test_the_server_listens_on_loopback_only(served):
    hosts = _listening(served.port)
    assert hosts, f"nothing listens on port {served.port}"
    # 127.0.0.1 as IPv4, or as an IPv4-mapped IPv6 address (::ffff:127.0.0.1)
    assert all(h in ("0100007F", "0000000000000000FFFF00000100007F") for h in hosts), hosts


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_client_without_the_token_is_refused(served, token):
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    url = f"sc://localhost:{served.port}" + (f"/;token={token}" if token else "")
    spark = ConnectSession.builder.remote(url).create()
    with pytest.raises(SparkConnectGrpcException, match="UNAUTHENTICATED"):
        spark.range(1).collect()
    spark.client.close()


def test_query_through_the_server_answers_as_in_process(built, served_root, served, served_run):
    root, in_process = served_root, built[1]
    lock = (root / "_lock").read_text()
    through = _cli("query", SQL, "--lake-root", str(root), "--profile", "test")
    assert through.stdout == in_process
    assert "customers" in in_process
    assert (root / "_lock").read_text() == lock == str(served.pid)  # the server's, not taken


def test_query_goes_where_remote_points(served_root, served):
    """--remote wins over the lake's server: an endpoint that does not answer is an error."""
    root = served_root
    nowhere = _cli(
        "query", SQL, "--lake-root", str(root), "--remote", "sc://localhost:9", check=False
    )
    assert nowhere.returncode == 1
    assert "cannot reach the Spark Connect endpoint sc://localhost:9" in nowhere.stderr


HOLD_WRITER = """
import sys
from stedi_lakehouse.lake.open import lock_served_writer

lock_served_writer(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
"""


def test_two_commands_write_through_the_server_one_at_a_time(served_root, served, served_run):
    """The server holds the lake's lock for all its clients: a writing command holds the
    right to write through it, and a second one is refused while the first runs."""
    root = str(served_root)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, root],
        env=cli_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = _cli("run", "--lake-root", root, "--profile", "test", check=False)
        assert refused.returncode == 1
        assert "error:" in refused.stderr and f"(pid {holder.pid})" in refused.stderr
        assert "being written through its server" in refused.stderr
        read = _cli("query", SQL, "--lake-root", root, "--profile", "test", check=False)
        assert read.returncode == 0, read.stderr  # readers take no part in it
    finally:
        holder.communicate("", timeout=60)
    ran = _cli("run", "--lake-root", root, "--profile", "test", check=False)
    assert ran.returncode == 0, ran.stderr


WRITE_SLOWLY = """
import sys
from stedi_lakehouse.lake.open import open_lake
from stedi_lakehouse.settings import load_settings

root, target = sys.argv[1:]
lake = open_lake(load_settings("test", lake_root=root))  # a writing command, through the server
print("writing", flush=True)
slow = "SELECT reflect('java.lang.Thread', 'sleep', CAST(15000 AS BIGINT)) AS slept"
lake.spark.sql(slow).write.format("delta").save(target)
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_served_writer_stopped_stops_its_work_on_the_server(
    stop, served_root, served, served_run, tmp_path
):
    """The server runs a client's operations by itself: a writer stopped (Ctrl-C, SIGTERM)
    must stop them there, or they would commit after it ended, beside the next writer."""
    target = tmp_path / "written-after-the-stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITE_SLOWLY, str(served_root), str(target)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    time.sleep(3)  # the write is under way on the server
    writer.send_signal(stop)
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 128 + stop and stderr.splitlines()[-1] == STOPPED, stderr
    time.sleep(20)  # the write would have committed by now
    assert not list(target.glob("_delta_log/*.json")), "committed after the writer stopped"


def test_forget_through_the_server_erases_the_person_everywhere(served_root, served, served_run):
    """MERGE, VACUUM and the log purge run through the server; it then answers from the
    purged logs."""
    from stedi_lakehouse.lake.readers import open_if_present

    root = str(served_root)
    curated = open_if_present(root, "customer_curated")
    assert curated is not None
    emails = sorted(curated.to_pyarrow_table()["email"].to_pylist())
    person = emails[len(emails) // 2]
    assert files_naming(served_root, person), "the person was nowhere to begin with"
    forgot = _cli("forget", "--email", person.upper(), "--lake-root", root, "--profile", "test")
    assert "error" not in forgot.stderr
    assert files_naming(served_root, person) == []
    count = "SELECT count(*) AS people_left FROM customer_curated"
    asked = _cli("query", count, "--lake-root", root, "--profile", "test")
    assert re.search(rf"\b{len(emails) - 1}\b", asked.stdout), asked.stdout
    old = _cli(
        "query", f"{count} VERSION AS OF 0", "--lake-root", root, "--profile", "test", check=False
    )
    assert old.returncode == 1 and "error:" in old.stderr, old.stdout


def test_a_second_server_for_the_lake_is_refused(served_root, served):
    with pytest.raises(LakeError, match="a server already runs"):
        server.start(str(served_root), profile="test")


def test_stop_ends_the_server_and_frees_the_lake(served_root, served):
    root = str(served_root)
    stopped = CliRunner().invoke(app, ["server", "stop", "--lake-root", root])
    assert stopped.exit_code == 0, stopped.output
    assert f"stopped the server of {root} (pid {served.pid})" in stopped.output
    assert not (server.state_dir(root) / server.ADDRESS_FILE).exists()
    assert server._lock_is_free(root)
    for _ in range(100):  # its JVM ends when the server's Python process has
        if not _listening(served.port):
            break
        time.sleep(0.2)
    assert not _listening(served.port)
    shown = CliRunner().invoke(app, ["server", "status", "--lake-root", root])
    assert shown.exit_code == 1
    assert "no server runs" in shown.output
    assert "serving" in server.log_path(root).read_text()


HOLD_THE_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


def test_a_dead_server_is_found_and_its_files_removed(tmp_path):
    """A stand-in for a server (named like one, holding the lake's lock) is killed."""
    root = tmp_path / "lake"
    root.mkdir()
    stand_in = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(root / "_lock"), server.MODULE],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stand_in.stdout.readline().strip() == "locked"
        address = server.Address("localhost", 9, "t", stand_in.pid, str(root), time.time())
        server._write_private(
            server.state_dir(str(root)) / server.ADDRESS_FILE, json.dumps(address.__dict__)
        )
        assert server.running(str(root)).address == address
        os.kill(stand_in.pid, signal.SIGKILL)
        stand_in.wait()
        shown = CliRunner().invoke(app, ["server", "status", "--lake-root", str(root)])
    finally:
        stand_in.kill()
    assert shown.exit_code == 1
    assert f"the server (pid {stand_in.pid}) had died; its address file was removed" in (
        shown.output
    )
    assert not (server.state_dir(str(root)) / server.ADDRESS_FILE).exists()
    assert server.running(str(root)) == server.ServerState(None)


def test_a_server_whose_jvm_dies_stops_and_frees_the_lake(tmp_path):
    """A JVM killed under its server (for memory, say) leaves no server that only looks alive:
    the server notices, says so in its log, and ends, freeing the lake and its address."""
    root = tmp_path / "lake"
    root.mkdir()
    address = start_server(root)
    children = Path(f"/proc/{address.pid}/task/{address.pid}/children").read_text().split()
    jvm = [int(c) for c in children if Path(f"/proc/{c}/comm").read_text().strip() == "java"]
    assert len(jvm) == 1, children
    os.kill(jvm[0], signal.SIGKILL)
    began = time.monotonic()
    with pytest.raises(LakeError, match=rf"the server \(pid {address.pid}\) does not answer"):
        server.ping(address)  # what `server status` asks: an answer in seconds, not ten minutes
    assert time.monotonic() - began < 60
    for _ in range(150):
        if server.running(str(root)).address is None and server._lock_is_free(str(root)):
            break
        time.sleep(0.2)
    else:
        server.stop(str(root))
        pytest.fail("the server outlived its JVM")
    assert "error: the server's JVM ended" in server.log_path(str(root)).read_text()
    assert not (server.state_dir(str(root)) / server.ADDRESS_FILE).exists()


def test_a_live_process_that_is_not_a_server_is_not_taken_for_one(tmp_path):
    """A pid reused by another process (here: this one) after the server died."""
    root = tmp_path / "lake"
    root.mkdir()
    address = server.Address("localhost", 9, "t", os.getpid(), str(root), time.time())
    server._write_private(
        server.state_dir(str(root)) / server.ADDRESS_FILE, json.dumps(address.__dict__)
    )
    assert server.running(str(root)) == server.ServerState(None, died=address)
