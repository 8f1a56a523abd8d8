"""A landing file is identified by what it holds: one that changes after its run is a new
delivery of it (its earlier rows replaced), and one still being written is not read."""

import json
import os
import time
from pathlib import Path

from pyspark.sql import functions as F

from stedi_lakehouse.pipeline import Stages, watch
from stedi_lakehouse.presets import Rules
from tests.helpers import FILES, KEY, SAMPLE, copy_lake, deliver, new_lake, snapshot, versions

CHANGED = "accelerometer/accelerometer-1.json"
READING = {"user": "Larry.Clayton@test.com", "x": 1.0, "y": 2.0, "z": 3.0}


def run(lake):
    stages = Stages(lake, rules=Rules.PRIVACY)
    return stages.trusted().merge(stages.curated(pseudonym_key=KEY))


def aged(*files: Path) -> None:
    """The files last modified a minute ago (settled)."""
    past = time.time() - 60
    for file in files:
        os.utime(file, (past, past))


def new_content() -> str:
    """The changed file: its second half, and readings it did not hold."""
    lines = (SAMPLE / CHANGED).read_text().splitlines()
    extra = [json.dumps(READING | {"timestamp": 1655564000000 + i}) for i in range(3)]
    return "\n".join(lines[len(lines) // 2 :] + extra) + "\n"


def test_a_file_changed_after_its_run_is_delivered_again(
    sample_runs, spark, test_settings, tmp_path
):
    lake = copy_lake(sample_runs().root, tmp_path / "lake", spark, test_settings)
    (Path(lake.root) / "landing" / CHANGED).write_text(new_content())
    report = run(lake)
    assert report.changed == [f"landing/{CHANGED}"]
    # the same tables as one run over the files as they are now
    fresh = new_lake(spark, test_settings, tmp_path / "fresh")
    deliver(Path(fresh.root), FILES)
    (Path(fresh.root) / "landing" / CHANGED).write_text(new_content())
    run(fresh)
    got, expected = snapshot(lake), snapshot(fresh)
    for name, rows in expected.items():
        assert got[name] == rows, f"{name} differs: {len(got[name])} rows, not {len(rows)}"
    before = versions(lake)
    assert run(lake).writes == [] and versions(lake) == before


def test_a_file_arriving_in_two_halves_is_read_once_whole(spark, test_settings, tmp_path):
    """Under `watch`, a file modified within the settle time is left for a later look."""
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    root = Path(lake.root)
    deliver(root, FILES)
    aged(*(root / "landing").rglob("*"))
    lines = [json.dumps(READING | {"timestamp": 1655564000000 + i}) for i in range(6)]
    growing = root / "landing" / "accelerometer" / "growing.json"
    looks = []

    def between_looks(seconds: float) -> None:
        looks.append(seconds)
        if len(looks) == 1:
            growing.write_text("\n".join(lines[:3]) + "\n")  # the first half
        else:
            with growing.open("a") as f:
                f.write("\n".join(lines[3:]) + "\n")
            aged(growing)

    reports = []
    watch(
        lake,
        rules=Rules.PRIVACY,
        pseudonym_key=KEY,
        every=1,
        runs=2,
        settle_seconds=10,
        on_run=lambda report, seconds: reports.append(report),
        sleep=between_looks,
    )
    assert len(looks) == 2  # the look that found only the first half wrote nothing
    new = lake.read("accelerometer_landing").filter(F.col("source_file").endswith("growing.json"))
    assert new.count() == 6
    assert reports[1].datasets["accelerometer"].files == 1


def test_land_copies_under_a_name_runs_leave_then_renames(tmp_path, monkeypatch):
    """A run that looks while `land` copies does not see a half-copied file."""
    import shutil

    from stedi_lakehouse.lake.layout import BEING_WRITTEN, skipped_because
    from stedi_lakehouse.lake.open import land_files

    source = tmp_path / "source" / "accelerometer"
    source.mkdir(parents=True)
    (source / "new file.json").write_text('{"a":1}\n')
    lake = tmp_path / "lake"
    final = lake / "landing" / "accelerometer" / "new file.json"
    copied_to, copy = [], shutil.copyfile

    def copying(src, dst):
        copied_to.append(Path(dst).name)
        assert not final.exists()
        return copy(src, dst)

    monkeypatch.setattr(shutil, "copyfile", copying)
    land_files(tmp_path / "source", str(lake))
    assert final.read_text() == '{"a":1}\n'
    assert [skipped_because(name) for name in copied_to] == [BEING_WRITTEN]
    assert sorted(p.name for p in final.parent.iterdir()) == ["new file.json"]


def test_a_link_in_landing_is_named_and_never_read(spark, test_settings, tmp_path):
    """A link may lead anywhere the lake's user can read (a key, credentials): its lines would
    be kept, quarantined ones whole. The landing folder itself may be a link."""
    from stedi_lakehouse.lake.layout import LINKED

    secret = tmp_path / "secret.txt"
    secret.write_text("not a record: key material\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "more.json").write_text((SAMPLE / "accelerometer/accelerometer-1.json").read_text())
    stored = tmp_path / "stored-customers"
    stored.mkdir()
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    root = Path(lake.root)
    deliver(root, [f for f in FILES if not f.startswith("customer/")])
    (root / "landing/customer").rmdir()
    (root / "landing/customer").symlink_to(stored)
    deliver(root, [f for f in FILES if f.startswith("customer/")])
    (root / "landing/customer/key.json").symlink_to(secret)
    (root / "landing/accelerometer/linked").symlink_to(outside)
    report = run(lake)
    assert report.skipped == {
        "landing/accelerometer/linked/more.json": LINKED,
        "landing/customer/key.json": LINKED,
    }
    quarantined = [r.raw_line for r in lake.read("customer_quarantine").collect()]
    assert quarantined and not any("key material" in line for line in quarantined)
    fresh = new_lake(spark, test_settings, tmp_path / "fresh")
    deliver(Path(fresh.root), FILES)
    run(fresh)
    assert snapshot(lake) == snapshot(fresh)
