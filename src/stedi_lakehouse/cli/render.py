"""How results look in a terminal: tables, not dict dumps."""

import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from stedi_lakehouse.contracts.tables import CATALOGUE, Dataset, TableCompaction

if TYPE_CHECKING:  # rendering imports no engine: these only name what it is given
    from stedi_lakehouse.erasure.forget import ErasureReport
    from stedi_lakehouse.lake.status import TableStatus
    from stedi_lakehouse.lake.tables import TableWrite
    from stedi_lakehouse.pipeline.quality import Outcome
    from stedi_lakehouse.pipeline.results import DatasetCounts


def fitted(renderable: RenderableType, width: int) -> RenderableType:
    """A table as it fits in `width` columns: itself when every cell fits whole, else each row
    as `header: value` pairs, so that no number is ever cut (a log file or CI output gets 80
    columns, where a table squeezed by rich would show `10,008,…`). Groups are fitted part by
    part; anything else is returned as it is."""
    if isinstance(renderable, Group):
        return Group(*(fitted(part, width) for part in renderable.renderables))
    if not isinstance(renderable, Table) or _natural_width(renderable) <= width:
        return renderable
    return _plain(renderable, width)


def _natural_width(table: Table) -> int:
    """The width the table takes when nothing limits it."""
    return Console(width=1 << 16, file=io.StringIO()).measure(table).maximum


def _plain(table: Table, width: int) -> Text:
    """The table's title, then each row as `header: value` pairs, as many to a line as fit in
    `width` (a pair alone wider than that is printed whole, never cut)."""
    headers = [str(column.header) for column in table.columns]
    rows = zip(*(list(column.cells) for column in table.columns), strict=True)
    lines = [str(table.title)] if table.title else []
    for row in rows:
        cells = (cell.plain if isinstance(cell, Text) else str(cell) for cell in row)
        line = ""
        for pair in (f"{h}: {c}" for h, c in zip(headers, cells, strict=True)):
            if line and len(line) + len(pair) + 3 > width:
                lines.append(line)
                line = "  "  # the row goes on
            line = f"{line} · {pair}" if line.strip() else f"{line}{pair}"
        lines.append(line)
    return Text("\n".join(lines), no_wrap=True, overflow="ignore")


def writes_table(writes: Iterable["TableWrite"]) -> Table:
    """One row per commit of a run, in catalogue order."""
    table = Table(title="Tables written (one Delta commit each)", title_justify="left")
    table.add_column("table", no_wrap=True)
    for column in ("rows written", "replaced", "version", "seconds"):
        table.add_column(column, justify="right")
    order = [str(name) for name in CATALOGUE]
    for w in sorted(writes, key=lambda w: order.index(w.table)):
        table.add_row(w.table, f"{w.rows:,}", f"{w.removed:,}", str(w.version), f"{w.seconds:.1f}")
    return table


def records_table(datasets: Iterable["DatasetCounts"]) -> Group:
    """Per feed: new records read = accepted + quarantined; rows evaluated for the trusted zone
    = trusted + excluded; then the exclusions by reason."""
    counts = Table(
        title="Records: read = accepted + quarantined; evaluated = trusted + excluded",
        title_justify="left",
    )
    counts.add_column("dataset", no_wrap=True)
    for column in ("files", "read", "accepted", "quarantined", "trusted", "excluded"):
        counts.add_column(column, justify="right")
    reasons = Table(title="Excluded from trusted, by reason", title_justify="left")
    reasons.add_column("dataset", no_wrap=True)
    reasons.add_column("reason", no_wrap=True)
    reasons.add_column("rows", justify="right")
    order = [str(d) for d in Dataset]
    for d in sorted(datasets, key=lambda d: order.index(d.dataset)):
        counts.add_row(
            d.dataset,
            f"{d.files:,}",
            f"{d.read:,}",
            f"{d.accepted:,}",
            f"{d.quarantined:,}",
            f"{d.trusted:,}",
            f"{sum(d.excluded.values()):,}",
        )
        for reason, n in sorted(d.excluded.items()):
            reasons.add_row(d.dataset, reason, f"{n:,}")
    return Group(counts, reasons) if reasons.row_count else Group(counts)


def run_line(
    writes: Sequence["TableWrite"],
    datasets: Iterable["DatasetCounts"],
    seconds: float,
    compactions: Sequence[TableCompaction] = (),
) -> str:
    """One line for one run of `watch`: when, what arrived, what was written (and compacted),
    how long."""
    datasets = list(datasets)
    files = sum(d.files for d in datasets)
    read = sum(d.read for d in datasets)
    quarantined = sum(d.quarantined for d in datasets)
    compacted = f", {len(compactions)} compacted" if compactions else ""
    return (
        f"{datetime.now(UTC):%H:%M:%S} UTC · {files:,} new file(s), {read:,} records "
        f"({quarantined:,} quarantined) · {len(writes)} table(s) written{compacted} · "
        f"{seconds:.1f} s"
    )


