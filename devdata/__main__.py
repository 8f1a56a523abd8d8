"""`python -m devdata --customers N --out DIR`: write a landing set (see `devdata.generate`);
`make sample` is its small case, `data/sample/`."""

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
out = Console()


def fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"error: {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def generated_table(summary: dict[str, Any], out_dir: Any) -> Group:
    """What `python -m devdata` wrote: per dataset, then the people in it."""
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


@app.command()
def main(
    customers: Annotated[int, typer.Option(help="How many customers.", min=1)],
    out_dir: Annotated[Path, typer.Option("--out", help="Landing folder to (re)write.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    ambiguous_share: Annotated[
        float, typer.Option(help="Share of customers whose serial a second customer also claims.")
    ] = 0.01,
    unknown_share: Annotated[
        float, typer.Option(help="Unknown app users and unknown devices, per customer.")
    ] = 0.01,
    bad_share: Annotated[float, typer.Option(help="Share of bad lines per dataset.")] = 0.001,
    readings_per_device: Annotated[
        int, typer.Option(help="Step readings per session, on average.", min=2)
    ] = 25,
    edge_cases: Annotated[
        bool,
        typer.Option(
            "--edge-cases", help="Add the fixed hand-built scenario set (as in data/sample/)."
        ),
    ] = False,
) -> None:
    """Generate a realistic landing set of any size (deterministic for a seed); with
    --edge-cases and small numbers, the bundled sample (`make sample`)."""
    try:
        from devdata.generate import generate_landing
    except ImportError as exc:
        hint = "pip install -e '.[generate]'"
        raise fail(f"devdata needs numpy and pyarrow ({exc.name} missing): {hint}") from None
    started = time.monotonic()
    try:
        summary = generate_landing(
            out_dir,
            customers=customers,
            seed=seed,
            ambiguous_share=ambiguous_share,
            unknown_share=unknown_share,
            bad_share=bad_share,
            readings_per_device=readings_per_device,
            edge_cases=edge_cases,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    out.print(generated_table(summary, out_dir))
    out.print(f"{summary['bytes'] / 1e6:,.1f} MB in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    app()
