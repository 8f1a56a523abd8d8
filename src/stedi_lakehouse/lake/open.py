"""Open a lake from settings: check what can be checked before the JVM starts, then start it."""

import atexit
import contextlib
import fcntl
import os
import shutil
import signal
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from stedi_lakehouse.contracts.tables import Dataset
from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.lake.layout import (
    LINKED,
    LOCK_FILE,
    SERVER_DIR,
    WRITER_LOCK,
    is_local_path,
    local_path,
    make_private_folder,
    normalise_root,
    skipped_because,
)
from stedi_lakehouse.lake.storage import Storage
from stedi_lakehouse.settings import Settings

if TYPE_CHECKING:
    from stedi_lakehouse.lake.lease import Lease


def check_local_root(root: str) -> None:
    if is_local_path(root):
        path = local_path(root)
        if not path.is_dir():
            raise LakeError(f"lake root {path} does not exist (or is not a folder)")


_held: dict[str, int] = {}  # lake root -> open descriptor of its lock, held until exit
_leases: dict[str, "Lease"] = {}  # S3 lake root -> its lease, held until exit


def lock_lake(root: str, *, endpoint: str | None = None) -> None:
    """Hold `<root>/_lock` until this process ends (a local lake: one process at a time, as
    its embedded catalog and Delta's local commits require; an S3 lake: one writer, by lease,
    see `lease`). Another process holding it is a LakeError naming it; a local lock dies with
    its holder, even on kill -9."""
    if root in _held or root in _leases:
        return
    if not is_local_path(root):
        from stedi_lakehouse.lake import lease

        _leases[root] = lease.take(root, endpoint=endpoint)
        return
    _held[root], _ = _flock(local_path(root) / LOCK_FILE, "in use by another stedi-lake process")


def lock_served_writer(root: str, *, endpoint: str | None = None) -> None:
    """Hold, until this process ends, the right to write a lake through its server: the
    server holds `_lock` for all its clients, so two writing commands (two `run`s, a `run`
    and a `maintain`) would otherwise interleave their commits. An S3 lake's lease is taken
    by the command itself, as in-process.

    The lock file keeps its holder's pid until the holder exits cleanly. Found there by the
    next writer, the holder was killed, and what it had sent may still be running in the
    server: that writer is refused until a new server starts (which empties the file)."""
    if not is_local_path(root):
        lock_lake(root, endpoint=endpoint)
        return
    key = f"{root} (served)"
    if key in _held:
        return
    folder = local_path(root) / SERVER_DIR
    make_private_folder(folder)
    fd, killed = _flock(
        folder / WRITER_LOCK, "being written through its server by another stedi-lake command"
    )
    if killed:
        _write_holder(fd, killed)  # kept for the writers after this one
        os.close(fd)
        raise LakeError(
            f"the last command writing lake {root} through its server (pid {killed}) was "
            "killed, and what it had sent may still be running there: restart the server "
            "(`stedi-lake server stop`, then `server start`) before writing; an endpoint of "
            f"your own: restart it, then delete {folder / WRITER_LOCK}"
        )
    _held[key] = fd
    atexit.register(_write_holder, fd, "")  # a clean exit


