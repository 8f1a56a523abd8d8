"""The lake's files (not its tables): a local lake's through Python (`files`, no JVM, so a
Spark Connect client can use them), any other store's through Spark's Hadoop file systems."""

import gzip
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.sql import SparkSession

from stedi_lakehouse.errors import LakeError
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


def said(exc: Py4JJavaError) -> str:
    """A Java failure in one line: its type and what the store said."""
    error = exc.java_exception
    message = str(error.getMessage() or "").splitlines()[0]
    # AWS: "...Exception: The specified bucket does not exist (Service: S3, ...)"
    aws = re.search(r"Exception: ([^:(]+?) \(Service", message)
    return f"{error.getClass().getSimpleName()}: {aws.group(1) if aws else message[:200]}"


def _version(status) -> str:
    """What a listed file holds, as far as the store tells without reading it: S3's ETag (a
    digest of the content), else its size and modification time."""
    try:
        if etag := status.getEtag():
            return f"etag:{etag}"
    except Py4JError:  # a file system without ETags
        pass
    return f"{status.getLen()}:{status.getModificationTime()}"


class Storage:
    """The files under one lake root; paths are relative to the root unless said otherwise."""

    def __init__(self, spark: SparkSession, root: str):
        self.spark, self.root = spark, root

    @property
    def local(self) -> bool:
        """A local lake: its files are reached from Python (no JVM, as a Spark Connect client
        has none); other stores through Spark's Hadoop file systems."""
        return is_local_path(self.root)

    def hadoop(self, path: str):
        """(the Hadoop file system serving `path`, `path` as a Hadoop Path)."""
        context = self.spark.sparkContext
        hadoop_path = context._jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
        return hadoop_path, hadoop_path.getFileSystem(context._jsc.hadoopConfiguration())

    def exists(self, path: str) -> bool:
        """Whether `path` (absolute) exists; an unreachable store (no such bucket, no access, no
        credentials) is a LakeError with the store's own first line."""
        if is_local_path(path):
            return python_files.exists(path)
        try:
            hadoop_path, fs = self.hadoop(path)
            return bool(fs.exists(hadoop_path))
        except Py4JJavaError as exc:
            raise LakeError(f"cannot reach {path}: {said(exc)}") from None

    def is_folder(self, path: str) -> bool:
        if is_local_path(path):
            return python_files.is_folder(path)
        hadoop_path, fs = self.hadoop(path)
        return bool(fs.getFileStatus(hadoop_path).isDirectory())

    @property
    def qualified_root(self) -> str:
        """The root as Spark names files under it, with a trailing slash."""
        if self.local:
            return f"file:{self.root}/"
        path, fs = self.hadoop(self.root)
        return f"{fs.makeQualified(path).toString().rstrip('/')}/"

    def listed(self, folder: str) -> Iterator[tuple[str, Listed]]:
        """The files under `folder` (absolute) and its sub-folders: each one's path under the
        root and what it holds."""
        if self.local:
            for info in python_files.files_under(folder):
                name = info.path.removeprefix(f"{self.root}/")
                if not CHECKSUM_FILE.fullmatch(name.rsplit("/", 1)[-1]):  # Hadoop's hides them
                    yield name, Listed(f"{info.size}:{info.modified_ms}", info.modified_ms)
            return
        path, fs = self.hadoop(folder)
        found, root = fs.listFiles(path, True), self.qualified_root
        while found.hasNext():
            status = found.next()
            name = status.getPath().toString().removeprefix(root)
            yield name, Listed(_version(status), int(status.getModificationTime()))

    def version(self, relative: str) -> str:
        """What the file `<lake root>/<relative>` holds now, as `listed` gives it."""
        if self.local:
            info = python_files.file_info(f"{self.root}/{relative}")
            return f"{info.size}:{info.modified_ms}"
        path, fs = self.hadoop(f"{self.root}/{relative}")
        return _version(fs.getFileStatus(path))

    def read(self, relative: str) -> bytes | None:
        """The bytes of `<lake root>/<relative>`, or None if there is no such file."""
        if self.local:
            return python_files.read_bytes(f"{self.root}/{relative}")
        path, fs = self.hadoop(f"{self.root}/{relative}")
        return self._hadoop_bytes(fs, path) if fs.exists(path) else None

    def write(self, relative: str, data: bytes) -> None:
        """Write `<lake root>/<relative>` whole: a local file is replaced atomically (readable
        by its owner only), an S3 object by one PUT."""
        if self.local:
            target = local_path(self.root) / relative
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = target.with_name(f".{target.name}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
            return
        path, fs = self.hadoop(f"{self.root}/{relative}")
        out = fs.create(path, True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()

    def put(self, local_file: Path, relative: str) -> None:
        """Copy a local file to `<lake root>/<relative>` (any file system Spark reaches)."""
        try:
            target, fs = self.hadoop(f"{self.root}/{relative}")
            # not as_uri(): Hadoop takes a path's '%' literally, so %-encoded names are not found
            source, _ = self.hadoop(f"file:{local_file.resolve()}")
            fs.copyFromLocalFile(False, True, source, target)
        except Py4JJavaError as exc:
            raise LakeError(f"cannot write {self.root}/{relative}: {said(exc)}") from None

    def delete(self, relative: str) -> None:
        if self.local:
            return python_files.delete(f"{self.root}/{relative}")
        path, fs = self.hadoop(f"{self.root}/{relative}")
        fs.delete(path, False)

    def names_in(self, relative: str) -> list[str]:
        """The names of the files directly in folder `<lake root>/<relative>` (none if it
        does not exist)."""
        if self.local:
            found = python_files.files_under(f"{self.root}/{relative}", recursive=False)
            return [info.path.rsplit("/", 1)[-1] for info in found]
        path, fs = self.hadoop(f"{self.root}/{relative}")
        if not fs.exists(path):
            return []
        return sorted(s.getPath().getName() for s in fs.listStatus(path) if s.isFile())

    def unreadable(self, files: list[str]) -> dict[str, str]:
        """Of the files given, those that cannot be read as text lines, with why: binary (see
        `looks_binary`), or a compressed file that does not decompress to its end (a truncated
        or false .gz). Only what a decoder says is kept, never the file's content."""
        if self.local:
            return {f: why for f in files if (why := self._unreadable_local(f)) is not None}
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
            self.spark.sparkContext._jsc.hadoopConfiguration()
        )
        found = {}
        for file in files:
            path, fs = self.hadoop(f"{self.root}/{file}")
            stream = None
            try:
                stream = fs.open(path)
                if codec := codecs.getCodec(path):
                    stream = codec.createInputStream(stream)
                head = jvm.org.apache.commons.io.input.BoundedInputStream(stream, SNIFFED_BYTES)
                if looks_binary(bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(head))):
                    found[file] = BINARY
                elif codec:
                    jvm.org.apache.commons.io.IOUtils.consume(stream)
            except Py4JJavaError as exc:
                found[file] = f"file cannot be read: {said(exc)}"
            finally:
                if stream is not None:
                    stream.close()
        return found

    def _unreadable_local(self, file: str) -> str | None:
        """Why a local file cannot be read as text lines (see `unreadable`), or None. Failures
        are named as Hadoop's decoder names them on the other stores."""
        try:
            with open(f"{self.root}/{file}", "rb") as raw:
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

    def _hadoop_bytes(self, fs, path) -> bytes:
        stream = fs.open(path)
        try:
            jvm = self.spark._jvm
            assert jvm is not None
            return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()