def compacted_line(compactions: Iterable[TableCompaction]) -> str:
    """The tables a run compacted, each with the small files it replaced and its version."""
    done = [
        f"{c.table} ({c.files_removed:,} files into {c.files_added:,}, version {c.version})"
        for c in compactions
    ]
    return f"compacted small files: {'; '.join(done)}"


def status_table(statuses: Iterable["TableStatus"]) -> Table:
    table = Table(title="Lake status", title_justify="left")
    for column in ("table", "zone", "rows", "version", "path"):
        table.add_column(column, justify="right" if column in ("rows", "version") else "left")
    for s in statuses:
        rows = "-" if s.rows is None else f"{s.rows:,}"
        version = "-" if s.version is None else str(s.version)
        table.add_row(s.table, s.zone, rows, version, s.path)
    return table


def result_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["NULL" if v is None else str(v) for v in row])
    return table


def catalogue_markdown() -> str:
    """The table catalogue, generated from the contracts (README section)."""
    from stedi_lakehouse.contracts.spark import spark_schema

    lines = ["| table | zone | grain | columns |", "|---|---|---|---|"]
    for spec in CATALOGUE.values():
        contracts = [spec.contract] + ([spec.udacity_contract] if spec.udacity_contract else [])
        cols = " <br>`udacity`: ".join(
            ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in spark_schema(c).fields)
            for c in contracts
        )
        grain = " <br>".join(" ".join((c.__doc__ or "").split()) for c in contracts)
        lines.append(f"| `{spec.name}` | {spec.zone} | {grain} | {cols} |")
    return "\n".join(lines)


CATALOGUE_START, CATALOGUE_END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


def update_readme(path: str) -> None:
    """Replace the README's catalogue section with one generated from the contracts."""
    with open(path) as f:
        text = f.read()
    head, rest = text.split(CATALOGUE_START)
    _, tail = rest.split(CATALOGUE_END)
    with open(path, "w") as f:
        f.write(f"{head}{CATALOGUE_START}\n{catalogue_markdown()}\n{CATALOGUE_END}{tail}")


def _utc(moment: datetime) -> datetime:
    """A timestamp collected from Spark (naive, in this process's local time) in UTC."""
    return moment.astimezone(UTC)


# Delta's operation metrics worth a glance, in the order shown (a key absent is skipped).
ROW_METRICS = (
    ("numOutputRows", "written"),
    ("numTargetRowsInserted", "inserted"),
    ("numTargetRowsUpdated", "updated"),
    ("numUpdatedRows", "updated"),
    ("numTargetRowsDeleted", "deleted"),
    ("numDeletedRows", "removed"),
)


def metrics_summary(metrics: dict[str, str] | None) -> str:
    """A commit's operation metrics in a few words: rows written, removed, ... (files for
    operations that move no rows, such as OPTIMIZE)."""
    metrics = metrics or {}
    parts = [
        f"{int(metrics[key]):,} {label}"
        for key, label in ROW_METRICS
        if key in metrics and (label == "written" or int(metrics[key]))
    ]
    if not parts and ("numAddedFiles" in metrics or "numRemovedFiles" in metrics):
        added, removed = metrics.get("numAddedFiles", "0"), metrics.get("numRemovedFiles", "0")
        parts.append(f"files +{added} -{removed}")
    return ", ".join(parts) or "-"


def commit_rules(user_metadata: str | None) -> str:
    """The rules preset a commit recorded in its user metadata ({"rules": ...}), if any."""
    if not user_metadata:
        return "-"
    try:
        metadata = json.loads(user_metadata)
    except ValueError:
        return user_metadata
    return str(metadata.get("rules") or "-") if isinstance(metadata, dict) else user_metadata


def history_table(name: str, commits: Iterable[dict[str, Any]]) -> Table:
    """A table's Delta history (DESCRIBE HISTORY rows), newest first."""
    table = Table(title=f"History of {name} (newest first)", title_justify="left")
    for column in ("version", "timestamp (UTC)", "operation", "rows", "rules"):
        table.add_column(column, justify="right" if column == "version" else "left")
    for commit in commits:
        operation, parameters = commit["operation"], commit.get("operationParameters") or {}
        if mode := parameters.get("mode"):  # an overwrite with a predicate is a replaceWhere
            mode = "replace where" if "predicate" in parameters else mode.lower()
            operation = f"{operation} ({mode})"
        table.add_row(
            str(commit["version"]),
            _utc(commit["timestamp"]).strftime("%Y-%m-%d %H:%M:%S"),
            operation,
            metrics_summary(commit.get("operationMetrics")),
            commit_rules(commit.get("userMetadata")),
        )
    return table


def run_json(record: dict[str, Any]) -> str:
    """A run's `runs` row as JSON (times in ISO 8601, UTC)."""
    return json.dumps(
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}, indent=2
    )


def run_summary(record: dict[str, Any]) -> dict[str, Any]:
    """A `runs` row (as a dict) in a few JSON-serialisable fields, for `stedi-lake status`."""
    started, ended = record["started_at"], record["ended_at"]
    return {
        "run_id": record["run_id"],
        "started_at": _utc(started).isoformat(),
        "command": record["command"],
        "rules": record["rules"],
        "outcome": record["outcome"],
        "seconds": round((ended - started).total_seconds(), 1) if ended else None,
        "new_files": sum(d["files"] for d in record["datasets"] or []),
        "rows_written": sum(w["rows_written"] for w in record["writes"] or []),
        "error": record["error"],
    }


