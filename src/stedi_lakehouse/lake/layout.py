"""Lake roots: a local folder (optionally `file:`) or a URI such as `s3://bucket/prefix`; and
which names in a landing folder are landing files. No Spark here, so the CLI can reason about
roots and files before (or without) starting the JVM."""

from pathlib import Path


def is_local_path(lake_root: str) -> bool:
    return "://" not in lake_root or lake_root.startswith("file:")


def local_path(lake_root: str) -> Path:
    """The folder of a local lake root."""
    return Path(lake_root.removeprefix("file:"))


LANDING_SUFFIXES = (".json", ".json.gz")
NOT_LANDING = "not *.json or *.json.gz"
BEING_WRITTEN = "a hidden or temporary name (a file being written)"


def skipped_because(name: str) -> str | None:
    """Why a file under a landing folder (`name`: its path below the dataset's folder) is not
    read; None for a landing file. Names that tools give files while they write them (hidden,
    `_` first, `*.tmp`, `*._COPYING_`), in any folder of the path, are left until renamed."""
    parts = name.split("/")
    if any(p.startswith((".", "_")) for p in parts) or name.endswith((".tmp", "._COPYING_")):
        return BEING_WRITTEN
    return None if name.endswith(LANDING_SUFFIXES) else NOT_LANDING
