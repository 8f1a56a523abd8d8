"""`python -m tests.killed_cli N <stedi-lake arguments>`: the stedi-lake CLI in a process that
kills itself (SIGKILL) right after the N-th Delta commit of its lake, for the few crash tests
that need a real process to die. The library knows nothing of it: the lake gets a callback."""

import os
import signal
import sys

from stedi_lakehouse.cli import app
from stedi_lakehouse.lake import open as runtime


def main() -> None:
    after = int(sys.argv.pop(1))
    open_lake = runtime.open_lake

    def open_lake_that_dies(*args, **kwargs):
        lake = open_lake(*args, **kwargs)

        def after_commit(commits: int) -> None:
            if commits == after:
                os.kill(os.getpid(), signal.SIGKILL)

        lake.after_commit = after_commit
        return lake

    runtime.open_lake = open_lake_that_dies  # the commands look it up when they run
    app(prog_name="stedi-lake")


if __name__ == "__main__":
    main()