def runs_table(runs: Sequence[dict[str, Any]]) -> Table:
    """The last runs (`run_summary` dicts), newest first; the error column only if one failed."""
    table = Table(title="Last runs (newest first)", title_justify="left")
    failed = any(r["outcome"] != "succeeded" for r in runs)
    numbers = ("seconds", "new files", "rows written")
    columns = ("started (UTC)", "command", "rules", "outcome", *numbers)
    for column in (*columns, "error") if failed else columns:
        table.add_column(column, justify="right" if column in numbers else "left", overflow="fold")
    for r in runs:
        cells = [
            datetime.fromisoformat(r["started_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            r["command"],
            r["rules"],
            Text(r["outcome"], style="green" if r["outcome"] == "succeeded" else "red"),
            "-" if r["seconds"] is None else f"{r['seconds']:.1f}",
            f"{r['new_files']:,}",
            f"{r['rows_written']:,}",
        ]
        if failed:
            cells.append(r["error"].splitlines()[0] if r["error"] else "-")
        table.add_row(*cells)
    return table


def erasure_table(report: "ErasureReport") -> Group:
    """What `stedi-lake forget` removed (counts only: the person is not named)."""
    table = Table(title="Erased", title_justify="left")
    table.add_column("table")
    table.add_column("rows removed", justify="right")
    for name, rows in sorted(
        report.rows_removed.items(), key=lambda kv: [str(name) for name in CATALOGUE].index(kv[0])
    ):
        table.add_row(name, f"{rows:,}")
    resumed = "An erasure that had not finished, now finished: " if report.resumed else ""
    note = Text(
        f"{resumed}{report.landing_files_rewritten} landing file(s) rewritten; "
        f"{report.runs_redacted} run error(s) redacted; old versions purged from "
        f"{len(report.tables_purged)} table(s); later deliveries of this person are not "
        "ingested; recorded in `erasures`."
    )
    return Group(table, note)


def export_table(card: dict[str, Any], out_dir: Path) -> Group:
    """What `stedi-lake export` wrote: rows and people per split, and where."""
    table = Table(
        title=f"{card['table']} version {card['delta_version']} ({card['rules']}), "
        f"split by person with seed {card['seed']}",
        title_justify="left",
    )
    for column in ("split", "fraction", "rows", "people", "files"):
        table.add_column(column, justify="left" if column in ("split", "files") else "right")
    for name, s in card["splits"].items():
        table.add_row(name, f"{s['fraction']:g}", f"{s['rows']:,}", f"{s['people']:,}", s["files"])
    return Group(table, Text(f"in {out_dir}, with the dataset card: README.md and card.json"))


def unmet_table(outcomes: Iterable["Outcome"]) -> Table:
    """The expectations a run checked and found unmet (`quality.Outcome`s): its warnings."""
    table = Table(
        title="Expectations not met (warn: recorded, the run went on)", title_justify="left"
    )
    for column in ("table", "expectation", "level", "observed", "threshold"):
        table.add_column(column, justify="right" if column in ("observed", "threshold") else "left")
    for o in outcomes:
        e = o.expectation
        table.add_row(e.table, e.name, str(e.level), f"{o.observed:g}", f"{e.threshold:g}")
    return table


def latest_quality(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per table, its latest check (`quality` rows): when, how many expectations, and the
    names of those that warned or failed."""
    rows = list(rows)
    latest_at: dict[str, datetime] = {}
    for row in rows:
        latest_at[row["table"]] = max(
            latest_at.get(row["table"], row["checked_at"]), row["checked_at"]
        )
    latest = {
        table: [r for r in rows if r["table"] == table and r["checked_at"] == at]
        for table, at in latest_at.items()
    }

    def unmet(found: list[dict[str, Any]], level: str) -> list[str]:
        return [
            f"{r['expectation']} (observed {r['observed']:g})"
            for r in found
            if not r["passed"] and r["level"] == level
        ]

    return {
        table: {
            "run_id": found[0]["run_id"],
            "checked_at": _utc(found[0]["checked_at"]).isoformat(),
            "expectations": len(found),
            "warnings": unmet(found, "warn"),
            "failed": unmet(found, "fail"),
        }
        for table, found in sorted(latest.items())
    }


def quality_table(latest: dict[str, dict[str, Any]]) -> Table:
    """`latest_quality`, for `stedi-lake status`."""
    table = Table(title="Expectations: the latest check of each table", title_justify="left")
    for column in ("table", "checked (UTC)", "expectations", "warnings", "failed"):
        table.add_column(column, justify="right" if column == "expectations" else "left")
    for name, q in latest.items():
        table.add_row(
            name,
            datetime.fromisoformat(q["checked_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            str(q["expectations"]),
            Text("; ".join(q["warnings"]) or "-", style="yellow" if q["warnings"] else ""),
            Text("; ".join(q["failed"]) or "-", style="red" if q["failed"] else ""),
        )
    return table