def _flock(path: Path, busy: str) -> tuple[int, str]:
    """An open descriptor of `path` holding its exclusive lock, which dies with this process
    (even on kill -9), and the pid the file held before (its last holder's, if that did not
    clear it); held by another process: a LakeError naming its pid."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
        os.close(fd)
        lake = path.parent if path.name == LOCK_FILE else path.parent.parent
        raise LakeError(
            f"lake {lake} is {busy} (pid {holder}): try again when it has finished"
        ) from None
    before = os.read(fd, 64).decode(errors="replace").strip()
    _write_holder(fd, str(os.getpid()))
    return fd, before


def _write_holder(fd: int, pid: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, pid.encode(), 0)


# Below this much new landing data a run starts its JVM for quick start-up (settings: spark.jit).
QUICK_RUN_BYTES = 64 * 2**20
BOOKMARKS_LOG = "delta/system/processed_files/_delta_log"


def new_landing_bytes(root: str) -> int | None:
    """Bytes of the landing files that arrived (inode change time) after the last bookmark
    commit of a local lake: an estimate of a run's work made before the JVM starts. None when
    unknown (not a local lake, no bookmark yet)."""
    if not is_local_path(root):
        return None
    try:
        commits = list((local_path(root) / BOOKMARKS_LOG).glob("*.json"))
        if not commits:
            return None
        since = max(c.stat().st_mtime for c in commits)
        files = (local_path(root) / "landing").rglob("*.json")
        return sum(s.st_size for s in map(os.stat, files) if s.st_ctime > since)
    except OSError:
        return None


def with_jit_for(settings: Settings, work: int | None) -> Settings:
    """Settings whose `spark.jit` is decided: `auto` is quick for a known small amount of work
    (bytes of new input), full otherwise."""
    if settings.spark.jit != "auto":
        return settings
    quick = work is not None and work < QUICK_RUN_BYTES
    spark = settings.spark.model_copy(update={"jit": "quick" if quick else "full"})
    return settings.model_copy(update={"spark": spark})


def served_at(settings: Settings, root: str) -> str | None:
    """The Spark Connect URL a command runs through: the settings' `remote`, else the lake's
    running server's (which holds the lake's lock for its clients); None: run in-process."""
    if settings.remote:
        return settings.remote
    from stedi_lakehouse.lake.server import running

    address = running(root).address if is_local_path(root) else None
    return address.url if address else None


def open_lake(
    settings: Settings,
    *,
    must_exist: bool = True,
    work: int | None = None,
    writes: bool = True,
):
    """A `Lake` on a fresh or existing SparkSession for the configured lake root, which this
    process then holds (see `lock_lake`: always a local lake, an S3 lake when the command
    `writes`); or on a Spark Connect session (see `served_at`). `work`: the bytes the command
    will process, if known (a small amount starts the JVM for quick start-up)."""
    root = settings.require_lake_root()
    settings = with_jit_for(settings, work)
    if must_exist:
        check_local_root(root)
    remote = served_at(settings, root)
    if must_exist and remote is None and (writes or is_local_path(root)):
        lock_lake(root)
    elif must_exist and remote is not None and writes:
        lock_served_writer(root, endpoint=remote)
    from stedi_lakehouse.lake.session import build_session, remote_session
    from stedi_lakehouse.lake.tables import Lake  # starts nothing by itself, but imports pyspark

    if remote:
        spark = remote_session(remote, settings, lake_sql=settings.remote is not None)
        if must_exist and writes:
            _stop_served_work_when_stopped(spark)
            if root in _leases:
                _settle_lease(spark, root, remote)
    else:
        spark = build_session(settings, root)
        _end_at_once_when_stopped(writes=must_exist and writes)
    lake = Lake(spark, root, settings.catalog.database)
    if must_exist:
        lake.check_root()
    # in-process: before anything boots the metastore; through the lake's own server: a
    # table whose registration a stopped command never sent (see `Catalog.embedded`)
    lake.adopt_metastore()
    return lake


def files_to_land(source: Path) -> tuple[dict[Dataset, list[Path]], dict[str, str]]:
    """The landing files under `source/<dataset>/` (what a run reads: see `skipped_because`),
    per dataset found; and the other files there (`<dataset>/<path>`), with why each is left."""
    if not source.is_dir():
        said = (
            "is a file: give the folder holding <dataset>/" if source.exists() else "does not exist"
        )
        raise LakeError(f"source folder {source} {said}")
    found: dict[Dataset, list[Path]] = {}
    skipped: dict[str, str] = {}
    for d in (d for d in Dataset if (source / d).is_dir()):
        found[d] = []
        for file in sorted((source / d).rglob("*")):  # not into linked folders
            name = file.relative_to(source / d).as_posix()
            if file.is_symlink():
                skipped[f"{d}/{name}"] = LINKED
            elif not file.is_file():
                continue
            elif why := skipped_because(name):
                skipped[f"{d}/{name}"] = why
            else:
                found[d].append(file)
    if not found:
        names = ", ".join(f"{d}/" for d in Dataset)
        raise LakeError(f"{source} has none of the dataset folders {names}")
    return found, skipped


def land_files(source: Path, lake_root: str) -> tuple[dict[str, int], dict[str, str]]:
    """Deliver JSON-lines files from `source/<dataset>/` into `<lake root>/landing/<dataset>/`,
    keeping sub-folders; returns the number of files per dataset, and the files left with why
    (`files_to_land`). A local lake gets file copies, each renamed into place once whole; an S3
    lake gets objects, each whole once uploaded."""
    found, skipped = files_to_land(source)
    storage = Storage(normalise_root(lake_root))
    if storage.local:
        make_private_folder(local_path(lake_root))
    for dataset, files in found.items():
        for file in files:
            relative = f"landing/{dataset}/{file.relative_to(source / dataset).as_posix()}"
            if storage.local:
                target = local_path(lake_root) / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                # under a hidden name until whole: a run never reads a half-copied file
                partial = target.with_name(f".{target.name}.landing")
                shutil.copyfile(file, partial)
                os.replace(partial, target)
            else:
                storage.put(file, relative)
    return {str(d): len(files) for d, files in found.items()}, skipped


def _settle_lease(spark, root: str, url: str) -> None:
    """Name this writer's endpoint session in the S3 lake's lease and stop what writers
    killed before it left running there (see `lease`)."""
    from stedi_lakehouse.lake import lease
    from stedi_lakehouse.lake.files import s3_client
    from stedi_lakehouse.lake.session import stop_session

    session = {"endpoint": lease.endpoint_of(url), "session_id": spark.session_id}
    lease.settle(_leases[root], s3_client(), session=session, stop=partial(stop_session, url))


STOPPED = "stopped: every commit made stays whole; the same command run again finishes the rest"


def _end_at_once_when_stopped(*, writes: bool) -> None:
    """Ctrl-C or SIGTERM on an in-process command ends it at once with one line, as a kill
    would (a run, or a forget, cut short is finished by the same command). PySpark's own
    handler cancels the jobs through the gateway the interrupted call is using, and the
    command would end in pages of py4j errors and a failed run record."""
    if threading.current_thread() is not threading.main_thread():
        return
    # imported now: an import inside the handler could wait on a lock the main thread holds
    from stedi_lakehouse.lake import lease
    from stedi_lakehouse.lake.session import end_jvm

    def stop(signum, _frame) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # Ctrl-C pressed again: still one line
        os.write(2, f"{STOPPED if writes else 'stopped'}\n".encode())
        with contextlib.suppress(Exception):
            end_jvm()  # first: nothing it was committing lands after the lock is free
        for held in _leases.values():
            with contextlib.suppress(Exception):  # it expires anyway
                lease.release(held)
        # ended by the signal itself, as shells and service managers expect of a stopped
        # command (a local lock dies with the process)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


def _stop_served_work_when_stopped(spark) -> None:
    """Ctrl-C or SIGTERM on a command writing through a server first stops its operations
    there: the server would otherwise go on committing them after the command ended, beside
    the next writer. (A command killed with SIGKILL cannot: see docs/server.md.)"""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, _frame) -> None:
        with contextlib.suppress(Exception):  # a server already gone has nothing running
            spark.interruptAll()
        os.write(2, f"{STOPPED}\n".encode())
        raise SystemExit(128 + signum)  # a clean exit: the writer's lock says so

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
