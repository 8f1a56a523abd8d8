"""The landing zone: which files a feed has delivered, their lines as Spark reads them, and
rewriting a file without some of its lines (an erasure) while it stays processed."""

import bz2
import codecs
import gzip
import io
import lzma
import zipfile
import zlib
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.tables import Dataset, ProcessedFile, Table
from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.lake.layout import (
    GLOB_CHARACTERS,
    LINKED,
    SNIFFED_BYTES,
    Listed,
    landing_dir,
    local_path,
    looks_binary,
    skipped_because,
)

if TYPE_CHECKING:
    from stedi_lakehouse.lake.tables import Lake

# Text that starts with a byte-order mark is decoded as it says (UTF-32 first: its
# little-endian mark starts with UTF-16's); other text is taken as UTF-8 bytes, as Spark reads it.
_MARKED = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SPELLINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")


def marked_encoding(data: bytes) -> str | None:
    """The encoding a byte-order mark at the start of `data` names, if any."""
    return next((codec for mark, codec in _MARKED if data.startswith(mark)), None)


def _lines_of(text: str) -> list[str]:
    """Lines with their ends, split where `bytes.splitlines` splits (not at U+2028 and such)."""
    return list(io.StringIO(text, newline=""))


def _unpacked(data: bytes, depth: int = 3) -> list[bytes]:
    """The bytes, and what they unpack to as gzip, zlib, bzip2, xz or zip, as far as they do
    (a cut stream too), nested `depth` deep."""
    found = [data]
    if depth == 0:
        return found
    inner: list[bytes] = []
    with suppress(zlib.error):
        inner.append(zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(data))
    for unpack in (bz2.BZ2Decompressor, lzma.LZMADecompressor):
        with suppress(OSError, EOFError, lzma.LZMAError, ValueError):
            inner.append(unpack().decompress(data))
    broken = (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError)
    with suppress(*broken), zipfile.ZipFile(io.BytesIO(data)) as packed:
        inner += [packed.read(name) for name in packed.namelist()]
    for unpacked in inner:
        if unpacked:
            found += _unpacked(unpacked, depth - 1)
    return found


