"""Re-sent data is idempotent: a file sent twice, or two files that overlap, leave the trusted
and curated tables as they were; the copies are counted as `duplicate`, and landing keeps every
delivery as it came. Under both presets, and whichever order the rebuilds come in."""

import json
import os
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.tables import CATALOGUE, Zone
from stedi_lakehouse.lake.tables import Lake
from stedi_lakehouse.pipeline import Stages
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.transforms.trusted import Exclusion
from tests.helpers import FILES, KEY, SAMPLE, copy_lake, deliver, new_lake, snapshot

DERIVED = [n for n, s in CATALOGUE.items() if s.zone in (Zone.TRUSTED, Zone.CURATED)]
ACCEL, STEP = "accelerometer/accelerometer-000.json", "step_trainer/step_trainer-000.json"
# Named to sort before the originals: the first delivery wins, not the first name.
RESENT = {ACCEL: "accelerometer/0-again.json", STEP: "step_trainer/again/0-again.json"}
NEW_READING = {"user": "Larry.Clayton@test.com", "timestamp": 1655564999000, "x": 1, "y": 2}


def run(lake, rules: Rules):
    stages = Stages(lake, rules=rules)
    return stages.trusted().merge(stages.curated(pseudonym_key=KEY))


def derived(lake) -> dict[str, list[tuple]]:
    return {name: rows for name, rows in snapshot(lake).items() if name in DERIVED}


def landed_lines(file: str) -> list[str]:
    return [line for line in (SAMPLE / file).read_text().splitlines() if line.strip()]


def accepted_lines(lake, file: str) -> int:
    landing = f"{file.split('/')[0]}_landing"
    return lake.read(landing).filter(F.col("source_file") == f"landing/{file}").count()


def conserved(report) -> None:
    for counts in report.datasets.values():
        assert counts.read == counts.accepted + counts.quarantined
        assert counts.accepted == counts.trusted + sum(counts.excluded.values())


@pytest.mark.parametrize("rules", list(Rules), ids=str)
def test_a_file_sent_twice_and_an_overlapping_file_change_nothing(
    rules, sample_runs, spark, test_settings, tmp_path
):
    lake = copy_lake(
        sample_runs(rules).root, tmp_path / "lake", spark, test_settings
    )  # the sample, run
    root = Path(lake.root)
    before = derived(lake)  # the sample, run

    for original, copy in RESENT.items():
        (root / "landing" / copy).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE / original, root / "landing" / copy)
    # half of another file's lines again, and one reading nobody sent before
    overlap = landed_lines("accelerometer/accelerometer-001.json")[::2]
    overlap.append(json.dumps(NEW_READING | {"z": 3}))
    (root / "landing" / "accelerometer" / "overlap.json").write_text("\n".join(overlap) + "\n")
    report = run(lake, rules)

    conserved(report)
    resent = {f: accepted_lines(lake, c) for f, c in RESENT.items()}
    assert all(resent.values())  # landing keeps every delivery as it came
    duplicates = {d: c.excluded.get(Exclusion.DUPLICATE, 0) for d, c in report.datasets.items()}
    overlapping = accepted_lines(lake, "accelerometer/overlap.json") - 1
    assert duplicates["accelerometer"] == resent[ACCEL] + overlapping
    assert duplicates["step_trainer"] == resent[STEP]
    # only the reading nobody sent before is new (its person consented before it was taken)
    expected = dict(before)
    new = lake.read("accelerometer_trusted").filter(F.col("timestamp") == NEW_READING["timestamp"])
    assert [r.source_file for r in new.collect()] == ["landing/accelerometer/overlap.json"]
    expected["accelerometer_trusted"] = sorted(
        before["accelerometer_trusted"] + [tuple(new.first())], key=repr
    )
    assert derived(lake) == expected

    # a rebuild of everything (a landing file changed) keeps the first deliveries' rows
    touched = root / "landing" / "accelerometer" / "accelerometer-2.json"
    os.utime(touched, (1_600_000_000, 1_600_000_000))
    rebuilt = run(lake, rules)
    assert rebuilt.changed == ["landing/accelerometer/accelerometer-2.json"]
    # every row evaluated again (counts of a rebuild are of all rows): the same copies
    rebuilt_duplicates = {
        d: c.excluded.get(Exclusion.DUPLICATE, 0) for d, c in rebuilt.datasets.items()
    }
    assert rebuilt_duplicates == duplicates
    assert derived(lake) == expected


def test_copies_delivered_together_keep_the_first_by_name(
    sample_runs, spark, test_settings, tmp_path
):
    """Two copies arriving in one run: the one whose name sorts first is the delivery."""
    once = Lake(spark, str(sample_runs().root), test_settings.catalog.database)  # the sample, run

    twice = new_lake(spark, test_settings, tmp_path / "twice")
    deliver(Path(twice.root), FILES)
    for original in RESENT:
        shutil.copyfile(SAMPLE / original, Path(twice.root) / "landing" / f"{original}.copy.json")
    report = run(twice, Rules.PRIVACY)
    conserved(report)
    assert report.datasets["accelerometer"].excluded[Exclusion.DUPLICATE] == accepted_lines(
        twice, f"{ACCEL}.copy.json"
    )
    assert derived(twice) == derived(once)
