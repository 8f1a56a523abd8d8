"""The lake's files (not its tables), through one Python layer for local folders and S3 alike
(`files`): no JVM, so a Spark Connect client uses them as an in-process run does."""

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from stedi_lakehouse.lake import files as python_files
from stedi_lakehouse.lake.layout import (
    BINARY,
    CHECKSUM_FILE,
    SNIFFED_BYTES,
    Listed,
    is_local_path,
    local_path,
    looks_binary,
)


def _version(info: python_files.FileInfo) -> str:
    """What a listed file holds, as far as the store tells without reading it: S3's ETag (a
    digest of the content), else its size and modification time."""
    return f"etag:{info.etag}" if info.etag else f"{info.size}:{info.modified_ms}"


class Storage:
    """The files under one lake root; paths are relative to the root unless said otherwise."""

    def __init__(self, root: str):
        self.root = root

    @property
    def local(self) -> bool:
        return is_local_path(self.root)

    def exists(self, path: str) -> bool:
        """Whether `path` (absolute) exists; an unreachable store (no such bucket, no access, no
        credentials) is a LakeError with the store's own first line."""
        return python_files.exists(path)

    def is_folder(self, path: str) -> bool:
        return python_files.is_folder(path)

    @property
    def qualified_root(self) -> str:
        """The root as Spark names files under it, with a trailing slash."""
        return f"file:{self.root}/" if self.local else f"{self.root.rstrip('/')}/"

    def listed(self, folder: str) -> Iterator[tuple[str, Listed]]:
        """The files under `folder` (absolute) and its sub-folders: each one's path under the
        root and what it holds."""
        for info in python_files.files_under(folder, links=True):
            name = info.path.removeprefix(f"{self.root}/")
            if not CHECKSUM_FILE.fullmatch(name.rsplit("/", 1)[-1]):  # Hadoop's local checksums
                yield name, Listed(_version(info), info.modified_ms, info.linked)

    def paths_under(self, relative: str) -> list[str]:
        """Every file under folder `<lake root>/<relative>` and its sub-folders, local
        checksums too: each one's path under the root."""
        found = python_files.files_under(f"{self.root}/{relative}")
        return [info.path.removeprefix(f"{self.root}/") for info in found]

    def version(self, relative: str) -> str:
        """What the file `<lake root>/<relative>` holds now, as `listed` gives it."""
        return _version(python_files.file_info(f"{self.root}/{relative}"))

    def read(self, relative: str) -> bytes | None:
        """The bytes of `<lake root>/<relative>`, or None if there is no such file."""
        return python_files.read_bytes(f"{self.root}/{relative}")

    def write(self, relative: str, data: bytes) -> None:
        """Write `<lake root>/<relative>` whole: a local file is replaced atomically (readable
        by its owner only), an S3 object by one PUT."""
        if not self.local:
            python_files.write_s3(f"{self.root}/{relative}", data)
            return
        target = local_path(self.root) / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = target.with_name(f".{target.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, target)

    def put(self, local_file: Path, relative: str) -> None:
        """Copy a local file to `<lake root>/<relative>` of a lake on S3."""
        python_files.upload(str(local_file.resolve()), f"{self.root}/{relative}")

    def delete(self, relative: str) -> None:
        python_files.delete(f"{self.root}/{relative}")

    def names_in(self, relative: str) -> list[str]:
        """The names of the files directly in folder `<lake root>/<relative>` (none if it
        does not exist)."""
        found = python_files.files_under(f"{self.root}/{relative}", recursive=False)
        return [info.path.rsplit("/", 1)[-1] for info in found]

    def unreadable(self, files: list[str]) -> dict[str, str]:
        """Of the files given, those that cannot be read as text lines, with why: binary (see
        `looks_binary`), or a compressed file that does not decompress to its end (a truncated
        or false .gz). Only what a decoder says is kept, never the file's content. Failures
        are named as Hadoop's decoder names them."""
        return {f: why for f in files if (why := self._unreadable(f)) is not None}

    def _unreadable(self, file: str) -> str | None:
        try:
            with python_files.open_input(f"{self.root}/{file}") as raw:
                stream = gzip.GzipFile(fileobj=raw) if file.endswith(".gz") else raw
                if looks_binary(stream.read(SNIFFED_BYTES)):
                    return BINARY
                while stream.read(1 << 20):  # a compressed file must decompress to its end
                    pass
        except EOFError as exc:
            return f"file cannot be read: EOFException: {exc}"
        except (OSError, zlib.error) as exc:
            return f"file cannot be read: IOException: {exc}"
        return None
