"""The `stedi-lake` command line: thin commands over the package (app, server); how results
look in a terminal (render)."""

import atexit
import os
import sys

from stedi_lakehouse.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """The `stedi-lake` script. A native library's threads (Arrow's, delta-rs's) can abort the
    interpreter's own teardown after a command has finished (`terminate called without an
    active exception`, exit 134): the exit handlers run and the output is flushed, then the
    process ends with the command's exit code, without that teardown."""
    try:
        app(prog_name="stedi-lake")
        code = 0
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
