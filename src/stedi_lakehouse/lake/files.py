"""The lake's files without a JVM: one Python layer for local folders (Arrow's file system) and
S3 (boto3, which also gives each object's ETag), so that the same code runs in-process and as
a thin Spark Connect client (which has no Hadoop file system to call).

S3 is reached with the settings S3A gets (session.py `s3a_options`): credentials from the
standard AWS chain, the region from AWS_REGION / AWS_DEFAULT_REGION, an S3-compatible endpoint
from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL with path-style access. Failures read as S3A's do:
`cannot reach <path>: <code>: <message>`.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, Any

from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.lake.layout import is_local_path, local_path, s3_region_and_endpoint

# S3 error codes as S3A names them, so a missing bucket reads the same in every command.
S3A_NAMES = {"NoSuchBucket": "UnknownStoreException"}


@dataclass(frozen=True)
class FileInfo:
    path: str  # as given: under the lake root, in the root's own form (folder or s3:// URI)
    size: int
    modified_ms: int
    etag: str | None = None  # an S3 object's (a digest of its content); none for local files
    linked: bool = False  # reached through a symbolic link below the folder listed (local)


# -- local folders: Arrow's file system ---------------------------------------------------------
def _local(path: str):
    from pyarrow import fs

    return fs.LocalFileSystem(), str(local_path(path))


def _reached(path: str, error: Exception) -> LakeError:
    said = " ".join(str(error).split())[:200]
    return LakeError(f"cannot reach {path}: {said}")


# -- S3: boto3 ----------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def s3_client() -> Any:
    """A boto3 S3 client with the region and endpoint every S3 client of the lake uses."""
    import boto3
    from botocore.config import Config

    region, endpoint = s3_region_and_endpoint(os.environ)
    path_style = Config(s3={"addressing_style": "path"}) if endpoint else None
    return boto3.client("s3", region_name=region, endpoint_url=endpoint, config=path_style)


def _object(path: str) -> tuple[Any, str, str]:
    """(boto3 S3 client, bucket, key) of an s3:// or s3a:// `path`. Not parsed as a URL: a
    key may hold '?' or '#', which a URL parser takes for a query or a fragment."""
    scheme, separator, rest = path.partition("://")
    if not separator or scheme not in ("s3", "s3a"):
        raise LakeError(f"{path}: only local folders and s3:// URIs are supported")
    bucket, _, key = rest.partition("/")
    return s3_client(), bucket, key.strip("/")


@contextmanager
def _s3_said(path: str) -> Iterator[None]:
    """A boto3 failure as one LakeError line: the store's code (as S3A names it), message."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, S3UploadFailedError) as exc:
        said = exc if isinstance(exc, ClientError) else exc.__context__  # an upload's cause
        if not isinstance(said, ClientError):
            raise _reached(path, exc) from None
        error = said.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        raise LakeError(f"cannot reach {path}: {S3A_NAMES.get(code, code)}: {message}") from None
    except BotoCoreError as exc:
        raise _reached(path, exc) from None


