"""Open a lake from settings: check what can be checked before the JVM starts, then start it."""

import fcntl
import os
import shutil
from pathlib import Path

from stedi_lakehouse.contracts.tables import Dataset
from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.roots import is_local_path, local_path
from stedi_lakehouse.settings import Settings


def check_local_root(root: str) -> None:
    if is_local_path(root):
        path = local_path(root)
        if not path.is_dir():
            raise LakeError(f"lake root {path} does not exist (or is not a folder)")


LOCK_FILE = "_lock"
_held: dict[str, int] = {}  # lake root -> open descriptor of its lock, held until exit


def lock_lake(root: str) -> None:
    """Hold `<root>/_lock` until this process ends (a local lake: one process at a time, as
    its embedded catalog and Delta's local commits require). Another process holding it is a
    LakeError naming it; the lock dies with its holder, even on kill -9."""
    if not is_local_path(root) or root in _held:
        return
    path = local_path(root) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise LakeError(
            f"lake {local_path(root)} is in use by another stedi-lake process (pid {holder}): "
            "try again when it has finished"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _held[root] = fd


def open_lake(settings: Settings, *, must_exist: bool = True):
    """A `Lake` on a fresh or existing SparkSession for the configured lake root, which this
    process then holds (see `lock_lake`)."""
    root = settings.require_lake_root()
    if must_exist:
        check_local_root(root)
        lock_lake(root)
    from stedi_lakehouse.io import Lake  # starts nothing by itself, but imports pyspark
    from stedi_lakehouse.session import build_session

    lake = Lake(build_session(settings, root), root, settings.catalog.database)
    if must_exist:
        lake.check_root()
    return lake


def files_to_land(source: Path) -> dict[Dataset, list[Path]]:
    """The JSON-lines files under `source/<dataset>/`, per dataset found."""
    if not source.is_dir():
        raise LakeError(f"source folder {source} does not exist")
    found = {d: sorted((source / d).rglob("*.json")) for d in Dataset if (source / d).is_dir()}
    if not found:
        names = ", ".join(f"{d}/" for d in Dataset)
        raise LakeError(f"{source} has none of the dataset folders {names}")
    return found


def land_files(source: Path, lake_root: str, *, lake=None) -> dict[str, int]:
    """Deliver JSON-lines files from `source/<dataset>/` into `<lake root>/landing/<dataset>/`,
    keeping sub-folders; returns the number of files per dataset. A local lake gets plain file
    copies; any other (s3://) is written through `lake` (Hadoop's file system, S3A)."""
    found = files_to_land(source)
    for dataset, files in found.items():
        for file in files:
            relative = f"landing/{dataset}/{file.relative_to(source / dataset).as_posix()}"
            if is_local_path(lake_root):
                target = local_path(lake_root) / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
            else:
                lake.put(file, relative)
    return {str(d): len(files) for d, files in found.items()}
