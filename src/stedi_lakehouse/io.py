"""The one I/O layer: where things live in the lake, how tables are read, written and registered.

Layout under the lake root (a folder or an s3:// URI; only the base differs):

    landing/<dataset>/**/*.json          raw JSON-lines files, as delivered
    delta/<zone>/<table>/                one Delta table per catalogue entry
    _metastore/                          the embedded catalog (local lakes only)
    _lock                                held by the run using the lake (local lakes only)

Every table write is one Delta commit: a whole table (`where=None`) or exactly the rows a
predicate selects (`replaceWhere`), replaced atomically. A `Lake` built with `after_commit`
calls it after each such commit with their number so far: the crash-safety tests stop a run
there.
"""

import gzip
import json
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path

from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_lakehouse.contracts.spark import spark_schema
from stedi_lakehouse.contracts.tables import CATALOGUE, Dataset, TableSpec, Zone
from stedi_lakehouse.errors import LakeError, RulesMismatchError
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.roots import is_local_path, local_path, skipped_because
from stedi_lakehouse.session import METASTORE_URL

RULES_KEY = "rules"
STATISTICS_PROPERTY = "delta.dataSkippingStatsColumns"
# Off for a write that replaces some rows and adds others (Lake.write(adds=True)).
REPLACE_WHERE_CHECK = "spark.databricks.delta.replaceWhere.constraintCheck.enabled"


def normalise_root(lake_root: str) -> str:
    if is_local_path(lake_root):
        return str(local_path(lake_root).resolve())
    return lake_root.rstrip("/")


JOB_DESCRIPTION = "spark.job.description"
COMMIT_FILE = re.compile(r"(\d{20})\.json")  # a commit of the Delta log; not checkpoints
METADATA_DEPTH = 20  # how many recent commits are searched for the latest user metadata
# How much of a landing file's start is looked at to tell a binary file from text.
SNIFFED_BYTES = 8000
BINARY = "binary file (not UTF-8 text): not read"
# Spark's reader takes every path as a glob pattern: these characters are escaped to mean
# themselves.
GLOB_CHARACTERS = re.compile(r"([{}\[\]*?\\])")


@dataclass(frozen=True)
class Listed:
    """A landing file as listed: what it holds (`version`) and when it last changed."""

    version: str
    modified_ms: int


def _version(status) -> str:
    """What a listed file holds, as far as the store tells without reading it: S3's ETag (a
    digest of the content), else its size and modification time."""
    try:
        if etag := status.getEtag():
            return f"etag:{etag}"
    except Py4JError:  # a file system without ETags
        pass
    return f"{status.getLen()}:{status.getModificationTime()}"


def looks_binary(head: bytes) -> bool:
    """Whether a file that starts with `head` is binary: more than a third of its characters
    are not UTF-8 or are control characters other than tab and line ends (Perl's -B test). A
    text file with a few hostile lines is read line by line; a UTF-16 file or an image is not."""
    text = head.decode("utf-8", errors="replace")
    strange = sum(c == "\ufffd" or (c < " " and c not in "\t\n\r") for c in text)
    return strange * 3 > len(text)


def local_frame(spark: SparkSession, rows: list[dict], schema: T.StructType) -> DataFrame:
    """A small DataFrame of rows the driver holds (bookmarks, run records, keys), with exactly
    `schema`. Sent to the JVM as an Arrow table where pyarrow is installed (`make setup` does):
    `createDataFrame` of Python rows runs them through a Python worker process: 0.88 s the first
    time in a session, 0.14 s after; 0.16 s and 0.02 s as Arrow (`bench/micro.py`)."""
    try:
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_schema
    except ImportError:
        return spark.createDataFrame(
            [tuple(row.get(f) for f in schema.names) for row in rows], schema
        )
    table = pa.Table.from_pylist(rows, schema=to_arrow_schema(schema))
    return spark.createDataFrame(table, schema=schema)


@dataclass(frozen=True)
class TableWrite:
    table: str
    rows: int  # rows written by this commit
    version: int
    path: str
    seconds: float = 0.0  # computing and writing the table (Spark is lazy: the stage's work)
    removed: int = 0  # rows the commit replaced (0 for a table written whole the first time)
    committed: bool = True  # False: nothing to replace and nothing to write, so no new version


