"""A Delta table's commits, read from its log files (`_delta_log/<20-digit version>.json`, one
JSON action per line; the commit info is the action DESCRIBE HISTORY shows): a few
milliseconds per commit, where DESCRIBE HISTORY is a Spark job for each write."""

import json
from collections.abc import Iterator

from stedi_lakehouse.lake import files as python_files
from stedi_lakehouse.lake.layout import COMMIT_FILE
from stedi_lakehouse.lake.storage import Storage


class DeltaLog:
    def __init__(self, storage: Storage):
        self.storage = storage

    def versions(self, path: str) -> list[int]:
        """The versions of the table's (at absolute `path`) commit files, newest first."""
        found = python_files.files_under(f"{path}/_delta_log", recursive=False)
        names = [info.path.rsplit("/", 1)[-1] for info in found]
        return sorted((int(m[1]) for n in names if (m := COMMIT_FILE.fullmatch(n))), reverse=True)

    def commits_newest_first(self, path: str) -> Iterator[dict]:
        """The table's commits, newest first: each one's commit info and `version`."""
        for version in self.versions(path):
            log = f"{path}/_delta_log/{version:020d}.json".removeprefix(f"{self.storage.root}/")
            text = self.storage.read(log)
            if text is None:  # vacuumed since it was listed
                continue
            # lines end at "\n" only: a JSON string may hold U+2028 and the like unescaped
            lines = text.decode("utf-8").split("\n")
            actions = (json.loads(line) for line in lines if line)
            info: dict = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
            yield {**info, "version": version}

    def last_commit(self, path: str) -> dict:
        """The table's latest commit: `version` and its commit info (`operationMetrics`,
        `userMetadata`, ...)."""
        return next(self.commits_newest_first(path))