def _missing(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    return code in ("404", "NoSuchKey", "NotFound")


def _s3_files(folder: str, *, recursive: bool, limit: int | None = None) -> list[FileInfo]:
    client, bucket, key = _object(folder)
    prefix = f"{key}/" if key else ""
    options: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if not recursive:
        options["Delimiter"] = "/"
    if limit:
        options["PaginationConfig"] = {"MaxItems": limit}
    base = folder.rstrip("/")
    with _s3_said(folder):
        return [
            FileInfo(
                f"{base}/{o['Key'][len(prefix) :]}",
                int(o["Size"]),
                int(o["LastModified"].timestamp() * 1000),
                o.get("ETag"),
            )
            for page in client.get_paginator("list_objects_v2").paginate(**options)
            for o in page.get("Contents", [])
            if not o["Key"].endswith("/")  # a folder marker
        ]


def _s3_head(path: str) -> FileInfo | None:
    client, bucket, key = _object(path)
    with _s3_said(path):
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if _missing(exc):
                return None
            raise
    modified = int(head["LastModified"].timestamp() * 1000)
    return FileInfo(path, int(head["ContentLength"]), modified, head.get("ETag"))


# -- the layer ----------------------------------------------------------------------------------
def exists(path: str) -> bool:
    """A file, or a folder (on S3: a prefix holding objects, or a bucket)."""
    if is_local_path(path):
        from pyarrow import fs

        store, where = _local(path)
        try:
            return store.get_file_info(where).type != fs.FileType.NotFound
        except OSError as exc:
            raise _reached(path, exc) from None
    if not _object(path)[2]:  # a bucket: listing it fails if there is none
        _s3_files(path, recursive=False, limit=1)
        return True
    return _s3_head(path) is not None or is_folder(path)


def is_folder(path: str) -> bool:
    if is_local_path(path):
        from pyarrow import fs

        store, where = _local(path)
        return store.get_file_info(where).type == fs.FileType.Directory
    return bool(_s3_files(path, recursive=True, limit=1))


def files_under(folder: str, *, recursive: bool = True, links: bool = False) -> list[FileInfo]:
    """The files under `folder` (none if it does not exist), each named in the folder's form,
    sorted by path; with `links`, each local one marked if a symbolic link below the folder
    leads to it."""
    if not is_local_path(folder):
        return sorted(_s3_files(folder, recursive=recursive), key=lambda info: info.path)
    from pyarrow import fs

    store, where = _local(folder)
    selector = fs.FileSelector(where, recursive=recursive, allow_not_found=True)
    try:
        infos = store.get_file_info(selector)
    except OSError as exc:
        raise _reached(folder, exc) from None
    base, real = folder.rstrip("/"), os.path.realpath(where)
    return sorted(
        (
            FileInfo(
                f"{base}/{relative}",
                int(info.size or 0),
                int((info.mtime_ns or 0) // 1_000_000),
                linked=links and os.path.realpath(info.path) != os.path.join(real, relative),
            )
            for info in infos
            if info.type == fs.FileType.File and (relative := info.path[len(where) :].lstrip("/"))
        ),
        key=lambda info: info.path,
    )


def file_info(path: str) -> FileInfo:
    """One file's size and modification time (and ETag), as `files_under` gives them."""
    if not is_local_path(path):
        if (info := _s3_head(path)) is None:
            raise LakeError(f"{path} does not exist")
        return info
    store, where = _local(path)
    info = store.get_file_info(where)
    return FileInfo(path, int(info.size or 0), int((info.mtime_ns or 0) // 1_000_000))


@contextmanager
def open_input(path: str) -> Iterator[IO[bytes]]:
    """A binary stream of the file's bytes."""
    if is_local_path(path):
        with open(local_path(path), "rb") as stream:
            yield stream
        return
    client, bucket, key = _object(path)
    with _s3_said(path):
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield body
    finally:
        body.close()


def read_bytes(path: str) -> bytes | None:
    """The whole content of a file; None if there is none."""
    if is_local_path(path):
        try:
            return local_path(path).read_bytes()
        except FileNotFoundError:
            return None
    client, bucket, key = _object(path)
    with _s3_said(path):
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _missing(exc):
                return None
            raise


def write_s3(path: str, data: bytes) -> None:
    """Write an S3 object whole (it appears once its upload completes)."""
    client, bucket, key = _object(path)
    with _s3_said(path):
        client.put_object(Bucket=bucket, Key=key, Body=data)


def upload(local_file: str, path: str) -> None:
    """Copy a local file to an S3 object (it appears once its upload completes)."""
    client, bucket, key = _object(path)
    with _s3_said(path):
        client.upload_file(local_file, bucket, key)


def delete(path: str) -> None:
    if is_local_path(path):
        local_path(path).unlink()
        return
    client, bucket, key = _object(path)
    with _s3_said(path):
        client.delete_object(Bucket=bucket, Key=key)
