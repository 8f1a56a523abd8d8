"""`stedi-lake server start|stop|status`: the lake's warm Spark Connect server (server.py)."""

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from stedi_lakehouse.errors import StediError

app = typer.Typer(help="A warm Spark Connect server for a lake: commands then need no JVM.")
out = Console()
err = Console(stderr=True)

LakeRoot = Annotated[
    str | None,
    typer.Option("--lake-root", "-l", help="Lake folder (default: from the profile)."),
]
Profile = Annotated[
    str | None,
    typer.Option("--profile", "-p", help="Settings profile conf/<name>.yaml (default: local)."),
]


def _root(profile: str | None, lake_root: str | None) -> str:
    from stedi_lakehouse.settings import load_settings

    try:
        return load_settings(profile, lake_root=lake_root).require_lake_root()
    except StediError as exc:
        _error(str(exc))
        raise typer.Exit(1) from None


def _error(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def _said(message: str) -> None:
    out.print(message, highlight=False, soft_wrap=True)


@app.command()
def start(lake_root: LakeRoot = None, profile: Profile = None) -> None:
    """Start the lake's server (loopback only, a token required); returns once it answers."""
    from stedi_lakehouse.lake import server

    root = _root(profile, lake_root)
    began = time.monotonic()
    try:
        with err.status("starting the lake server"):
            address = server.start(root, profile=profile)
    except StediError as exc:
        _error(str(exc))
        raise typer.Exit(1) from None
    _said(
        f"serving {address.lake_root} at {address.shown} (pid {address.pid}, "
        f"{time.monotonic() - began:.1f} s); commands on this lake now run through it"
    )
    _said(f"address and token: {server.state_dir(root) / server.ADDRESS_FILE} (mode 0600)")
    _said(f"log: {server.log_path(root)}")


@app.command()
def stop(lake_root: LakeRoot = None, profile: Profile = None) -> None:
    """Stop the lake's server; commands run in-process again."""
    from stedi_lakehouse.lake import server

    root = _root(profile, lake_root)
    state = server.stop(root)
    if state.address is not None:
        _said(f"stopped the server of {state.address.lake_root} (pid {state.address.pid})")
    elif state.died is not None:
        _said(f"the server (pid {state.died.pid}) had died; its address file was removed")
        _said(f"its log: {server.log_path(root)}")
    else:
        _said(f"no server runs for {root}")


@app.command()
def status(lake_root: LakeRoot = None, profile: Profile = None) -> None:
    """Whether the lake's server runs, where, and how fast it answers (exit 1 if none)."""
    from stedi_lakehouse.lake import server

    root = _root(profile, lake_root)
    state = server.running(root)
    if state.address is None:
        if state.died is not None:
            _said(f"the server (pid {state.died.pid}) had died; its address file was removed")
            _said(f"its log: {server.log_path(root)}")
        else:
            _said(f"no server runs for {root}")
        raise typer.Exit(1)
    address = state.address
    up = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(address.started))
    _said(f"running: {address.shown} (pid {address.pid}, since {up}) for {address.lake_root}")
    try:
        _said(f"answered in {server.ping(address):.2f} s; log: {server.log_path(root)}")
    except StediError as exc:
        _error(str(exc))
        _said(f"its log: {server.log_path(root)}; `server stop`, then `server start`")
        raise typer.Exit(1) from None
