"""Make the JVM class-data archive of the local profile (`spark.class_archive`), as `make setup`
does: the pipeline runs on data/sample/ in a temporary lake under a JVM that writes every
class it loaded (Spark, Delta, Hadoop, the catalog) to the archive when it exits. Later JVMs
map those classes from the archive instead of loading and verifying them one by one.

    .venv/bin/python scripts/class_archive.py .cache/cds/spark.jsa

The archive belongs to this JDK and this class path (Spark's jars and .cache/jars): a JVM that
does not match it says so in its log and starts without it. A JDK that cannot make one does
not fail setup: the lake simply starts without it.
"""

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(archive: Path) -> int:
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.unlink(missing_ok=True)  # the JVM that makes an archive must not start from one
    partial = archive.with_name(archive.name + ".partial")
    partial.unlink(missing_ok=True)
    # This checkout's settings, whatever the caller's environment names, and no archive to
    # start from: a JVM asked to write one does not start from another (say, the archive of
    # the checkout a STEDI_CONF_DIR names) but fails ("DynamicDumpSharedSpaces is unsupported").
    os.environ["STEDI_CONF_DIR"] = str(ROOT / "conf")
    os.environ["STEDI_SPARK__CLASS_ARCHIVE"] = ""
    os.environ["STEDI_SPARK__JAVA_OPTIONS"] = f"-XX:ArchiveClassesAtExit={partial}"
    with tempfile.TemporaryDirectory(prefix="stedi-class-archive-") as lake:
        from pyspark import SparkContext

        from stedi_lakehouse.cli import app

        for args in (["land", str(ROOT / "data" / "sample")], ["run"]):
            report = io.StringIO()  # the run's progress and report: shown only if it fails
            with contextlib.redirect_stdout(report), contextlib.redirect_stderr(report):
                code = app([*args, "--lake-root", lake], standalone_mode=False)
            if code:
                print(report.getvalue(), file=sys.stderr)
                return code
        # The archive is written as the JVM exits, which it does when its stdin closes.
        gateway = SparkContext._gateway
        SparkContext.getOrCreate().stop()
        gateway.shutdown()
        gateway.proc.stdin.close()
        gateway.proc.wait(timeout=600)
    if not partial.is_file():
        print(
            "note: this JVM made no class-data archive (its log says why, setting"
            " spark.jvm_log); the lake starts without one",
            file=sys.stderr,
        )
        return 0
    partial.rename(archive)
    print(f"class-data archive: {archive} ({archive.stat().st_size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
