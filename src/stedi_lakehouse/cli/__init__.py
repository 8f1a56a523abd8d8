"""The `stedi-lake` command line: thin commands over the package (app, server); how results
look in a terminal (render)."""

from stedi_lakehouse.cli.app import app

__all__ = ["app"]
