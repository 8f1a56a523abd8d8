"""The lake's Delta tables: read, overwrite, replace_where and append, each one atomic Delta
commit; a table's versions, history, rules and properties; and deleting rows by key (an
erasure). A `Lake` holds the parts it is made of: `storage` (its files), `log` (its tables'
commits), `catalog` (their names) and `landing` (the delivered files)."""

import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import islice

from pydantic import BaseModel
from pyspark.sql import Column, DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.utils import is_remote

from stedi_lakehouse.contracts.expectations import IDENTIFIERS
from stedi_lakehouse.contracts.spark import spark_schema
from stedi_lakehouse.contracts.tables import CATALOGUE, Table, TableSpec, Zone
from stedi_lakehouse.errors import LakeError, RulesMismatchError
from stedi_lakehouse.lake.catalog import Catalog
from stedi_lakehouse.lake.delta_log import DeltaLog
from stedi_lakehouse.lake.landing import Landing
from stedi_lakehouse.lake.layout import normalise_root, table_path
from stedi_lakehouse.lake.status import LakeLog, TableStatus
from stedi_lakehouse.lake.storage import Storage
from stedi_lakehouse.presets import Rules

RULES_KEY = "rules"
STATISTICS_PROPERTY = "delta.dataSkippingStatsColumns"
# Off for a write that replaces some rows and adds others (replace_where(adds=True)).
REPLACE_WHERE_CHECK = "spark.databricks.delta.replaceWhere.constraintCheck.enabled"
JOB_DESCRIPTION = "spark.job.description"
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
LOWER_CASE_PROPERTY = "stedi.lowerCase"  # the fields a lake made before 0.3 had lowered
METADATA_DEPTH = 20  # how many recent commits are searched for the latest user metadata


def local_frame(spark: SparkSession, rows: list[dict], schema: T.StructType) -> DataFrame:
    """A small DataFrame of rows the driver holds (bookmarks, run records, keys), with exactly
    `schema`. Sent to the JVM as an Arrow table where pyarrow is installed: `createDataFrame`
    of Python rows would start a Python worker for them (`bench/micro.py`)."""
    try:
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_schema
    except ImportError:
        return spark.createDataFrame(
            [tuple(row.get(f) for f in schema.names) for row in rows], schema
        )
    table = pa.Table.from_pylist(rows, schema=to_arrow_schema(schema))
    return spark.createDataFrame(table, schema=schema)


def distinct_values(df: DataFrame, column: str | Column) -> set[str]:
    """The distinct non-null values of one column (or expression) of `df`, on the driver: the
    small sets of keys the stages and the erasure look up."""
    rows = df.select(column).distinct().collect()
    return {r[0] for r in rows if r[0] is not None}


def records_frame(
    spark: SparkSession, contract: type[BaseModel], records: Sequence[BaseModel]
) -> DataFrame:
    """The rows of records the lake writes about itself, each built (and so checked) by its
    Pydantic `contract`, with the Spark schema derived from that contract; in one partition,
    so that appending them adds one file to the table, not one per core."""
    rows = [r.model_dump() for r in records]
    return local_frame(spark, rows, spark_schema(contract)).coalesce(1)


@dataclass(frozen=True)
class TableWrite:
    table: str
    rows: int  # rows written by this commit
    version: int
    path: str
    seconds: float = 0.0  # computing and writing the table (Spark is lazy: the stage's work)
    removed: int = 0  # rows the commit replaced (0 for a table written whole the first time)
    committed: bool = True  # False: nothing to replace and nothing to write, so no new version


