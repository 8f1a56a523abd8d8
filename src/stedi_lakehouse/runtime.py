"""Open a lake from settings: check what can be checked before the JVM starts, then start it."""

import shutil
from pathlib import Path

from stedi_lakehouse.contracts.tables import Dataset
from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.settings import Settings


def _is_local(root: str) -> bool:
    return "://" not in root or root.startswith("file:")


def check_local_root(root: str) -> None:
    if _is_local(root):
        path = Path(root.removeprefix("file:"))
        if not path.is_dir():
            raise LakeError(f"lake root {path} does not exist (or is not a folder)")


def open_lake(settings: Settings):
    """A `Lake` on a fresh or existing SparkSession for the configured lake root."""
    root = settings.require_lake_root()
    check_local_root(root)
    from stedi_lakehouse.io import Lake  # starts nothing by itself, but imports pyspark
    from stedi_lakehouse.session import build_session

    lake = Lake(build_session(settings, root), root, settings.catalog.database)
    lake.check_root()
    return lake


def land_files(source: Path, lake_root: str) -> dict[str, int]:
    """Deliver JSON-lines files from `source/<dataset>/` into `<lake root>/landing/<dataset>/`,
    keeping sub-folders; returns the number of files per dataset."""
    if not _is_local(lake_root):
        raise LakeError("land copies into local lakes only; upload to S3 with your S3 tooling")
    if not source.is_dir():
        raise LakeError(f"source folder {source} does not exist")
    found = {d: sorted((source / d).rglob("*.json")) for d in Dataset if (source / d).is_dir()}
    if not found:
        names = ", ".join(f"{d}/" for d in Dataset)
        raise LakeError(f"{source} has none of the dataset folders {names}")
    landing = Path(lake_root.removeprefix("file:")) / "landing"
    for dataset, files in found.items():
        for file in files:
            target = landing / dataset / file.relative_to(source / dataset)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
    return {str(d): len(files) for d, files in found.items()}
