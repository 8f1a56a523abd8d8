"""A new user's first lake, as processes: `land` and `run` with no pseudonym key set make a
private random key and say where, create the lake, its lock, its metastore and the JVM log
readable by their owner only, and leave the key out of the run's Spark event log."""

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, SAMPLE

pytestmark = pytest.mark.system  # processes of their own (CLI runs, JVMs, servers)

CLI = str(Path(sys.executable).parent / "stedi-lake")


def event_log_text(folder: Path) -> str:
    """Every event log file's text, once the JVM's exit has closed them (it renames them)."""
    for _ in range(30):
        if not any(".inprogress" in p.name for p in folder.rglob("*")):
            break
        time.sleep(1)
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".crc")]
    assert files, "Spark wrote no event log"
    return "\n".join(p.read_text(errors="replace") for p in files)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_first_lake_is_private_and_its_key_is_in_no_event_log(tmp_path):
    home, conf, events = tmp_path / "home", tmp_path / "conf", tmp_path / "events"
    conf.mkdir()
    events.mkdir()
    profile = yaml.safe_load((ROOT / "conf" / "test.yaml").read_text())
    del profile["pseudonym_key"]  # as a new user has none
    for key in ("jars_dir", "class_archive"):
        profile["spark"][key] = str(ROOT / profile["spark"][key])
    profile["spark"]["jvm_log"] = "~/.cache/stedi-lakehouse/jvm.log"
    profile["spark"]["conf"] = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        "spark.eventLog.compress": "false",  # plain text, to read here
    }
    (conf / "first.yaml").write_text(yaml.safe_dump(profile))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STEDI_", "XDG_CONFIG_HOME", "PYSPARK_GATEWAY"))
    }
    env.update(HOME=str(home), STEDI_CONF_DIR=str(conf), STEDI_PROFILE="first")
    lake = tmp_path / "lake"

    def cli(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [CLI, *args, "--lake-root", str(lake)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    cli("land", str(SAMPLE))
    ran = cli("run")

    key_file = home / ".config" / "stedi-lakehouse" / "pseudonym.key"
    assert f"made a pseudonym key for this user's local lakes: {key_file}" in " ".join(
        ran.stderr.split()
    )
    assert mode(key_file) == 0o600
    assert mode(lake) == 0o700
    assert mode(lake / "_lock") == 0o600
    assert mode(lake / "_metastore") == 0o700
    log = home / ".cache" / "stedi-lakehouse" / "jvm.log"
    assert log.is_file() and mode(log) == 0o600 and mode(log.parent) == 0o700

    key = key_file.read_text().strip()
    text = event_log_text(events)
    assert "machine_learning_curated" in text or "subject_key" in text  # the run is in it
    padded = key.encode().ljust(64, b"\0")
    forms = {
        key,
        key.encode().hex(),
        bytes(b ^ 0x36 for b in padded).hex(),
        bytes(b ^ 0x5C for b in padded).hex(),
    }
    for form in forms:
        assert form.lower() not in text.lower()
    assert '"physicalPlanDescription"' in text  # the query plans are in it
