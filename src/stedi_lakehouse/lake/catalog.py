"""The catalog: each table registered by name (an external table at its location), in the
lake's database, and the curated ones without a direct identifier in the database data
scientists are granted too."""

import contextlib
import os
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.utils import is_remote

from stedi_lakehouse.contracts.tables import CATALOGUE, Table, Zone
from stedi_lakehouse.lake.layout import is_local_path, local_path, normalise_root, table_path
from stedi_lakehouse.lake.session import METASTORE_URL

LOCATION_LINE = "Location: "  # in the information SHOW TABLE EXTENDED gives
# Beside an embedded metastore's Derby folder: the lake root its entries were last registered
# for, and the tables registered then, one line each (`Catalog.mark_kept`). Its name changes
# with what registering does, so that entries made otherwise are all made again once.
KEPT_FOR = "registered-lake-2"


class Catalog:
    def __init__(
        self, spark: SparkSession, root: str, database: str, shared: Callable[[str], bool]
    ):
        self.spark, self.root, self.database = spark, root, database
        self._shared = shared  # whether a table may be in `curated_database`
        # Registration talks to the metastore (slow on first use): it runs beside the next
        # table's work. `registered()` waits for it and raises what failed.
        self._registrations: list[Future] = []
        self._registrar = ThreadPoolExecutor(max_workers=1, thread_name_prefix="register")

    @property
    def curated_database(self) -> str:
        """The database holding only the curated tables without a direct identifier (what
        data scientists are granted)."""
        return f"{self.database}_curated"

    def register_soon(self, name: str, *, check_location: bool) -> None:
        """`register` on the registration thread (see `registered`)."""
        self._registrations.append(
            self._registrar.submit(self.register, name, check_location=check_location)
        )

    def registered(self) -> None:
        """Wait until every table written so far is registered in the catalog."""
        pending, self._registrations = self._registrations, []
        for registration in pending:
            registration.result()

    @property
    def embedded(self) -> bool:
        """Whether the session's metastore is an embedded one this machine can see (in-process,
        or the lake's own server): see `metastore_kept`."""
        return self._derby_folder is not None

    def metastore_kept(self) -> bool:
        """Whether the session's embedded metastore (its Derby folder) exists. It holds every
        table the lake had when the command opened it (`Lake.adopt_metastore`), and each table
        made or written whole since, so a commit that adds to a table need not ask the
        metastore again (its first use boots it). With an external metastore (Glue), or once
        the folder is gone, every commit registers."""
        return self._derby_folder is not None and self._derby_folder.is_dir()

    def unregistered(self, tables: list[str]) -> list[str]:
        """Those of `tables` the embedded metastore may lack: all of them, unless it exists and
        was filled for this lake (`mark_kept`); else those not noted as registered then."""
        if not self.metastore_kept():
            return tables
        assert self._derby_folder is not None
        try:
            root, *noted = (self._derby_folder.parent / KEPT_FOR).read_text().splitlines()
        except (OSError, ValueError):
            return tables
        return tables if root != self.root else [t for t in tables if t not in noted]

    def mark_kept(self, tables: list[str]) -> None:
        """Note that `tables` are registered in the embedded metastore (a note that cannot be
        written only means the next command registers them again)."""
        folder = self._derby_folder
        if folder is None:
            return
        partial = folder.parent / f".{KEPT_FOR}.{os.getpid()}"
        with contextlib.suppress(OSError):
            partial.write_text("\n".join([self.root, *tables]) + "\n")
            os.replace(partial, folder.parent / KEPT_FOR)  # never half written

    @cached_property
    def _derby_folder(self) -> Path | None:
        """The embedded metastore's folder, from the session's settings (read once: a
        session's metastore does not change)."""
        return derby_folder(self.spark.conf.get(METASTORE_URL, None), self.root, is_remote())

    def register(self, name: str, *, check_location: bool = True) -> None:
        """Point `database.name` at the table's location (external table; idempotent), and
        `curated_database.name` too if the table is `shared`; a curated table that is not
        (its rows name people) has no entry there. A registered table's location is read (a
        Delta snapshot) only if `check_location`."""
        self._register_in(self.database, name, check_location=check_location)
        if CATALOGUE[Table(name)].zone != Zone.CURATED:
            return
        if self._shared(name):
            self._register_in(self.curated_database, name, check_location=check_location)
        else:
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {self.curated_database}")
            self.spark.sql(f"DROP TABLE IF EXISTS {self.curated_database}.{name}")

    def _register_in(self, database: str, name: str, *, check_location: bool) -> None:
        path, qualified = table_path(self.root, name), f"{database}.{name}"
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
        # the metastore's entry alone: `tableExists` loads the Delta log where it points,
        # and fails if that lake was deleted since
        entry = self._entry(database, name)
        if entry is not None:
            if not check_location:
                return
            location = _location_in(entry)
            if location is not None and normalise_root(location) == normalise_root(path):
                return
            self.spark.sql(f"DROP TABLE {qualified}")  # external: drops the name, not the data
        self.spark.sql(f"CREATE TABLE {qualified} USING DELTA LOCATION '{path}'")

    def location(self, database: str, name: str) -> str | None:
        """Where the catalog's entry for `database.name` points, as the metastore holds it
        (DESCRIBE DETAIL would load the table's Delta log there first); None if not said."""
        entry = self._entry(database, name)
        return None if entry is None else _location_in(entry)

    def _entry(self, database: str, name: str) -> list[str] | None:
        """The lines SHOW TABLE EXTENDED gives of the entry `database.name`; None: no entry."""
        shown = self.spark.sql(f"SHOW TABLE EXTENDED IN {database} LIKE '{name}'").collect()
        for row in shown:
            if row["tableName"] == name:
                return row["information"].splitlines()
        return None


def derby_folder(url: str | None, root: str, remote: bool) -> Path | None:
    """The folder of the embedded metastore `url` names; None with an external metastore, or
    a Spark Connect endpoint's outside the lake's folder (perhaps on another machine: the
    lake's own server keeps its metastore in the lake)."""
    derby = re.search(r"databaseName=([^;]+)", url or "")
    if derby is None:
        return None
    folder = Path(derby.group(1))
    if remote and not (is_local_path(root) and folder.is_relative_to(local_path(root).resolve())):
        return None
    return folder


def _location_in(entry: list[str]) -> str | None:
    for line in entry:
        if line.startswith(LOCATION_LINE):
            return line.removeprefix(LOCATION_LINE)
    return None
