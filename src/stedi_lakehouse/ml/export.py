"""`stedi-lake export`: a table's training, validation and test sets as files, split by person,
with a dataset card (`card.json`, and `README.md` for people) saying what they hold."""

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from stedi_lakehouse import __version__
from stedi_lakehouse.contracts.tables import CATALOGUE, Table
from stedi_lakehouse.errors import StediError
from stedi_lakehouse.ml import SUBJECT, Snapshot, read_snapshot, split_rows
from stedi_lakehouse.presets import Rules

# What the people in a `privacy` table agreed to, and what follows for a set exported from it.
CONSENT = (
    "Only customers who agreed to share their data with research (the latest record per "
    "e-mail holds a shareWithResearchAsOfDate), and only readings taken at or after that "
    "agreement. Step-trainer readings of a device claimed by more than one customer are left "
    "out: they cannot be attributed to one person. People appear only as a pseudonymous "
    "subject_key; no e-mail, name, phone, birthday or serial number is in the set. A person who "
    "withdraws consent or is erased leaves the table at the next run, but not a set exported "
    "before: delete old exports and export again. A set exported as of an earlier version "
    "holds only the people still in the table's latest version."
)


class Format(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


class ExportError(StediError):
    """The export's output folder cannot be used."""


def _write(rows, path: Path, fmt: Format) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True)
    if fmt is Format.PARQUET:
        pq.write_table(rows, path)
    else:
        pcsv.write_csv(rows, path)


def card(snapshot: Snapshot, parts: dict, *, seed: int, fractions: dict, fmt: Format) -> dict:
    """What a data scientist needs to know about an exported set (never the key)."""
    spec = CATALOGUE[Table(snapshot.table)]
    contract = spec.contract_for(Rules(snapshot.rules or Rules.PRIVACY))
    fields = contract.model_fields
    return {
        "table": snapshot.table,
        "delta_version": snapshot.version,
        "rules": snapshot.rules,
        "pseudonym_key_fingerprint": snapshot.key_fingerprint,
        "grain": spec.grain,
        "seed": seed,
        "format": str(fmt),
        "split_by": SUBJECT,
        "people_left_out": snapshot.left_out,
        "splits": {
            name: {
                "fraction": fractions[name],
                "files": f"{name}/part-00000.{fmt}",
                "rows": rows.num_rows,
                "people": len(set(rows.column(SUBJECT).to_pylist())),
            }
            for name, rows in parts.items()
        },
        "columns": [
            {
                "name": field.name,
                "type": str(field.type),
                "meaning": fields[field.name].description if field.name in fields else None,
            }
            for field in snapshot.rows.schema
        ],
        "consent": CONSENT,
        "exported_with": f"stedi-lake {__version__}",
    }


def card_markdown(data: dict[str, Any]) -> str:
    """The card for people: `OUT/README.md`."""
    lines = [
        f"# {data['table']}, version {data['delta_version']}: training sets split by person",
        "",
        data["grain"],
        "",
        f"- rules preset: `{data['rules']}`",
        f"- pseudonym key fingerprint: `{data['pseudonym_key_fingerprint'] or 'not recorded'}`",
        f"- seed: {data['seed']}; split by `{data['split_by']}`: nobody is in two splits",
        f"- people of this version with rows left out, no longer in the table: "
        f"{data['people_left_out']}",
        f"- exported with {data['exported_with']}",
        "",
        "| split | fraction | rows | people | files |",
        "|---|---:|---:|---:|---|",
    ]
    for name, s in data["splits"].items():
        lines.append(f"| {name} | {s['fraction']:g} | {s['rows']} | {s['people']} | {s['files']} |")
    lines += ["", "## Columns", "", "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c['name']}` | {c['type']} | {c['meaning'] or ''} |" for c in data["columns"]]
    lines += ["", "## What consent covers", "", data["consent"], ""]
    return "\n".join(lines)


def export(
    lake_root: str,
    out: Path,
    *,
    table: str,
    as_of: int | None,
    fractions: dict[str, float],
    seed: int,
    fmt: Format,
) -> dict:
    """Write `out/<split>/part-00000.<fmt>` per split, `out/card.json` and `out/README.md`;
    return the card. `out` must be new or empty, so no file of an older export remains."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty folder: export into a new one")
    snapshot = read_snapshot(lake_root, table, as_of)
    parts = split_rows(snapshot.rows, seed=seed, splits=fractions)
    for name, rows in parts.items():
        _write(rows, out / name / f"part-00000.{fmt}", fmt)
    data = card(snapshot, parts, seed=seed, fractions=fractions, fmt=fmt)
    (out / "card.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "README.md").write_text(card_markdown(data))
    return data
