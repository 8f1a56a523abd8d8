"""The right to erasure, on real Spark and Delta: after `stedi-lake forget --email`, no file
under the lake root holds the person's e-mail or own serial number in any readable form (every
file scanned, Parquet decoded), the erasure is recorded by counts only, others keep their rows,
and later runs do not bring the person back."""

import json
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.erasure.forget import forget
from stedi_lakehouse.lake.maintenance import purge_history
from stedi_lakehouse.lake.readers import open_table
from stedi_lakehouse.lake.tables import Lake
from stedi_lakehouse.pipeline import Stages, run_stages
from stedi_lakehouse.presets import Rules
from tests.helpers import (
    BATCHES,
    DATA_TABLES,
    KEY,
    copy_lake,
    deliver,
    files_naming,
    new_lake,
    pick_person,
    subject_key,
)

# A data file no commit names: what a write killed before its commit leaves behind.
LEFT_OVER = "part-00099-left-by-a-killed-write-c000.snappy.parquet"


def run(lake: Lake):
    return run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)


def counts(lake: Lake) -> dict[str, int]:
    return {name: lake.read(name).count() for name in DATA_TABLES}


@pytest.fixture(scope="module")
def forgotten(spark, test_settings, tmp_path_factory):
    """The sample, landed and run in two batches (so the log holds incremental commits whose
    predicates name people), a file naming the person left in a table's folder as a write
    killed before its commit leaves it, then one person forgotten through the CLI."""
    root = tmp_path_factory.mktemp("forget") / "lake"
    lake = new_lake(spark, test_settings, root)
    batches = BATCHES["readings-first"]
    for batch in (batches[:3], batches[3:]):
        for files in batch:
            deliver(root, files)
        run(lake)
    person = pick_person(lake)
    table = Path(lake.table_path("accelerometer_trusted"))
    naming = files_naming(table, person["email"])
    named = next(f for f in naming if f.endswith(".parquet"))
    shutil.copyfile(table / named, table / LEFT_OVER)
    before_files = files_naming(root, person["email"], person["serial"])
    before = counts(lake)
    result = CliRunner().invoke(
        app, ["forget", "--email", person["email"].upper(), "--profile", "test", "-l", str(root)]
    )
    return lake, person, before_files, before, result


def test_the_person_was_everywhere_before(forgotten):
    _, _, before_files, _, _ = forgotten
    places = {f.split("/")[0] + "/" + f.split("/")[1] for f in before_files}
    assert {"landing/customer", "landing/accelerometer", "landing/step_trainer"} <= places
    assert any("_delta_log" in f for f in before_files)  # statistics and predicates in the log
    assert any("/quarantine/" in f for f in before_files)


def test_forget_reports_counts_and_names_nobody(forgotten):
    lake, person, _, before, result = forgotten
    assert result.exit_code == 0, (result.output, str(result.exception).replace("\n", " ")[:2500])
    assert person["email"].lower() not in result.output.lower()
    assert (
        "machine_learning_curated" in result.output and "landing file(s) rewritten" in result.output
    )
    erasures = lake.read("erasures").collect()
    assert len(erasures) == 1
    removed = erasures[0]["rows_removed"]
    assert set(removed) >= {"customer_landing", "accelerometer_trusted", "step_trainer_landing"}
    assert erasures[0]["landing_files_rewritten"] >= 3
    assert counts(lake) == {t: n - removed.get(t, 0) for t, n in before.items()}


def test_no_file_under_the_lake_root_names_the_person(forgotten):
    lake, person, _, _, _ = forgotten
    root = Path(lake.root)
    assert files_naming(root, person["email"], person["serial"]) == []
    ml = lake.read("machine_learning_curated")
    assert ml.filter(F.col("subject_key") == subject_key(person["email"])).count() == 0


def test_files_no_version_uses_are_deleted_and_the_rest_kept(forgotten):
    lake, _, before_files, _, _ = forgotten
    table = Path(lake.table_path("accelerometer_trusted"))
    assert f"{table.relative_to(lake.root)}/{LEFT_OVER}" in before_files
    assert not (table / LEFT_OVER).exists()
    used = set(open_table(lake.root, "accelerometer_trusted").file_uris())
    data = {str(p) for p in table.iterdir() if p.suffix == ".parquet"}
    assert data == used


def test_a_table_whose_latest_commit_states_no_rules_keeps_them_through_a_purge(lake):
    """Its purge makes a commit that states them (the commit stating them goes with the log)."""
    lake.overwrite(lake.spark.range(3), "runs", rules=Rules.PRIVACY)
    lake.spark.sql(f"ALTER TABLE delta.`{lake.table_path('runs')}` SET TBLPROPERTIES ('a' = 'b')")
    purge_history(lake, "runs")
    again = Lake(lake.spark, lake.root, lake.database)
    assert len(again.history("runs")) == 1
    assert again.table_rules("runs") is Rules.PRIVACY


def test_old_versions_are_gone_and_the_tables_still_work(forgotten):
    lake, _, _, _, _ = forgotten
    history = lake.history("accelerometer_trusted")
    assert len(history) == 1  # only the purged table's current version remains
    assert lake.read("accelerometer_trusted").count() > 0


def test_later_runs_do_not_bring_the_person_back(forgotten):
    lake, person, _, _, _ = forgotten
    root = Path(lake.root)
    assert lake.table_rules("accelerometer_trusted") is Rules.PRIVACY  # kept through the purge
    assert run(lake).writes == []  # nothing new: nothing rebuilt either
    extra = root / "landing" / "accelerometer" / "later" / "part-9.json"
    extra.parent.mkdir(parents=True)
    line = {"user": "Larry.Clayton@test.com", "timestamp": 1655564000123, "x": 1, "y": 2, "z": 3}
    extra.write_text(json.dumps(line) + "\n")
    run(lake)
    rules_changed = Stages(lake, rules=Rules.UDACITY, pseudonym_key=KEY)
    rules_changed.trusted()  # a full rebuild from landing
    rules_changed.curated(pseudonym_key=KEY)
    assert files_naming(root, person["email"], person["serial"]) == []


def test_forgetting_nobody_is_one_clear_line(forgotten):
    lake, _, _, _, _ = forgotten
    result = CliRunner().invoke(
        app, ["forget", "--email", "nobody@nowhere.test", "--profile", "test", "-l", lake.root]
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: nobody with that e-mail address is in the lake")
    assert "--before-delivery" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_forget_on_a_lake_under_the_udacity_rules_takes_their_pairs_out(
    sample_runs, spark, test_settings, tmp_path
):
    """Pairs made under the udacity rules keep the address and serial number, no pseudonym:
    the person's are found by either."""
    lake = copy_lake(sample_runs(Rules.UDACITY).root, tmp_path / "lake", spark, test_settings)
    pairs = lake.read("machine_learning_curated")
    email = pairs.select("user").orderBy("user").first()[0]
    theirs = F.lower("user") == email.lower()
    assert pairs.filter(theirs).count() > 0
    others = pairs.filter(~theirs).count()
    forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    pairs = lake.read("machine_learning_curated")
    assert pairs.filter(theirs).count() == 0
    assert pairs.count() == others
    assert files_naming(Path(lake.root), email) == []