@dataclass(frozen=True)
class TableStatus:
    table: str
    zone: str
    rows: int | None
    version: int | None
    path: str


def _said(exc: Py4JJavaError) -> str:
    """A Java failure in one line: its type and what the store said."""
    error = exc.java_exception
    message = str(error.getMessage() or "").splitlines()[0]
    # AWS: "...Exception: The specified bucket does not exist (Service: S3, ...)"
    aws = re.search(r"Exception: ([^:(]+?) \(Service", message)
    return f"{error.getClass().getSimpleName()}: {aws.group(1) if aws else message[:200]}"


class Lake:
    """A lake root seen through one SparkSession, with its tables registered in `database`."""

    def __init__(
        self,
        spark: SparkSession,
        root: str,
        database: str,
        *,
        after_commit: Callable[[int], None] | None = None,
    ):
        self.spark = spark
        self.root = normalise_root(root)
        self.database = database
        # Registration talks to the metastore (slow on first use): it runs beside the next
        # table's work. `registered()` waits for it and raises what failed.
        self._registrations: list[Future] = []
        self._registrar = ThreadPoolExecutor(max_workers=1, thread_name_prefix="register")
        self._commits = 0
        self._metadata: dict[str, str | None] = {}  # table -> its latest user metadata
        self.after_commit = after_commit

    # -- paths ----------------------------------------------------------------------------
    def landing_dir(self, dataset: Dataset) -> str:
        return f"{self.root}/landing/{dataset}"

    def table_path(self, name: str) -> str:
        spec = CATALOGUE[name]
        return f"{self.root}/delta/{spec.zone}/{spec.name}"

    def _hadoop(self, path: str):
        """(the Hadoop file system serving `path`, `path` as a Hadoop Path)."""
        hadoop_path = self.spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
        fs = hadoop_path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())
        return fs, hadoop_path

    def _exists(self, path: str) -> bool:
        """Whether `path` exists; an unreachable store (no such bucket, no access, no
        credentials) is a LakeError with the store's own first line."""
        try:
            fs, hadoop_path = self._hadoop(path)
            return bool(fs.exists(hadoop_path))
        except Py4JJavaError as exc:
            raise LakeError(f"cannot reach {path}: {_said(exc)}") from None

    def _is_folder(self, path: str) -> bool:
        fs, hadoop_path = self._hadoop(path)
        return bool(fs.getFileStatus(hadoop_path).isDirectory())

    def put(self, local_file: Path, relative: str) -> None:
        """Copy a local file to `<lake root>/<relative>` (any file system Spark reaches)."""
        try:
            fs, target = self._hadoop(f"{self.root}/{relative}")
            # not as_uri(): Hadoop takes a path's '%' literally, so %-encoded names are not found
            _, source = self._hadoop(f"file:{local_file.resolve()}")
            fs.copyFromLocalFile(False, True, source, target)
        except Py4JJavaError as exc:
            raise LakeError(f"cannot write {self.root}/{relative}: {_said(exc)}") from None

    def check_root(self) -> None:
        if not self._exists(self.root):
            raise LakeError(f"lake root {self.root} does not exist")

    # -- landing --------------------------------------------------------------------------
    def landing_files(self, dataset: Dataset) -> list[str]:
        """Every *.json and *.json.gz file under landing/<dataset>/ (nested folders too), as
        the tables' `source_file` names it."""
        return list(self.landing_listing(dataset)[0])

    def landing_listing(self, dataset: Dataset) -> tuple[dict[str, Listed], dict[str, str]]:
        """The landing files of `dataset` to read (see `landing_files`) with their version and
        modification time, and the other files under its folder, with why each is not read
        (`skipped_because`)."""
        folder = self.landing_dir(dataset)
        if not self._exists(folder):
            raise LakeError(f"no landing folder for '{dataset}': {folder} does not exist")
        if not self._is_folder(folder):
            raise LakeError(f"landing for '{dataset}' must be a folder: {folder} is a file")
        fs, path = self._hadoop(folder)
        found, files, skipped = fs.listFiles(path, True), {}, {}
        while found.hasNext():
            status = found.next()
            name = status.getPath().toString().removeprefix(self._qualified_root)
            if why := skipped_because(name.removeprefix(f"landing/{dataset}/")):
                skipped[name] = why
            else:
                files[name] = Listed(_version(status), int(status.getModificationTime()))
        return dict(sorted(files.items())), dict(sorted(skipped.items()))

    def unreadable(self, files: list[str]) -> dict[str, str]:
        """Of the landing files given (paths under the root), those that cannot be read as text
        lines, with why: binary (see `looks_binary`), or a compressed file that does not
        decompress to its end (a truncated or false .gz). Only what a decoder says is kept,
        never the file's content."""
        jvm = self.spark.sparkContext._jvm
        codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
            self.spark.sparkContext._jsc.hadoopConfiguration()
        )
        found = {}
        for file in files:
            fs, path = self._hadoop(f"{self.root}/{file}")
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
                found[file] = f"file cannot be read: {_said(exc)}"
            finally:
                if stream is not None:
                    stream.close()
        return found

    @property
    def _qualified_root(self) -> str:
        """The root as Spark names files under it, with a trailing slash."""
        fs, path = self._hadoop(self.root)
        return f"{fs.makeQualified(path).toString().rstrip('/')}/"

    def read_readable_landing(self, dataset: Dataset, files: list[str] | None = None) -> DataFrame:
        """`read_landing` of the files that can be read as text lines (see `unreadable`)."""
        files = self.landing_files(dataset) if files is None else files
        unreadable = self.unreadable(files)
        return self.read_landing(dataset, [f for f in files if f not in unreadable])

    def read_landing(self, dataset: Dataset, files: list[str] | None = None) -> DataFrame:
        """Every line of the given landing files (default: all of landing/<dataset>/), with its
        file. Columns: value, source_file (the file's path under the lake root, as
        `landing_files` gives it: a lake keeps its bookmarks when moved)."""
        files = self.landing_files(dataset) if files is None else files
        if not files:
            return self.spark.createDataFrame([], "value string, source_file string")
        root = self._qualified_root
        lines = self.spark.read.text([GLOB_CHARACTERS.sub(r"\\\1", f"{root}{f}") for f in files])
        path = F.col("_metadata.file_path")
        # the reader names a file by its URI: '%', spaces, brackets, braces are %-encoded; a
        # '+' is itself, which url_decode would read as a space
        decoded = F.url_decode(F.replace(path, F.lit("+"), F.lit("%2B")))
        source = F.when(path.contains("%"), decoded).otherwise(path)
        if any(root in f for f in files):  # the root again inside a path: cut the prefix only
            cut = F.substring(source, len(root) + 1, 1 << 20)
        else:  # the same result; on 2M lines 0.14 s over the bare path, substring 0.52 s
            cut = F.replace(source, F.lit(root), F.lit(""))  # (bench/micro.py, "source_file")
        relative = F.when(source.startswith(root), cut).otherwise(source)
        return lines.select("value", relative.alias("source_file"))

    # -- tables ---------------------------------------------------------------------------
    def write(
        self,
        df: DataFrame,
        name: str,
        *,
        rules: Rules | None,
        where: str | None = None,
        adds: bool = False,
        append: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> TableWrite:
        """Replace table `name` (where=None), or exactly its rows matching the SQL predicate
        `where`, in one atomic Delta commit; register it in the catalog. Every row of `df` must
        match `where`, unless `adds`: then the rows that do not are added to the table in the
        same commit. `append`: add the rows, replacing none (the caller knows the table holds
        none of them). `metadata` is recorded with the commit (beside the rules)."""
        writer = df.write.format("delta").mode("append" if append else "overwrite")
        whole = where is None and not append  # the table's every row replaced
        if whole:
            writer = writer.option("overwriteSchema", "true")
            if statistics := CATALOGUE[name].statistics:
                writer = writer.option(STATISTICS_PROPERTY, ",".join(statistics))
        elif not append:
            writer = writer.option("replaceWhere", where)
        if rules is not None or metadata:
            info = {**({RULES_KEY: str(rules)} if rules is not None else {}), **(metadata or {})}
            writer = writer.option("userMetadata", json.dumps(info))
        # rows outside the predicate are added only with Delta's check of them turned off
        unchecked = adds and where is not None and not append
        with self._conf(REPLACE_WHERE_CHECK, "false") if unchecked else nullcontext():
            # a table written whole may be new, or have moved: its catalog entry is checked
            return self._committed(writer, name, check_location=whole)

    @contextmanager
    def described(self, what: str) -> Iterator[None]:
        """Name the Spark jobs this thread starts (in the event log, `bench/eventlog.py`)."""
        context = self.spark.sparkContext
        before = context.getLocalProperty(JOB_DESCRIPTION)
        context.setJobDescription(what)
        try:
            yield
        finally:
            context.setLocalProperty(JOB_DESCRIPTION, before)  # type: ignore[arg-type]

    @contextmanager
    def _conf(self, key: str, value: str) -> Iterator[None]:
        """A session setting changed for the duration of one call (the callers of this run
        one write at a time)."""
        self.spark.conf.set(key, value)
        try:
            yield
        finally:
            self.spark.conf.unset(key)

    def append(self, df: DataFrame, name: str) -> TableWrite:
        """Add rows to table `name` (the bookkeeping tables) in one commit."""
        # a bookkeeping table of an older lake gains the columns added since
        writer = df.write.format("delta").mode("append").option("mergeSchema", "true")
        return self._committed(writer, name)

    def _committed(self, writer, name: str, *, check_location: bool = False) -> TableWrite:
        path = self.table_path(name)
        before = self.version(name) if self.exists(name) else None
        with self.described(f"write {name}"):
            writer.save(path)
            commit = self._last_commit(path)
        if before is not None and int(commit["version"]) == before:
            # replaceWhere with nothing to replace and no rows: Delta commits nothing
            return TableWrite(name, 0, before, path, committed=False)
        self._commits += 1
        if self.after_commit is not None:
            self.after_commit(self._commits)
        self._metadata.pop(name, None)
        if before is None or check_location or not self._metastore_kept():
            self._registrations.append(
                self._registrar.submit(self.register, name, check_location=check_location)
            )
        metrics = commit.get("operationMetrics") or {}
        # a replaceWhere without deletion vectors rewrites the files it touches: their other
        # rows are "copied", not written by this run
        rows = int(metrics.get("numOutputRows", 0)) - int(metrics.get("numCopiedRows", 0))
        removed = int(metrics.get("numDeletedRows", 0))
        return TableWrite(name, rows, int(commit["version"]), path, removed=removed)

    def exists(self, name: str) -> bool:
        return self._is_delta(self.table_path(name))

    def read(
        self, name: str, *, rules: Rules | None = None, version: int | None = None
    ) -> DataFrame:
        """Table `name` (as of `version`, if given); with `rules`, refuse a table built under
        another preset."""
        path = self.table_path(name)
        if not self._is_delta(path):
            raise LakeError(f"table {name} not found at {path}: promote the stage before it first")
        if rules is not None and (built := self.table_rules(name)) != rules:
            raise RulesMismatchError(
                f"{name} was built with --rules {built}, not {rules}: "
                f"run `stedi-lake promote trusted --rules {rules}` first"
            )
        reader = self.spark.read.format("delta")
        if version is not None:
            earliest, latest = self._versions(path)[-1], self.version(name)
            if not earliest <= version <= latest:
                raise LakeError(
                    f"{name} has no version {version} (versions {earliest} to {latest})"
                )
            reader = reader.option("versionAsOf", version)
        return reader.load(path)

    def version(self, name: str) -> int:
        return int(self._last_commit(self.table_path(name))["version"])

    def history(self, name: str, limit: int | None = None) -> list[dict]:
        """The table's Delta history, newest first (DESCRIBE HISTORY)."""
        from delta.tables import DeltaTable

        path = self.table_path(name)
        if not self._is_delta(path):
            raise LakeError(f"table {name} not found at {path}: promote the stage before it first")
        table = DeltaTable.forPath(self.spark, path)
        history = table.history(limit) if limit else table.history()
        return [row.asDict(recursive=True) for row in history.collect()]

    def table_rules(self, name: str) -> Rules | None:
        """The rules preset of the latest commit that states one (maintenance commits such as
        VACUUM carry none of their own)."""
        value = self.table_metadata(name).get(RULES_KEY)
        return Rules(value) if value else None

    def table_metadata(self, name: str) -> dict[str, str]:
        """What the latest write that recorded metadata recorded (`write(metadata=...)`)."""
        return json.loads(self._user_metadata(name) or "{}")

    def _user_metadata(self, name: str) -> str | None:
        """The user metadata of the table's latest commit that has some (read once, until
        this Lake commits to the table)."""
        if name not in self._metadata:
            commits = islice(self._commits_newest_first(self.table_path(name)), METADATA_DEPTH)
            found = (commit.get("userMetadata") for commit in commits)
            self._metadata[name] = next((metadata for metadata in found if metadata), None)
        return self._metadata[name]

    @contextmanager
    def _stating_rules(self, name: str) -> Iterator[None]:
        """Commits made inside (MERGE, VACUUM) carry the table's user metadata (its rules), so
        it survives a purge of the versions before them."""
        key = "spark.databricks.delta.commitInfo.userMetadata"
        metadata = self._user_metadata(name)
        if metadata:
            self.spark.conf.set(key, metadata)
        try:
            yield
        finally:
            self.spark.conf.unset(key)

    def registered(self) -> None:
        """Wait until every table written so far is registered in the catalog."""
        pending, self._registrations = self._registrations, []
        for registration in pending:
            registration.result()

    def _metastore_kept(self) -> bool:
        """Whether the session's embedded metastore (its Derby folder) exists. A table that
        existed before a commit was registered then when it was created or last written whole,
        so a commit that adds to it need not ask the metastore again: its first use (booting
        the metastore) cost a run with one new file about a second (docs/performance.md). With
        an external metastore (Glue), or once the folder is gone, every commit registers."""
        return self._derby_folder is not None and self._derby_folder.is_dir()

    @cached_property
    def _derby_folder(self) -> Path | None:
        """The embedded metastore's folder, from the session's settings (read once: a
        session's metastore does not change); None with an external metastore."""
        url = self.spark.sparkContext.getConf().get(METASTORE_URL) or ""
        derby = re.search(r"databaseName=([^;]+)", url)
        return Path(derby.group(1)) if derby else None

    @property
    def curated_database(self) -> str:
        """The database holding only the curated tables (what data scientists are granted)."""
        return f"{self.database}_curated"

    def register(self, name: str, *, check_location: bool = True) -> None:
        """Point `database.name` at the table's location (external table; idempotent), and a
        curated table's `curated_database.name` too. A registered table's location is read (a
        Delta snapshot) only if `check_location`."""
        databases = [self.database]
        if CATALOGUE[name].zone == Zone.CURATED:
            databases.append(self.curated_database)
        for database in databases:
            self._register_in(database, name, check_location=check_location)

    def _register_in(self, database: str, name: str, *, check_location: bool) -> None:
        path, qualified = self.table_path(name), f"{database}.{name}"
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
        if self.spark.catalog.tableExists(qualified):
            if not check_location:
                return
            location = self.spark.sql(f"DESCRIBE DETAIL {qualified}").first()["location"]
            if normalise_root(location) == normalise_root(path):
                return
            self.spark.sql(f"DROP TABLE {qualified}")  # external: drops the name, not the data
        self.spark.sql(f"CREATE TABLE {qualified} USING DELTA LOCATION '{path}'")

    def status(self, spec: TableSpec) -> TableStatus:
        path = self.table_path(spec.name)
        if not self._is_delta(path):
            return TableStatus(spec.name, str(spec.zone), None, None, path)
        rows = self.spark.read.format("delta").load(path).count()
        version = int(self._last_commit(path)["version"])
        return TableStatus(spec.name, str(spec.zone), rows, version, path)

    # -- erasure --------------------------------------------------------------------------
    def delete_rows(
        self,
        name: str,
        keys: list[str],
        matches: Callable[[Column], Column],
        *,
        update: dict[str, Column] | None = None,
    ) -> int:
        """Delete the rows of table `name` for which `matches(key)` holds for some key (the
        condition refers to the table as `t`), in one commit if any; the number deleted. The
        keys travel as a small DataFrame joined by MERGE: the commit records `t.x = s.key`,
        never the keys themselves. With `update`, those rows get these values instead."""
        from delta.tables import DeltaTable

        if not keys:
            return 0
        key_schema = T.StructType([T.StructField("key", T.StringType())])
        source = local_frame(self.spark, [{"key": k} for k in keys], key_schema).alias("s")
        target = self.read(name).alias("t")
        if not target.join(source, matches(F.col("s.key")), "left_semi").limit(1).count():
            return 0
        table = DeltaTable.forPath(self.spark, self.table_path(name)).alias("t")
        with self._stating_rules(name):
            merge = table.merge(source, matches(F.col("s.key")))
            if update is None:
                merge.whenMatchedDelete().execute()
            else:
                merge.whenMatchedUpdate(set=update).execute()
        self._commits += 1
        self._metadata.pop(name, None)
        metrics = self._last_commit(self.table_path(name)).get("operationMetrics") or {}
        counted = "numTargetRowsDeleted" if update is None else "numTargetRowsUpdated"
        return int(metrics.get(counted, 0))

    def compact(self, name: str) -> int:
        """Rewrite the table's small files into few (OPTIMIZE); the number of files replaced.
        The rows do not change."""
        with self._stating_rules(name):
            self.spark.sql(f"OPTIMIZE delta.`{self.table_path(name)}`").collect()
        self._metadata.pop(name, None)
        commit = self._last_commit(self.table_path(name))
        if commit.get("operation") != "OPTIMIZE":
            return 0
        return int((commit.get("operationMetrics") or {}).get("numRemovedFiles", 0))

    def vacuum(self, name: str, *, retention_hours: float) -> None:
        """Delete the data files no version of the last `retention_hours` uses (a retention
        below Delta's one-week safety check is the operator's explicit choice)."""
        check = "spark.databricks.delta.retentionDurationCheck.enabled"
        path = self.table_path(name)
        with self._conf(check, "false"), self._stating_rules(name):
            self.spark.sql(f"VACUUM delta.`{path}` RETAIN {retention_hours:g} HOURS").collect()
        self._metadata.pop(name, None)

    def purge_history(self, name: str) -> None:
        """Make table `name`'s current version its only one: rewrite files carrying deletion
        vectors, delete every data file it no longer uses (VACUUM with a zero retention, the
        retention safety check lifted for this call only), then checkpoint the log and delete
        the commits and checkpoints before it. Earlier versions can no longer be read."""
        path = self.table_path(name)
        properties = self.spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["properties"]
        if properties.get("delta.enableDeletionVectors") == "true":
            self.spark.sql(f"REORG TABLE delta.`{path}` APPLY (PURGE)")
        check = "spark.databricks.delta.retentionDurationCheck.enabled"
        with self._conf(check, "false"), self._stating_rules(name):
            self.spark.sql(f"VACUUM delta.`{path}` RETAIN 0 HOURS")
        jvm = self.spark._jvm
        delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(
            self.spark._jsparkSession, path
        )
        delta_log.checkpoint()
        latest = self.version(name)
        fs, log_dir = self._hadoop(f"{path}/_delta_log")
        for status in fs.listStatus(log_dir):
            file = status.getPath()
            match = re.match(r"(\d{20})\.", file.getName())
            if match and int(match.group(1)) < latest:
                fs.delete(file, False)
        jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
        self._metadata.pop(name, None)

    def landing_exists(self, dataset: Dataset) -> bool:
        return self._exists(self.landing_dir(dataset))

    def landing_lines(self, relative: str) -> list[bytes]:
        """The lines of a landing file (its path under the root), as bytes (a .gz file's
        decompressed; one that does not decompress has none)."""
        return self._landing_bytes(relative).splitlines()

    def _landing_bytes(self, relative: str) -> bytes:
        data = self.read_file(relative) or b""
        if not relative.endswith(".gz"):
            return data
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return b""

    def read_file(self, relative: str) -> bytes | None:
        """The bytes of `<lake root>/<relative>`, or None if there is no such file."""
        fs, path = self._hadoop(f"{self.root}/{relative}")
        return self._read_bytes(fs, path) if fs.exists(path) else None

    def write_file(self, relative: str, data: bytes) -> None:
        """Write `<lake root>/<relative>` whole: a local file is replaced atomically (readable
        by its owner only), an S3 object by one PUT."""
        if is_local_path(self.root):
            target = local_path(self.root) / relative
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = target.with_name(f".{target.name}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
            return
        fs, path = self._hadoop(f"{self.root}/{relative}")
        out = fs.create(path, True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()

    def delete_file(self, relative: str) -> None:
        fs, path = self._hadoop(f"{self.root}/{relative}")
        fs.delete(path, False)

    def files_in(self, relative: str) -> list[str]:
        """The names of the files directly in folder `<lake root>/<relative>` (none if it
        does not exist)."""
        fs, path = self._hadoop(f"{self.root}/{relative}")
        if not fs.exists(path):
            return []
        return sorted(s.getPath().getName() for s in fs.listStatus(path) if s.isFile())

    def rewrite_landing_file(self, relative: str, keep: Callable[[bytes], bool]) -> str:
        """Rewrite a landing file (its path under the root) with only the lines `keep` keeps
        (lines as bytes, with their line ends); its new version. Its bookmarks follow it
        (`_rebookmark`): a rewrite is not a new delivery."""
        lines = self._landing_bytes(relative).splitlines(True)
        kept = b"".join(line for line in lines if keep(line))
        self.write_file(relative, gzip.compress(kept) if relative.endswith(".gz") else kept)
        fs, path = self._hadoop(f"{self.root}/{relative}")
        version = _version(fs.getFileStatus(path))
        self._rebookmark(relative, version)
        return version

    def _rebookmark(self, relative: str, version: str) -> None:
        """Bookmark the file's new `version` wherever the file is bookmarked (each stage, as
        the run that processed it), so later runs keep taking it as processed."""
        if not self.exists("processed_files"):
            return
        marks = self.read("processed_files").filter(F.col("path") == relative)
        rows = [row.asDict() | {"version": version} for row in marks.collect()]
        unique = list({(r["stage"], r["run_id"]): r for r in rows}.values())
        if unique:
            schema = spark_schema(CATALOGUE["processed_files"].contract)
            self.append(local_frame(self.spark, unique, schema), "processed_files")

    def table_property(self, name: str, key: str) -> str | None:
        """A table property of table `name` (None: not set, or no such table)."""
        if not self.exists(name):
            return None
        detail = self.spark.sql(f"DESCRIBE DETAIL delta.`{self.table_path(name)}`").first()
        return detail["properties"].get(key)

    def set_table_property(self, name: str, key: str, value: str) -> None:
        with self._stating_rules(name):
            self.spark.sql(
                f"ALTER TABLE delta.`{self.table_path(name)}` SET TBLPROPERTIES "
                f"('{key}' = '{value}')"
            )
        self._metadata.pop(name, None)

    def _is_delta(self, path: str) -> bool:
        """Whether a Delta table with at least one commit is at `path` (a run killed during
        a table's first write leaves a `_delta_log` folder without any)."""
        from delta.tables import DeltaTable

        return self._exists(f"{path}/_delta_log") and DeltaTable.isDeltaTable(self.spark, path)

    def _read_bytes(self, fs, path) -> bytes:
        """The whole content of a file (`fs`, `path`: as `_hadoop` gives them)."""
        stream = fs.open(path)
        try:
            return bytes(self.spark._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def _last_commit(self, path: str) -> dict:
        """The table's latest commit: `version` and its commit info (`operationMetrics`,
        `userMetadata`, ...)."""
        return next(self._commits_newest_first(path))

    def _versions(self, path: str) -> list[int]:
        """The versions of the table's commit files in its log, newest first."""
        fs, log = self._hadoop(f"{path}/_delta_log")
        names = (status.getPath().getName() for status in fs.listStatus(log))
        return sorted((int(m[1]) for n in names if (m := COMMIT_FILE.fullmatch(n))), reverse=True)

    def _commits_newest_first(self, path: str) -> Iterator[dict]:
        """The table's commits, newest first, each read from its commit file in the Delta log
        (`_delta_log/<20-digit version>.json`, one JSON action per line; the commit info is
        the action DESCRIBE HISTORY shows). A few milliseconds per commit, where DESCRIBE
        HISTORY costs a Spark job: 0.2 s warm and 1.8 s the first time, for each write."""
        fs = self._hadoop(f"{path}/_delta_log")[0]
        for version in self._versions(path):
            text = self._read_bytes(fs, self._hadoop(f"{path}/_delta_log/{version:020d}.json")[1])
            actions = (json.loads(line) for line in text.decode("utf-8").splitlines() if line)
            info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
            yield {**info, "version": version}
