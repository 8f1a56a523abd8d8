"""The numbers behind the lake's HTML report, gathered with delta-rs (no JVM) into plain data.

Row counts and versions are those `stedi-lake status --json` gives. Only small tables are read
whole (customers, quarantine reasons, runs, the ML table); the sensor tables are counted from
the Delta log. Quarantine reasons are reduced to the rule broken: the values quoted in them
(which may be someone's e-mail address) never reach the report.
"""

import re
from collections import Counter
from typing import Any

from stedi_lakehouse.contracts.tables import (
    CATALOGUE,
    Dataset,
    Table,
    landing_table,
    quarantine_table,
)
from stedi_lakehouse.lake.readers import checked_root, open_if_present, row_count

ML_TABLE = Table.MACHINE_LEARNING_CURATED
DISTRIBUTIONS = ("x", "y", "z", "distance_from_object")
QUOTED_VALUE = re.compile(r",? got .*$")
TRUSTED = {d: f"{d}_trusted" for d in Dataset}
# What each feed becomes further on: its curated table, where it has one of its own.
CURATED = {Dataset.CUSTOMER: Table.CUSTOMER_CURATED, Dataset.STEP_TRAINER: ML_TABLE}


def _rows(lake_root: str, table: str):
    delta = open_if_present(lake_root, table)
    return None if delta is None else delta.to_pyarrow_table()


def table_counts(lake_root: str) -> dict[str, dict[str, Any]]:
    """{table: {zone, rows, version}} for every catalogue table (None where never written)."""
    counts: dict[str, dict[str, Any]] = {}
    for name, spec in CATALOGUE.items():
        delta = open_if_present(lake_root, name)
        counts[name] = {
            "zone": str(spec.zone),
            "rows": None if delta is None else row_count(delta),
            "version": None if delta is None else delta.version(),
        }
    return counts


def funnel(counts: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """Per feed: lines read, accepted by the contract, trusted, curated."""

    def rows(table: str) -> int:
        return counts[table]["rows"] or 0

    stages = {}
    for dataset in Dataset:
        accepted = rows(landing_table(dataset))
        steps = [
            ("read", accepted + rows(quarantine_table(dataset))),
            ("accepted", accepted),
            ("trusted", rows(TRUSTED[dataset])),
        ]
        if dataset in CURATED:
            steps.append((f"in {CURATED[dataset]}", rows(CURATED[dataset])))
        stages[str(dataset)] = steps
    return stages


def quarantine_reasons(lake_root: str) -> dict[str, dict[str, int]]:
    """Per feed: quarantined lines per rule broken (a line breaking two rules counts for both)."""
    reasons = {}
    for dataset in Dataset:
        table = _rows(lake_root, quarantine_table(dataset))
        found: Counter[str] = Counter()
        for reason in [] if table is None else table.column("reason").to_pylist():
            found.update({QUOTED_VALUE.sub("", part) for part in reason.split("; ")})
        reasons[str(dataset)] = dict(found.most_common())
    return reasons


def runs(lake_root: str) -> list[dict[str, Any]]:
    """Every recorded run, oldest first: when, records read, seconds, outcome, exclusions."""
    table = _rows(lake_root, Table.RUNS)
    records = [] if table is None else table.to_pylist()
    return [
        {
            "run_id": r["run_id"],
            "started_at": r["started_at"].isoformat(),
            "seconds": round((r["ended_at"] - r["started_at"]).total_seconds(), 1),
            "records": sum(d["read"] for d in r["datasets"]),
            "outcome": r["outcome"],
            "excluded": {d["dataset"]: dict(d["excluded"]) for d in r["datasets"]},
        }
        for r in sorted(records, key=lambda r: r["started_at"])
    ]


def consent(lake_root: str, counts: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Customers (distinct e-mails delivered), those consenting, and of them those who consented
    after registering (their earlier readings are not covered)."""
    landing, trusted = (
        _rows(lake_root, Table.CUSTOMER_LANDING),
        _rows(lake_root, Table.CUSTOMER_TRUSTED),
    )
    part_way = 0
    if trusted is not None:
        registered = trusted.column("registrationDate").to_pylist()
        consented = trusted.column("shareWithResearchAsOfDate").to_pylist()
        part_way = sum(c > r for r, c in zip(registered, consented, strict=True))
    emails = set() if landing is None else set(landing.column("email").to_pylist())
    return {
        "customers": len(emails),
        "consenting": counts[Table.CUSTOMER_TRUSTED]["rows"] or 0,
        "consented part-way": part_way,
    }


def ml_values(lake_root: str) -> dict[str, Any]:
    """Readings per person and the columns' values in the ML table (privacy rules only)."""
    table = _rows(lake_root, ML_TABLE)
    if table is None or "subject_key" not in table.column_names:
        return {"readings_per_person": [], "values": {}}
    per_person = Counter(table.column("subject_key").to_pylist())
    return {
        "readings_per_person": sorted(per_person.values()),
        "values": {c: table.column(c).to_pylist() for c in DISTRIBUTIONS},
    }


def quality(lake_root: str) -> dict[str, dict[str, Any]]:
    """Each table's latest expectation check, as `stedi-lake status` shows it."""
    from stedi_lakehouse.cli.render import latest_quality

    table = _rows(lake_root, Table.QUALITY)
    return {} if table is None else latest_quality(table.to_pylist())


def dictionary() -> list[dict[str, Any]]:
    """Every table's grain and columns with their meaning, from the contracts."""
    from stedi_lakehouse.contracts.spark import spark_schema

    entries = []
    for spec in CATALOGUE.values():
        fields = spec.contract.model_fields
        columns = [
            {
                "name": f.name,
                "type": f.dataType.simpleString(),
                "meaning": fields[f.name].description or "",
            }
            for f in spark_schema(spec.contract).fields
        ]
        entries.append(
            {"table": spec.name, "zone": str(spec.zone), "grain": spec.grain, "columns": columns}
        )
    return entries


def summarise(lake_root: str) -> dict[str, Any]:
    root = checked_root(lake_root)
    counts = table_counts(root)
    return {
        "lake_root": root,
        "tables": counts,
        "funnel": funnel(counts),
        "quarantine_reasons": quarantine_reasons(root),
        "runs": runs(root),
        "consent": consent(root, counts),
        "ml": ml_values(root),
        "quality": quality(root),
        "dictionary": dictionary(),
    }
