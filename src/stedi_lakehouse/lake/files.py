"""The lake's files without a JVM: one Python file-system layer (Arrow's) for local folders and
S3 alike, so that the same code runs in-process and as a thin Spark Connect client (which has
no Hadoop file system to call).

S3 is reached with the settings S3A gets (session.py `s3a_options`): credentials from the
standard AWS chain, the region from AWS_REGION / AWS_DEFAULT_REGION, an S3-compatible endpoint
from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL with path-style access.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlparse

from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.lake.layout import is_local_path, local_path, s3_region_and_endpoint


@dataclass(frozen=True)
class FileInfo:
    path: str  # as given: under the lake root, in the root's own form (folder or s3:// URI)
    size: int
    modified_ms: int


def s3_options(environ: Mapping[str, str]) -> dict[str, object]:
    """Arrow's S3FileSystem options matching S3A's (see the module docstring)."""
    options: dict[str, object] = {}
    region, endpoint = s3_region_and_endpoint(environ)
    if region:
        options["region"] = region
    if endpoint:
        parsed = urlparse(endpoint)
        options["endpoint_override"] = parsed.netloc or endpoint
        options["scheme"] = parsed.scheme or "https"
        options["force_virtual_addressing"] = False  # path-style, as S3A is told
    return options


@lru_cache(maxsize=8)
def _s3(options: tuple[tuple[str, object], ...]):
    from pyarrow import fs

    return fs.S3FileSystem(**dict(options))


def file_system(path: str):
    """(Arrow file system serving `path`, `path` as that file system names it)."""
    from pyarrow import fs

    if is_local_path(path):
        return fs.LocalFileSystem(), str(local_path(path))
    parsed = urlparse(path)
    if parsed.scheme not in ("s3", "s3a"):
        raise LakeError(f"{path}: only local folders and s3:// URIs are served")
    options = tuple(sorted(s3_options(os.environ).items()))
    return _s3(options), f"{parsed.netloc}{parsed.path}".rstrip("/")


def _reached(path: str, error: OSError) -> LakeError:
    said = " ".join(str(error).split())[:200]
    return LakeError(f"cannot reach {path}: {said}")


def exists(path: str) -> bool:
    from pyarrow import fs

    store, where = file_system(path)
    try:
        return store.get_file_info(where).type != fs.FileType.NotFound
    except OSError as exc:
        raise _reached(path, exc) from None


def is_folder(path: str) -> bool:
    from pyarrow import fs

    store, where = file_system(path)
    return store.get_file_info(where).type == fs.FileType.Directory


def files_under(folder: str, *, recursive: bool = True) -> list[FileInfo]:
    """The files under `folder` (none if it does not exist), each named in the folder's form."""
    from pyarrow import fs

    store, where = file_system(folder)
    selector = fs.FileSelector(where, recursive=recursive, allow_not_found=True)
    try:
        infos = store.get_file_info(selector)
    except OSError as exc:
        raise _reached(folder, exc) from None
    base = folder.rstrip("/")
    return sorted(
        (
            FileInfo(
                f"{base}/{info.path[len(where) :].lstrip('/')}",
                int(info.size or 0),
                int((info.mtime_ns or 0) // 1_000_000),
            )
            for info in infos
            if info.type == fs.FileType.File
        ),
        key=lambda info: info.path,
    )


def file_info(path: str) -> FileInfo:
    """One file's size and modification time, as `files_under` gives them."""
    store, where = file_system(path)
    info = store.get_file_info(where)
    return FileInfo(path, int(info.size or 0), int((info.mtime_ns or 0) // 1_000_000))


def read_bytes(path: str) -> bytes | None:
    """The whole content of a file; None if there is none."""
    store, where = file_system(path)
    try:
        with store.open_input_stream(where) as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def delete(path: str) -> None:
    store, where = file_system(path)
    store.delete_file(where)
