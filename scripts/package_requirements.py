"""Print the requirements of the packed job environment: the project's runtime dependencies
except those the Spark cluster provides (pyspark, py4j; delta-spark's Python API is added
without its pyspark pin), pinned to the versions tested in the dev venv."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

PROVIDED_BY_CLUSTER = {"pyspark", "py4j", "delta-spark"}


def main() -> None:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
        if name.lower() not in PROVIDED_BY_CLUSTER:
            print(f"{name}=={version(name)}")


if __name__ == "__main__":
    main()
