"""Lake tables read with delta-rs: no JVM, so data scientists' notebooks and the HTML report
read the lake without starting Spark. Paths as `io.Lake.table_path` lays them out."""

from typing import TYPE_CHECKING

from stedi_lakehouse.contracts.tables import CATALOGUE, Table
from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.lake.layout import is_local_path, local_path
from stedi_lakehouse.lake.status import row_count, storage_options

if TYPE_CHECKING:
    from deltalake import DeltaTable


def checked_root(lake_root: str) -> str:
    """The lake root; a local one must exist."""
    if not is_local_path(lake_root):
        return lake_root.rstrip("/")
    root = local_path(lake_root).resolve()
    if not root.is_dir():
        raise LakeError(f"lake root {root} does not exist")
    return str(root)


def table_uri(lake_root: str, table: str) -> str:
    if table not in CATALOGUE:
        raise LakeError(f"no table '{table}' in the catalogue: one of {', '.join(CATALOGUE)}")
    return f"{checked_root(lake_root)}/delta/{CATALOGUE[Table(table)].zone}/{table}"


def open_table(lake_root: str, table: str, as_of: int | None = None) -> "DeltaTable":
    """Table `table` as of Delta version `as_of` (default: the latest)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    uri = table_uri(lake_root, table)
    try:
        delta = DeltaTable(uri, storage_options=storage_options(uri))
    except TableNotFoundError:
        raise LakeError(
            f"table {table} not found at {uri}: promote the stage before it first"
        ) from None
    latest = delta.version()
    if as_of is not None:
        if not 0 <= as_of <= latest:
            raise LakeError(f"{table} has no version {as_of} (versions 0 to {latest})")
        try:
            delta.load_as_version(as_of)
        except DeltaError as exc:  # an erasure purges old versions
            raise LakeError(f"{table} version {as_of} can no longer be read: {exc}") from None
    return delta


def open_if_present(lake_root: str, table: str) -> "DeltaTable | None":
    """The table's latest version, or None where it was never written."""
    from deltalake import DeltaTable

    uri = table_uri(lake_root, table)
    options = storage_options(uri)
    if not DeltaTable.is_deltatable(uri, options):
        return None
    return DeltaTable(uri, storage_options=options)


__all__ = ["checked_root", "open_if_present", "open_table", "row_count", "table_uri"]
