"""How results look in a terminal: tables, not dict dumps."""

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from stedi_lakehouse.contracts.tables import CATALOGUE, Dataset


def writes_table(writes: Iterable[Any]) -> Table:
    """One row per commit of a run, in catalogue order."""
    table = Table(title="Tables written (one Delta commit each)", title_justify="left")
    for column in ("table", "zone", "rows written", "rows replaced", "version", "seconds"):
        table.add_column(column, justify="left" if column in ("table", "zone") else "right")
    order = list(CATALOGUE)
    for w in sorted(writes, key=lambda w: order.index(w.table)):
        zone = str(CATALOGUE[w.table].zone)
        table.add_row(
            w.table, zone, f"{w.rows:,}", f"{w.removed:,}", str(w.version), f"{w.seconds:.1f}"
        )
    return table


def records_table(datasets: Iterable[Any]) -> Table:
    table = Table(
        title="Records: new ones read = accepted + quarantined; "
        "rows evaluated for trusted = trusted + excluded",
        title_justify="left",
    )
    columns = ("dataset", "new files", "read", "accepted", "quarantined", "trusted", "excluded")
    for column in columns:
        table.add_column(column, justify="left" if column in ("dataset", "excluded") else "right")
    order = [str(d) for d in Dataset]
    for d in sorted(datasets, key=lambda d: order.index(d.dataset)):
        excluded = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(d.excluded.items()))
        table.add_row(
            d.dataset,
            f"{d.files:,}",
            f"{d.read:,}",
            f"{d.accepted:,}",
            f"{d.quarantined:,}",
            f"{d.trusted:,}",
            excluded or "-",
        )
    return table


def status_table(statuses: Iterable[Any]) -> Table:
    table = Table(title="Lake status", title_justify="left")
    for column in ("table", "zone", "rows", "version", "path"):
        table.add_column(column, justify="right" if column in ("rows", "version") else "left")
    for s in statuses:
        rows = "-" if s.rows is None else f"{s.rows:,}"
        version = "-" if s.version is None else str(s.version)
        table.add_row(s.table, s.zone, rows, version, s.path)
    return table


def generated_table(summary: dict[str, Any], out_dir: Any) -> Group:
    """What `stedi-lake generate` wrote: per dataset, then the people in it."""
    table = Table(title=f"Landing set in {out_dir}", title_justify="left")
    for column in ("dataset", "files", "lines", "bad lines", "blank lines", "MB"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for dataset, d in summary["datasets"].items():
        table.add_row(
            dataset,
            str(d["files"]),
            f"{d['lines']:,}",
            f"{d['bad_lines']:,}",
            f"{d['blank_lines']:,}",
            f"{d['bytes'] / 1e6:,.1f}",
        )
    people = ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in summary["people"].items())
    return Group(table, Text(people))


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
