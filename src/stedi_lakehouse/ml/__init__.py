"""Training sets for data scientists, split by person, read with delta-rs: no JVM, no Spark.

    from stedi_lakehouse.ml import training_set
    train = training_set("lakehouse", split="train", seed=7).to_pandas()
    test = training_set("lakehouse", split="test", seed=7).to_pandas()

No person is in two splits, so a model is never tested on someone it trained on; every row of
the table is in exactly one split; a seed and a table version always give the same rows, one
person's rows together and in time order, less the people no longer in the table's latest
version (an earlier version still holds a person who withdrew consent since).
"""

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stedi_lakehouse.contracts.tables import Table
from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.keys import FINGERPRINT_PROPERTY
from stedi_lakehouse.lake.readers import open_table
from stedi_lakehouse.ml.splits import DEFAULT_SPLITS, assign, parse_splits

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

ML_TABLE = Table.MACHINE_LEARNING_CURATED
SUBJECT = "subject_key"
MOMENT = "reading_time_ms"  # with SUBJECT, what a row of the privacy table is about


@dataclass(frozen=True)
class Snapshot:
    """One version of a lake table, its rows sorted by person, then time, then the rest."""

    table: str
    version: int
    rules: str | None
    key_fingerprint: str | None
    rows: "pa.Table"
    left_out: int = 0  # people of this version with rows the table's latest one no longer holds


def _rules_at(history: list[dict], version: int) -> str | None:
    """The rules preset of the latest commit at or before `version` that states one."""
    for commit in sorted(history, key=lambda c: c.get("version", -1), reverse=True):
        metadata = commit.get("userMetadata")
        if commit.get("version", -1) <= version and metadata:
            rules = json.loads(metadata).get("rules")
            if rules:
                return rules
    return None


def read_snapshot(lake_root: str, table: str = ML_TABLE, as_of: int | None = None) -> Snapshot:
    """Table `table` of the lake as of Delta version `as_of` (default: the latest)."""
    delta = open_table(lake_root, table, as_of)
    version = delta.version()
    rows = delta.to_pyarrow_table()
    if SUBJECT not in rows.column_names:
        raise LakeError(
            f"{table} (version {version}) has no {SUBJECT} column: only people under a "
            f"pseudonym ({ML_TABLE} built with --rules privacy) can be split by person"
        )
    left_out = 0
    if as_of is not None:  # `delta` is the latest version otherwise
        rows, left_out = _of_people_still_in(open_table(lake_root, table), version, rows)
    order = [SUBJECT, *(c for c in rows.column_names if c != SUBJECT)]
    return Snapshot(
        table=table,
        version=version,
        rules=_rules_at(delta.history(), version),
        key_fingerprint=delta.metadata().configuration.get(FINGERPRINT_PROPERTY),
        rows=rows.sort_by([(c, "ascending") for c in order]),
        left_out=left_out,
    )


def _of_people_still_in(latest: "DeltaTable", version: int, rows: "pa.Table"):
    """An earlier version's rows at the moments the latest version still holds for the same
    person, and how many people lost rows: one who withdrew consent since, or moved its date
    later, stays in earlier versions until maintenance, and is not exported again."""
    import pyarrow.compute as pc

    if latest.version() == version:
        return rows, 0
    keys = [c for c in (SUBJECT, MOMENT) if c in rows.column_names]
    now = latest.to_pyarrow_table(columns=keys).group_by(keys).aggregate([])
    gone = rows.join(now, keys=keys, join_type="left anti").column(SUBJECT)
    return rows.join(now, keys=keys, join_type="left semi"), pc.count_distinct(gone).as_py()


def split_rows(rows: "pa.Table", *, seed: int, splits: dict[str, float]) -> dict[str, "pa.Table"]:
    """{split: its rows}, in the order of `rows`; every row in exactly one split."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = rows.column(SUBJECT)
    assigned = assign(pc.unique(keys).to_pylist(), seed=seed, splits=splits)
    parts = {}
    for name in splits:
        members = pa.array([k for k, split in assigned.items() if split == name], pa.string())
        parts[name] = rows.filter(pc.is_in(keys, value_set=members))
    return parts


def training_set(
    lake_root: str,
    split: str = "train",
    *,
    seed: int = 0,
    as_of: int | None = None,
    splits: str = DEFAULT_SPLITS,
    table: str = ML_TABLE,
    as_pandas: bool = False,
):
    """The rows of one split (`train`, `validation` or `test`) of `table` as of Delta version
    `as_of`, as an Arrow table (a pandas DataFrame with `as_pandas`; pandas must be installed).
    `splits` as `stedi-lake export --splits` takes it."""
    fractions = parse_splits(splits)
    if split not in fractions:
        raise LakeError(f"no split '{split}' in {splits}")
    snapshot = read_snapshot(lake_root, table, as_of)
    rows = split_rows(snapshot.rows, seed=seed, splits=fractions)[split]
    return rows.to_pandas() if as_pandas else rows
