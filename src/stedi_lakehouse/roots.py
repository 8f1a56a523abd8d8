"""Lake roots: a local folder (optionally `file:`) or a URI such as `s3://bucket/prefix`.
No Spark here, so the CLI can reason about roots before (or without) starting the JVM."""

from pathlib import Path


def is_local_path(lake_root: str) -> bool:
    return "://" not in lake_root or lake_root.startswith("file:")


def local_path(lake_root: str) -> Path:
    """The folder of a local lake root."""
    return Path(lake_root.removeprefix("file:"))