class Landing:
    def __init__(self, lake: "Lake"):
        self.lake, self.storage = lake, lake.storage

    def exists(self, dataset: Dataset) -> bool:
        return self.storage.exists(landing_dir(self.lake.root, dataset))

    def files(self, dataset: Dataset) -> list[str]:
        """Every *.json and *.json.gz file under landing/<dataset>/ (nested folders too), as
        the tables' `source_file` names it."""
        return list(self.listing(dataset)[0])

    def listing(self, dataset: Dataset) -> tuple[dict[str, Listed], dict[str, str]]:
        """The landing files of `dataset` to read (see `files`) with their version and
        modification time, and the other files under its folder, with why each is not read
        (`skipped_because`)."""
        folder = landing_dir(self.lake.root, dataset)
        if not self.storage.exists(folder):
            raise LakeError(f"no landing folder for '{dataset}': {folder} does not exist")
        if not self.storage.is_folder(folder):
            raise LakeError(f"landing for '{dataset}' must be a folder: {folder} is a file")
        files, skipped = {}, {}
        for name, listed in self.storage.listed(folder):
            if listed.linked:
                skipped[name] = LINKED
            elif why := skipped_because(name.removeprefix(f"landing/{dataset}/")):
                skipped[name] = why
            else:
                files[name] = listed
        return dict(sorted(files.items())), dict(sorted(skipped.items()))

    def unreadable(self, files: list[str]) -> dict[str, str]:
        """Of the landing files given, those that cannot be read as text lines, with why."""
        return self.storage.unreadable(files)

    def read_readable(self, dataset: Dataset, files: list[str] | None = None) -> DataFrame:
        """`read` of the files that can be read as text lines (see `unreadable`)."""
        files = self.files(dataset) if files is None else files
        unreadable = self.unreadable(files)
        return self.read(dataset, [f for f in files if f not in unreadable])

    def read(self, dataset: Dataset, files: list[str] | None = None) -> DataFrame:
        """Every line of the given landing files (default: all of landing/<dataset>/), with its
        file. Columns: value, source_file (the file's path under the lake root, as `files`
        gives it: a lake keeps its bookmarks when moved)."""
        spark = self.lake.spark
        files = self.files(dataset) if files is None else files
        if not files:
            return spark.createDataFrame([], "value string, source_file string")
        root = self.storage.qualified_root
        lines = spark.read.text([GLOB_CHARACTERS.sub(r"\\\1", f"{root}{f}") for f in files])
        path = F.col("_metadata.file_path")
        # the reader names a file by its URI: '%', spaces, brackets, braces are %-encoded; a
        # '+' is itself, which url_decode would read as a space
        decoded = F.url_decode(F.replace(path, F.lit("+"), F.lit("%2B")))
        source = F.when(path.contains("%"), decoded).otherwise(path)
        if any(root in f for f in files):  # the root again inside a path: cut the prefix only
            cut = F.substring(source, len(root) + 1, 1 << 20)
        else:  # the same result, cheaper than a substring per row (bench/micro.py)
            cut = F.replace(source, F.lit(root), F.lit(""))
        relative = F.when(source.startswith(root), cut).otherwise(source)
        return lines.select("value", relative.alias("source_file"))

    def lines(self, relative: str) -> list[bytes]:
        """The lines of a landing file (its path under the root), as UTF-8 bytes (a .gz file's
        decompressed, one that does not decompress has none; text with a byte-order mark
        decoded)."""
        data = self._bytes(relative)
        if (codec := marked_encoding(data)) is None:
            return data.splitlines()
        return [line.encode() for line in _lines_of(data.decode(codec, errors="replace"))]

    def is_text(self, relative: str) -> bool:
        """Whether `lines` gives the file's whole content: it decompresses to its end, and is
        text with a byte-order mark or does not look binary."""
        data = self._decompressed(relative)
        if data is None:
            return False
        return marked_encoding(data) is not None or not looks_binary(data[:SNIFFED_BYTES])

    def mentions(self, relative: str, words: Iterable[str]) -> bool:
        """Whether a file's bytes, or what they unpack to, spell one of the (lower-case)
        `words` in UTF-8, UTF-16 or UTF-32, in any case of its ASCII letters."""
        found = [data.lower() for data in _unpacked(self.storage.read(relative) or b"")]
        return any(
            w.encode(codec) in data for data in found for w in words if w for codec in _SPELLINGS
        )

    def _bytes(self, relative: str) -> bytes:
        return self._decompressed(relative) or b""

    def _decompressed(self, relative: str) -> bytes | None:
        """The file's bytes, a .gz file's decompressed; None if it does not decompress."""
        data = self.storage.read(relative) or b""
        if not relative.endswith(".gz"):
            return data
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return None

    def rewrite(self, relative: str, keep: Callable[[bytes], bool]) -> str:
        """Rewrite a landing file (its path under the root) with only the lines `keep` keeps
        (lines as bytes, with their line ends); its new version. Its bookmarks of the version
        rewritten follow it (`_rebookmark`): a rewrite is not a new delivery, but a file that
        changed after its run stays one."""
        before = self.storage.version(relative)
        self._write(relative, self._kept(relative, keep))
        version = self.storage.version(relative)
        self._rebookmark(relative, before, version)
        return version

    def move_unread(self, relative: str, target: str, keep: Callable[[bytes], bool]) -> None:
        """Move a file the lake leaves unread (`skipped_because`) to `target`, with only the
        lines `keep` keeps; none kept: the file is deleted. No bookmark names it. A local
        folder the move leaves empty goes too (a name may be all that is left of someone)."""
        if kept := self._kept(relative, keep):
            self._write(target, kept)
        self.storage.delete(relative)
        if self.storage.local:
            root = local_path(self.lake.root)
            dataset = root / "/".join(relative.split("/")[:2])  # landing/<dataset>: kept
            folder = (root / relative).parent
            while (
                folder != dataset and folder.is_relative_to(dataset) and not any(folder.iterdir())
            ):
                folder.rmdir()
                folder = folder.parent

    def _kept(self, relative: str, keep: Callable[[bytes], bool]) -> bytes:
        """The file's lines (with their line ends) that `keep` keeps (given as UTF-8 bytes),
        in the file's own encoding."""
        data = self._bytes(relative)
        if (codec := marked_encoding(data)) is None:
            return b"".join(line for line in data.splitlines(True) if keep(line))
        lines = _lines_of(data.decode(codec, errors="replace"))
        kept = "".join(line for line in lines if keep(line.encode()))
        return kept.encode(codec) if kept else b""

    def _write(self, relative: str, lines: bytes) -> None:
        self.storage.write(relative, gzip.compress(lines) if relative.endswith(".gz") else lines)

    def _rebookmark(self, relative: str, before: str, version: str) -> None:
        """Bookmark the file's new `version` wherever the version `before` is bookmarked (each
        stage, as the run that processed it), so later runs keep taking it as processed."""
        from stedi_lakehouse.lake.tables import records_frame

        if not self.lake.exists(Table.PROCESSED_FILES):
            return
        marks = self.lake.read(Table.PROCESSED_FILES).filter(
            (F.col("path") == relative) & (F.col("version") == before)
        )
        rows = [ProcessedFile(**row.asDict() | {"version": version}) for row in marks.collect()]
        unique = list({(r.stage, r.run_id): r for r in rows}.values())
        if unique:
            frame = records_frame(self.lake.spark, ProcessedFile, unique)
            self.lake.append(frame, Table.PROCESSED_FILES)
