"""A warm lake server: Spark's own Spark Connect server, started for one lake.

`start` launches `python -m stedi_lakehouse.lake.server` detached; that process opens the lake as
any command does (`open_lake`: the lake's lock, the one session factory, Delta, the catalog)
with Spark Connect's plugin added, bound to loopback on a free port and requiring a random
token. Once it answers, its address is in `<lake>/_server/address` (mode 0600): commands find
it there and run as thin Spark Connect clients. The server holds the lake's lock (its pid is
in `_lock` and in the address) until it stops; a server that died is found out by its pid and
by the lock being free, and its address file removed.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from stedi_lakehouse.errors import LakeError, first_line
from stedi_lakehouse.lake.layout import (
    LOCK_FILE,
    SERVER_DIR,
    WRITER_LOCK,
    is_local_path,
    local_path,
    make_private_folder,
)

TOKEN_ENV = "SPARK_CONNECT_AUTHENTICATE_TOKEN"
LOOPBACK = "127.0.0.1"
PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
SERVICE = "org.apache.spark.sql.connect.service.SparkConnectService$"
ADDRESS_FILE = "address"
LOG_FILE = "server.log"
MODULE = "stedi_lakehouse.lake.server"
START_SECONDS = 240.0
STOP_SECONDS = 60.0
JVM_CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Address:
    """Where a running server answers, the token it requires and the process serving it."""

    host: str
    port: int
    token: str
    pid: int
    lake_root: str
    started: float

    @property
    def url(self) -> str:
        """The Spark Connect URL with the token, as `SparkSession.builder.remote` takes it.
        The client sends a token over an unencrypted channel only to `localhost`."""
        return f"sc://{self.host}:{self.port}/;token={self.token}"

    @property
    def shown(self) -> str:
        return f"sc://{self.host}:{self.port}"


def state_dir(lake_root: str) -> Path:
    """The server's private folder: `_server` under a local lake; for an s3:// lake, one per
    lake under the user's cache folder."""
    if is_local_path(lake_root):
        return local_path(lake_root).resolve() / SERVER_DIR
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(lake_root.rstrip("/").encode()).hexdigest()[:16]
    return cache / "stedi-lakehouse" / "servers" / digest


def log_path(lake_root: str) -> Path:
    return state_dir(lake_root) / LOG_FILE


def _write_private(path: Path, text: str) -> None:
    """Write `path` whole, readable by its owner only from its first byte."""
    make_private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(temporary, path)