class Lake:
    """A lake root seen through one SparkSession, with its tables registered in `database`.
    `after_commit(n)` is called after each commit with the number of commits so far (the
    crash-safety tests stop a run there)."""

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
        self.after_commit = after_commit
        self.storage = Storage(self.root)
        self.log = DeltaLog(self.storage)
        self.catalog = Catalog(spark, self.root, database, self.shared)
        self.landing = Landing(self)
        self._commits = 0
        self._metadata: dict[str, str | None] = {}  # table -> its latest user metadata

    def table_path(self, name: str) -> str:
        return table_path(self.root, name)

    def tables(self) -> list[str]:
        """The names of the tables the lake holds."""
        return [name for name in CATALOGUE if self.exists(name)]

    def adopt_metastore(self) -> None:
        """Register every table the session's embedded metastore may lack for this lake
        (`Catalog.unregistered`). It may be new (its folder deleted, or a half made one
        removed); hold another lake's entries (a lake copied or moved with its metastore, two
        lakes sharing one); or lack a table made since, whose registration a killed command
        never finished, or another machine made (an S3 lake). Call before the metastore's
        first use."""
        if not self.catalog.embedded:
            return
        tables = self.tables()
        missing = self.catalog.unregistered(tables)
        if not missing:
            return
        # first what stays true if this is cut short, then what is true once it is done
        self.catalog.mark_kept([name for name in tables if name not in missing])
        for name in missing:
            self.catalog.register(name)
        self.catalog.mark_kept(tables)

    def check_root(self) -> None:
        if not self.storage.exists(self.root):
            raise LakeError(f"lake root {self.root} does not exist")

    # -- writing --------------------------------------------------------------------------
    def overwrite(
        self, df: DataFrame, name: str, *, rules: Rules | None, metadata: dict | None = None
    ) -> TableWrite:
        """Replace every row of table `name` (creating it) in one commit; register it."""
        writer = self._writer(df, "overwrite", rules, metadata).option("overwriteSchema", "true")
        if statistics := CATALOGUE[Table(name)].statistics:
            writer = writer.option(STATISTICS_PROPERTY, ",".join(statistics))
        # a table written whole may be new, or have moved: its catalog entry is checked
        return self._committed(writer, name, check_location=True)

    def replace_where(
        self,
        df: DataFrame,
        name: str,
        where: str,
        *,
        rules: Rules | None,
        metadata: dict | None = None,
        adds: bool = False,
    ) -> TableWrite:
        """Replace exactly the rows of table `name` matching the SQL predicate `where` by the
        rows of `df`, in one commit. Every row of `df` must match `where`, unless `adds`: then
        the rows that do not are added to the table in the same commit."""
        writer = self._writer(df, "overwrite", rules, metadata).option("replaceWhere", where)
        # rows outside the predicate are added only with Delta's check of them turned off
        with self.setting(REPLACE_WHERE_CHECK, "false") if adds else nullcontext():
            return self._committed(writer, name)

    def append(
        self, df: DataFrame, name: str, *, rules: Rules | None = None, metadata: dict | None = None
    ) -> TableWrite:
        """Add the rows of `df` to table `name`, replacing none, in one commit."""
        writer = self._writer(df, "append", rules, metadata)
        if CATALOGUE[Table(name)].zone is Zone.SYSTEM:
            # a bookkeeping table of an older lake gains the columns added since
            writer = writer.option("mergeSchema", "true")
        return self._committed(writer, name)

    def _writer(
        self, df: DataFrame, mode: str, rules: Rules | None, metadata: dict | None
    ) -> DataFrameWriter:
        writer = df.write.format("delta").mode(mode)
        if rules is not None or metadata:
            info = {**({RULES_KEY: str(rules)} if rules is not None else {}), **(metadata or {})}
            writer = writer.option("userMetadata", json.dumps(info))
        return writer

    def _committed(self, writer, name: str, *, check_location: bool = False) -> TableWrite:
        path = self.table_path(name)
        before = self.version(name) if self.exists(name) else None
        with self.described(f"write {name}"):
            writer.save(path)
            commit = self.log.last_commit(path)
        if before is not None and int(commit["version"]) == before:
            # replaceWhere with nothing to replace and no rows: Delta commits nothing
            return TableWrite(name, 0, before, path, committed=False)
        self.changed(name)
        self._commits += 1
        if self.after_commit is not None:
            self.after_commit(self._commits)
        if before is None or check_location or not self.catalog.metastore_kept():
            # a new table's name may still point at a table of the same name elsewhere
            self.catalog.register_soon(name, check_location=check_location or before is None)
        metrics = commit.get("operationMetrics") or {}
        # a replaceWhere without deletion vectors rewrites the files it touches: their other
        # rows are "copied", not written by this run
        rows = int(metrics.get("numOutputRows", 0)) - int(metrics.get("numCopiedRows", 0))
        removed = int(metrics.get("numDeletedRows", 0))
        return TableWrite(name, rows, int(commit["version"]), path, removed=removed)

    def changed(self, name: str) -> None:
        """Take note of a commit to table `name` (its latest metadata is read again)."""
        self._metadata.pop(name, None)

    @contextmanager
    def described(self, what: str) -> Iterator[None]:
        """Name the Spark jobs this thread starts (in the event log, `bench/eventlog.py`)."""
        if is_remote():
            yield  # a Spark Connect client has no SparkContext to name jobs with
            return
        context = self.spark.sparkContext
        before = context.getLocalProperty(JOB_DESCRIPTION)
        context.setJobDescription(what)
        try:
            yield
        finally:
            context.setLocalProperty(JOB_DESCRIPTION, before)  # type: ignore[arg-type]

    @contextmanager
    def setting(self, key: str, value: str) -> Iterator[None]:
        """A session setting changed for the duration of one call (the callers of this run
        one write at a time)."""
        self.spark.conf.set(key, value)
        try:
            yield
        finally:
            self.spark.conf.unset(key)

    # -- reading --------------------------------------------------------------------------
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
            earliest, latest = self.log.versions(path)[-1], self.version(name)
            if not earliest <= version <= latest:
                raise LakeError(
                    f"{name} has no version {version} (versions {earliest} to {latest})"
                )
            reader = reader.option("versionAsOf", version)
        return reader.load(path)

    def version(self, name: str) -> int:
        return int(self.log.last_commit(self.table_path(name))["version"])

    def history(self, name: str, limit: int | None = None) -> list[dict]:
        """The table's Delta history, newest first (DESCRIBE HISTORY)."""
        path = self.table_path(name)
        if not self._is_delta(path):
            raise LakeError(f"table {name} not found at {path}: promote the stage before it first")
        latest = f" LIMIT {limit}" if limit else ""
        history = self.spark.sql(f"DESCRIBE HISTORY delta.`{path}`{latest}")
        return [row.asDict(recursive=True) for row in history.collect()]

    def status(self, spec: TableSpec) -> TableStatus:
        """Rows and version as Spark counts them (`lake.status` reads them without a JVM)."""
        path = self.table_path(spec.name)
        if not self._is_delta(path):
            return TableStatus(spec.name, str(spec.zone), None, None, path)
        rows = self.spark.read.format("delta").load(path).count()
        version = int(self.log.last_commit(path)["version"])
        return TableStatus(spec.name, str(spec.zone), rows, version, path)

    def shared(self, name: str) -> bool:
        """Whether table `name` may be granted to data scientists: curated, with no direct
        identifier column under the rules it was written with."""
        spec = CATALOGUE[Table(name)]
        if spec.zone != Zone.CURATED:
            return False
        return not IDENTIFIERS & set(spec.contract_for(self.table_rules(name)).model_fields)

    def table_rules(self, name: str) -> Rules | None:
        """The rules preset of the latest commit that states one (maintenance commits such as
        VACUUM carry none of their own)."""
        value = self.table_metadata(name).get(RULES_KEY)
        return Rules(value) if value else None

    def table_metadata(self, name: str) -> dict[str, str]:
        """What the latest write that recorded metadata recorded (`metadata=`)."""
        return json.loads(self._user_metadata(name) or "{}")

    def _user_metadata(self, name: str) -> str | None:
        """The user metadata of the table's latest commit that has some (read once, until
        this Lake commits to the table)."""
        if name not in self._metadata:
            commits = islice(self.log.commits_newest_first(self.table_path(name)), METADATA_DEPTH)
            found = (commit.get("userMetadata") for commit in commits)
            self._metadata[name] = next((metadata for metadata in found if metadata), None)
        return self._metadata[name]

    @contextmanager
    def stating_rules(self, name: str) -> Iterator[None]:
        """Commits made inside (MERGE, VACUUM) carry the table's user metadata (its rules), so
        it survives a purge of the versions before them."""
        metadata = self._user_metadata(name)
        if metadata:
            self.spark.conf.set(USER_METADATA, metadata)
        try:
            yield
        finally:
            self.spark.conf.unset(USER_METADATA)

    def table_property(self, name: str, key: str) -> str | None:
        """A table property of table `name` (None: not set, or no such table), read from its
        Delta log with delta-rs: no Spark job."""
        delta = LakeLog(self.root).open(name)
        return None if delta is None else delta.metadata().configuration.get(key)

    def set_table_property(self, name: str, key: str, value: str) -> None:
        with self.stating_rules(name):
            self.spark.sql(
                f"ALTER TABLE delta.`{self.table_path(name)}` SET TBLPROPERTIES "
                f"('{key}' = '{value}')"
            )
        self.changed(name)

    def to_lower_case(
        self,
        name: str,
        fields: Mapping[str, str],
        *,
        composed: Mapping[str, str],
        metadata: dict[str, str],
    ) -> None:
        """Rewrite the values of the columns `fields` names that differ from their SQL
        expression there (lowered) in table `name`, then record `metadata` beside the table's
        own. First the values beyond ASCII that differ from their expression in `composed`
        (lowered and composed: reflection, which an UPDATE refuses) are set to it by a MERGE
        each, since the UPDATE's commit records `metadata` (the work done). Then the UPDATE,
        and a commit of the properties, made even when no row changed (Delta commits nothing
        for an UPDATE that matches none)."""
        for field, expression in composed.items():
            beyond_ascii = self.read(name).filter(F.octet_length(field) != F.length(field))
            values = beyond_ascii.select(F.col(field).alias("v"), F.expr(expression).alias("n"))
            spelt = values.filter(F.col("v") != F.col("n")).select("v").distinct().collect()
            keys = sorted(r[0] for r in spelt)
            self.delete_rows(name, keys, f"t.`{field}` = s.key", update={field: expression})
        path, info = self.table_path(name), self.table_metadata(name) | metadata
        lowered = ", ".join(f"{f} = {kept}" for f, kept in fields.items())
        other = " OR ".join(f"{f} <> {kept}" for f, kept in fields.items())
        with self.setting(USER_METADATA, json.dumps(info)), self.described(f"lower {name}"):
            self.spark.sql(f"UPDATE delta.`{path}` SET {lowered} WHERE {other}")
            self.spark.sql(
                f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('{LOWER_CASE_PROPERTY}' = "
                f"'{','.join(fields)}')"
            )
        self.changed(name)

    def _is_delta(self, path: str) -> bool:
        """Whether a Delta table with at least one commit is at `path` (a run killed during
        a table's first write leaves a `_delta_log` folder without any)."""
        return bool(self.log.versions(path))

    # -- erasure --------------------------------------------------------------------------
    def delete_rows(
        self,
        name: str,
        keys: list[str],
        condition: str,
        *,
        update: dict[str, str] | None = None,
    ) -> int:
        """Delete the rows of table `name` that match some key, in one commit if any; the
        number deleted. `condition` is SQL naming the table's row `t` and a key `s.key`. The
        keys travel as a small DataFrame joined by MERGE: the commit records the condition,
        never the keys themselves. With `update` (column -> SQL expression), those rows get
        these values instead. Plain SQL, so it runs in-process and through a lake server."""
        if not keys:
            return 0
        key_schema = T.StructType([T.StructField("key", T.StringType())])
        source = local_frame(self.spark, [{"key": k} for k in keys], key_schema)
        target = self.read(name).alias("t")
        if not target.join(source.alias("s"), F.expr(condition), "left_semi").limit(1).count():
            return 0
        view = f"erased_keys_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        action = "DELETE"
        if update is not None:
            action = "UPDATE SET " + ", ".join(f"t.`{c}` = {v}" for c, v in update.items())
        try:
            with self.stating_rules(name):
                self.spark.sql(
                    f"MERGE INTO delta.`{self.table_path(name)}` AS t USING {view} AS s "
                    f"ON {condition} WHEN MATCHED THEN {action}"
                )
        finally:
            self.spark.catalog.dropTempView(view)
        self.changed(name)
        self._commits += 1
        metrics = self.log.last_commit(self.table_path(name)).get("operationMetrics") or {}
        counted = "numTargetRowsDeleted" if update is None else "numTargetRowsUpdated"
        return int(metrics.get(counted, 0))
