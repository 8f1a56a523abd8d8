"""The lake as its Delta logs state it, read with delta-rs: table versions, row counts, small
files and history, and the `runs` and `quality` records. `stedi-lake status` and `history`
need nothing more, so they start no JVM and never import pyspark, with or without a lake
server; a run counts its tables' small files here.

Row counts come from the add actions' `numRecords` statistics, as Spark's own `count()` of a
Delta table does (the lake writes no deletion vectors, which those statistics leave out); if a
file lacks them, delta-rs's query engine counts the table instead.
"""

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stedi_lakehouse.contracts.tables import CATALOGUE, Table, TableSpec
from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.lake.files import S3A_NAMES
from stedi_lakehouse.lake.layout import is_local_path, local_path, s3_region_and_endpoint

if TYPE_CHECKING:
    from deltalake import DeltaTable

# An S3 error body's code and message ("<Code>NoSuchBucket</Code><Message>...</Message>").
S3_ERROR = re.compile(r"<Code>([^<]+)</Code>\s*<Message>([^<]+)</Message>")
NOT_FOUND = "table {name} not found at {path}: promote the stage before it first"


@dataclass(frozen=True)
class TableStatus:
    table: str
    zone: str
    rows: int | None
    version: int | None
    path: str


def storage_options(root: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """delta-rs options for an s3:// or s3a:// root, mirroring `session.s3a_options`: region
    and an S3-compatible endpoint from the standard variables, path-style; credentials are
    left to the AWS chain delta-rs follows itself (environment, profiles, roles)."""
    if is_local_path(root):
        return {}
    options = {}
    region, endpoint = s3_region_and_endpoint(environ)
    if region:
        options["AWS_REGION"] = region
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        options["AWS_ALLOW_HTTP"] = str(endpoint.startswith("http:")).lower()
    return options


class LakeLog:
    """A lake root's tables, seen through their Delta logs."""

    def __init__(self, root: str):
        if is_local_path(root):
            path = local_path(root)
            if not path.is_dir():
                raise LakeError(f"lake root {path} does not exist (or is not a folder)")
            self.root = str(path.resolve())
        else:
            self.root = root.rstrip("/")
        self.options = storage_options(self.root)

    def table_path(self, name: str) -> str:
        spec = CATALOGUE[Table(name)]
        return f"{self.root}/delta/{spec.zone}/{spec.name}"

    def _reached(self, exc: OSError) -> LakeError:
        """An unreachable store as one line: the store's own error code and message."""
        said = S3_ERROR.search(str(exc))
        if said is None:
            return LakeError(f"cannot reach {self.root}: {str(exc).splitlines()[0]}")
        code, message = said.groups()
        return LakeError(f"cannot reach {self.root}: {S3A_NAMES.get(code, code)}: {message}")

    def open(self, name: str) -> "DeltaTable | None":
        """Table `name` at its latest version; None where no commit was ever made."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.table_path(name), storage_options=self.options)
        except TableNotFoundError:  # also a first write killed before its commit
            return None
        except OSError as exc:
            raise self._reached(exc) from None

    def status(self, spec: TableSpec) -> TableStatus:
        path = self.table_path(spec.name)
        delta = self.open(spec.name)
        if delta is None:
            return TableStatus(spec.name, str(spec.zone), None, None, path)
        return TableStatus(spec.name, str(spec.zone), row_count(delta), delta.version(), path)

    def statuses(self) -> list[TableStatus]:
        """Every catalogue table's status; a non-local root holding none is a LakeError, as
        it is for `run` (the root must exist)."""
        found = [self.status(spec) for spec in CATALOGUE.values()]
        if all(s.version is None for s in found) and not is_local_path(self.root):
            self._check_remote_root()
        return found

    def _check_remote_root(self) -> None:
        import boto3

        bucket, _, prefix = self.root.split("://", 1)[1].partition("/")
        listed = boto3.client("s3").list_objects_v2(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1
        )
        if not listed.get("KeyCount"):
            raise LakeError(f"lake root {self.root} does not exist")

    def small_files(self, name: str, below_bytes: int) -> int:
        """How many data files of table `name`'s latest version are under `below_bytes` (from
        the log's add actions: no data file is opened); 0 where it was never written."""
        delta = self.open(name)
        if delta is None:
            return 0
        sizes = delta.get_add_actions(flatten=True).column("size_bytes").to_pylist()
        return sum(size < below_bytes for size in sizes)

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first, in the shape of Spark's DESCRIBE HISTORY rows."""
        delta = self.open(name)
        if delta is None:
            raise LakeError(NOT_FOUND.format(name=name, path=self.table_path(name)))
        return [_as_history_row(commit) for commit in delta.history(limit)]

    def newest_runs(self, limit: int) -> list[dict[str, Any]]:
        """The `runs` records of the latest `limit` runs, newest first."""
        order = "ORDER BY started_at DESC"
        return self.query("runs", f"SELECT * FROM runs {order} LIMIT {int(limit)}")

    def latest_checks(self) -> list[dict[str, Any]]:
        """The `quality` rows of each table's latest check (as `quality.latest_checks`)."""
        latest = 'SELECT "table", max(checked_at) AS at FROM quality GROUP BY "table"'
        return self.query(
            "quality",
            f'SELECT q.* FROM quality q JOIN ({latest}) l ON q."table" = l."table" '
            "AND q.checked_at = l.at",
        )

    def rows(self, name: str, columns: Sequence[str]) -> list[dict[str, Any]]:
        """Every row of table `name`, these columns of it (null where the table has no such
        column: one written before the column was added); none if it was never written."""
        delta = self.open(name)
        if delta is None:
            return []
        have = {field.name for field in delta.schema().fields}
        chosen = ", ".join(f'"{c}"' if c in have else f'NULL AS "{c}"' for c in columns)
        return query_rows(delta, name, f"SELECT {chosen} FROM {name}")

    def query(self, name: str, sql: str) -> list[dict[str, Any]]:
        """The rows `sql` gives on table `name` (DataFusion, inside delta-rs; Arrow data
        without pyarrow); none if the table was never written."""
        delta = self.open(name)
        return [] if delta is None else query_rows(delta, name, sql)


def query_rows(delta: "DeltaTable", view: str, sql: str) -> list[dict[str, Any]]:
    from deltalake import QueryBuilder

    table = QueryBuilder().register(view, delta).execute(sql).read_all()
    names = table.column_names
    columns = [table.column(column).to_pylist() for column in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def row_count(delta: "DeltaTable") -> int:
    """Rows of the table's current version: the sum of its files' `numRecords`; if a file
    lacks that statistic, counted by the query engine from the files' Parquet footers."""
    counted = delta.get_add_actions(flatten=True).column("num_records").to_pylist()
    if None in counted:
        return query_rows(delta, "t", "SELECT count(*) AS n FROM t")[0]["n"]
    return sum(counted)


def _as_history_row(commit: dict[str, Any]) -> dict[str, Any]:
    """A delta-rs commit info as Spark's DESCRIBE HISTORY shows it: the timestamp a datetime
    (UTC), parameters and metrics as strings."""
    moment = commit.get("inCommitTimestamp") or commit["timestamp"]
    return {
        "version": commit["version"],
        "timestamp": datetime.fromtimestamp(moment / 1000, UTC),
        "operation": commit.get("operation"),
        "operationParameters": _strings(commit.get("operationParameters")),
        "operationMetrics": _strings(commit.get("operationMetrics")),
        "userMetadata": commit.get("userMetadata"),
    }


def _strings(values: dict[str, Any] | None) -> dict[str, str] | None:
    if values is None:
        return None
    return {key: value if isinstance(value, str) else str(value) for key, value in values.items()}