def read_address(lake_root: str) -> Address | None:
    path = state_dir(lake_root) / ADDRESS_FILE
    try:
        return Address(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    """Whether process `pid` exists and has not ended (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _is_server(pid: int) -> bool:
    """Whether `pid` is a live server process of this package (not another process that
    was given the pid of a dead one)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return MODULE.encode() in command and _alive(pid)


def _lock_is_free(lake_root: str) -> bool:
    """Whether no process holds the local lake's lock (an s3:// lake has none: not known)."""
    if not is_local_path(lake_root):
        return False
    path = local_path(lake_root) / LOCK_FILE
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing releases the lock, if taken
    return True


@dataclass(frozen=True)
class ServerState:
    address: Address | None  # the running server's; None when none runs
    died: Address | None = None  # a server found dead (its address file now removed)


def running(lake_root: str) -> ServerState:
    """The lake's server, if one runs; a dead one's address file is removed and reported."""
    address = read_address(lake_root)
    if address is None:
        return ServerState(None)
    if _is_server(address.pid) and not _lock_is_free(lake_root):
        return ServerState(address)
    (state_dir(lake_root) / ADDRESS_FILE).unlink(missing_ok=True)
    return ServerState(None, died=address)


def ping(address: Address) -> float:
    """Seconds a trivial query takes through the server (a new client session); a server
    that does not answer is a LakeError within seconds. The Connect session class itself:
    pyspark's builder would switch this whole process to Connect mode."""
    from pyspark.errors import PySparkException
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    from stedi_lakehouse.lake.retries import quickly

    started = time.monotonic()
    spark = ConnectSession.builder.remote(address.url).create()
    spark.client.set_retry_policies(quickly())
    try:
        spark.range(1).collect()
    except PySparkException as exc:
        said = first_line(exc)
        raise LakeError(f"the server (pid {address.pid}) does not answer: {said}") from None
    finally:
        spark.client.close()  # the session ends by the server's idle timeout
    return time.monotonic() - started


def _answers(port: int) -> bool:
    """Whether something accepts connections on the loopback `port` (the server's JVM)."""
    try:
        socket.create_connection((LOOPBACK, port), timeout=5).close()
    except OSError:
        return False
    return True


def _log_tail(path: Path, since: int) -> str:
    """The last meaningful lines the server wrote to its log after offset `since`."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    said = [line.strip() for line in lines if line.strip().startswith(("error:", "Spark did"))]
    return said[-1] if said else (lines[-1].strip() if lines else "")


def start(lake_root: str, *, profile: str | None = None) -> Address:
    """Start the lake's server and return its address once it answers."""
    if not is_local_path(lake_root):
        raise LakeError(
            "a lake server serves a local lake; an s3:// lake runs in-process, or through a "
            "Spark Connect endpoint given with --remote (its address stays off the bucket)"
        )
    root = str(local_path(lake_root).resolve())
    if not Path(root).is_dir():
        raise LakeError(f"lake root {root} does not exist (or is not a folder)")
    state = running(root)
    if state.address is not None:
        raise LakeError(f"a server already runs for {root}: {state.address.shown}")
    log = log_path(root)
    make_private_folder(log.parent)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    since = os.fstat(fd).st_size
    command = [sys.executable, "-m", MODULE, "--lake-root", root]
    if profile:
        command += ["--profile", profile]
    env = {**os.environ, TOKEN_ENV: secrets.token_urlsafe(32)}
    with os.fdopen(fd, "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,  # not ended by the terminal's Ctrl-C
        )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        address = read_address(root)
        if address is not None and address.pid == process.pid:
            ping(address)
            return address
        if process.poll() is not None:
            said = _log_tail(log, since) or f"exit code {process.returncode}"
            raise LakeError(f"the server did not start: {said} (its log: {log})")
        time.sleep(0.25)
    process.terminate()
    raise LakeError(f"the server did not answer within {START_SECONDS:g} s (its log: {log})")


def stop(lake_root: str) -> ServerState:
    """Stop the lake's server (SIGTERM: it stops Spark and removes its address file); what
    was found. A server that does not end in time is killed."""
    root = str(local_path(lake_root).resolve()) if is_local_path(lake_root) else lake_root
    state = running(root)
    if state.address is None:
        return state
    pid = state.address.pid
    os.kill(pid, signal.SIGTERM)
    # An ending process's command line reads empty before its files (the lock) are closed:
    # done when it has ended and the lock is free.
    deadline = time.monotonic() + STOP_SECONDS
    while (_alive(pid) or not _lock_is_free(root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)  # its session: the Python process and its JVM
    (state_dir(root) / ADDRESS_FILE).unlink(missing_ok=True)
    return state


def serve(lake_root: str, profile: str | None) -> bool:
    """The server process: open the lake with Spark Connect's plugin, publish the address,
    serve until SIGTERM or SIGINT (True) or until its JVM is gone (False), then stop Spark and
    remove the address."""
    from stedi_lakehouse.lake.open import open_lake
    from stedi_lakehouse.settings import load_settings

    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise LakeError(f"{TOKEN_ENV} is not set: start the server with `stedi-lake server start`")
    settings = load_settings(profile, lake_root=lake_root).model_copy(update={"remote": None})
    connect = {
        "spark.plugins": PLUGIN,
        "spark.connect.grpc.binding.address": LOOPBACK,
        "spark.connect.grpc.binding.port": "0",  # a free port, read back below
    }
    spark_settings = settings.spark.model_copy(
        update={
            "conf": {**settings.spark.conf, **connect},
            "jvm_log": log_path(lake_root),
            "jit": "full",  # a long-lived JVM: the optimising compiler pays off
        }
    )
    settings = settings.model_copy(update={"spark": spark_settings})
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    lake = open_lake(settings)  # its metastore holds every table (`Lake.adopt_metastore`)
    # a writer killed while an earlier server ran has nothing left running in this one
    (state_dir(lake_root) / WRITER_LOCK).unlink(missing_ok=True)
    try:
        port = int(getattr(getattr(lake.spark._jvm, SERVICE), "MODULE$").localPort())
        address = Address("localhost", port, token, os.getpid(), lake.root, time.time())
        _write_private(state_dir(lake_root) / ADDRESS_FILE, json.dumps(asdict(address)))
        print(f"serving {lake.root} at {address.shown} (pid {os.getpid()})", flush=True)
        # a JVM that died (killed for memory, say) would leave a server no client can reach
        while not stopping.wait(JVM_CHECK_SECONDS):
            if not _answers(port):
                print(
                    "error: the server's JVM ended (killed or crashed); the server stops",
                    flush=True,
                )
                return False
    finally:
        (state_dir(lake_root) / ADDRESS_FILE).unlink(missing_ok=True)
        with contextlib.suppress(Exception):  # a JVM already gone has nothing to stop
            lake.spark.stop()
        print("stopped", flush=True)
    return True


def main(argv: list[str]) -> int:
    import argparse

    from stedi_lakehouse.errors import StediError

    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--lake-root", required=True)
    parser.add_argument("--profile")
    args = parser.parse_args(argv)
    try:
        return 0 if serve(args.lake_root, args.profile) else 1
    except StediError as exc:
        print(f"error: {exc}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
