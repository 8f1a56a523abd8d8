"""Where things live in a lake, with no Spark, so the CLI can reason about roots and files
before (or without) starting the JVM. Under the lake root (a folder, optionally `file:`, or a
URI such as `s3://bucket/prefix`; only the base differs):

    landing/<dataset>/**/*.json          raw JSON-lines files, as delivered (and *.json.gz)
    delta/<zone>/<table>/                one Delta table per catalogue entry
    _metastore/                          the embedded catalog (local lakes only)
    _lock                                who holds the lake (a local lock, an S3 lease)
    _erasures/, _server/                 erasures under way; the lake server's address
"""

import re
from dataclasses import dataclass
from pathlib import Path

from stedi_lakehouse.contracts.tables import CATALOGUE, Dataset, Table

COMMIT_FILE = re.compile(r"(\d{20})\.json")  # a commit of the Delta log; not checkpoints
CHECKSUM_FILE = re.compile(r"\..*\.crc")  # Hadoop's local checksums
# How much of a landing file's start is looked at to tell a binary file from text.
SNIFFED_BYTES = 8000
BINARY = "binary file (not UTF-8 text): not read"
# Spark's reader takes every path as a glob pattern: these characters are escaped to mean
# themselves.
GLOB_CHARACTERS = re.compile(r"([{}\[\]*?\\])")


def is_local_path(lake_root: str) -> bool:
    return "://" not in lake_root or lake_root.startswith("file:")


def local_path(lake_root: str) -> Path:
    """The folder of a local lake root."""
    return Path(lake_root.removeprefix("file:"))


LANDING_SUFFIXES = (".json", ".json.gz")
NOT_LANDING = "not *.json or *.json.gz"
BEING_WRITTEN = "a hidden or temporary name (a file being written)"
# A link may point anywhere the lake's user can read (a key, credentials): its target's lines
# would be kept, quarantined ones whole. Only files stored under the folder are read.
LINKED = "a symbolic link, or inside a linked folder: only files stored here are read"
# A name is every row's lineage (`source_file`) and a bookmark: no erasure reaches it, so no
# name read may hold an address (as the contracts take one: something@something).
_ADDRESS = re.compile(r"[^/@\s]+@[^/@\s]+")
NAMES_A_PERSON = "an e-mail address in its name, which would outlive an erasure: rename it"


def skipped_because(name: str) -> str | None:
    """Why a file under a landing folder (`name`: its path below the dataset's folder) is not
    read; None for a landing file. Names that tools give files while they write them (hidden,
    `_` first, `*.tmp`, `*._COPYING_`), in any folder of the path, are left until renamed, as
    are names holding an address."""
    parts = name.split("/")
    if any(p.startswith((".", "_")) for p in parts) or name.endswith((".tmp", "._COPYING_")):
        return BEING_WRITTEN
    if not name.endswith(LANDING_SUFFIXES):
        return NOT_LANDING
    if addresses_in(name):
        return NAMES_A_PERSON
    return None


def addresses_in(name: str) -> list[str]:
    """The e-mail addresses a landing file's path holds, as spelt (its suffix aside)."""
    return _ADDRESS.findall(name.removesuffix(".gz").removesuffix(".json"))


def normalise_root(lake_root: str) -> str:
    if is_local_path(lake_root):
        return str(local_path(lake_root).resolve())
    return lake_root.rstrip("/")


def table_path(root: str, name: str) -> str:
    spec = CATALOGUE[Table(name)]
    return f"{root}/delta/{spec.zone}/{spec.name}"


def landing_dir(root: str, dataset: Dataset) -> str:
    return f"{root}/landing/{dataset}"


@dataclass(frozen=True)
class Listed:
    """A landing file as listed: what it holds (`version`) and when it last changed."""

    version: str
    modified_ms: int
    linked: bool = False  # reached through a symbolic link (see `LINKED`)


def looks_binary(head: bytes) -> bool:
    """Whether a file that starts with `head` is binary: more than a third of its characters
    are not UTF-8 or are control characters other than tab and line ends (Perl's -B test). A
    text file with a few hostile lines is read line by line; a UTF-16 file or an image is not."""
    text = head.decode("utf-8", errors="replace")
    strange = sum(c == "\ufffd" or (c < " " and c not in "\t\n\r") for c in text)
    return strange * 3 > len(text)


LOCK_FILE = "_lock"
SERVER_DIR = "_server"  # the lake server's address and log, under a local lake
# Which command writes a served lake (in SERVER_DIR): its server holds LOCK_FILE for them all.
WRITER_LOCK = "writer.lock"


def make_private_folder(path: Path) -> None:
    """Create `path` (and missing parents) readable by its owner only; an existing folder
    keeps the modes its owner chose."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)  # whatever the umask


def s3_region_and_endpoint(environ) -> tuple[str | None, str | None]:
    """The region and S3-compatible endpoint every S3 client of the lake uses (S3A, delta-rs,
    Arrow), from the standard AWS variables."""
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    return region, environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
