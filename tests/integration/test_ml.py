"""Training sets from a real lake (Spark writes it, delta-rs reads it): `stedi-lake export` and
`training_set` split the sample's machine_learning_curated by person, reproducibly; an export
`--as-of` a version equals the export made at that version, less the people who left since;
the dataset card says what was exported; bad input is one `error:` line."""

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.keys import FINGERPRINT_PROPERTY, fingerprint
from stedi_lakehouse.ml import training_set
from stedi_lakehouse.pipeline import Stages, run_stages
from stedi_lakehouse.presets import Rules
from tests.helpers import (
    BATCHES,
    EXPECTED_ROWS,
    KEY,
    assert_in_time_order_per_person,
    copy_lake,
    deliver,
    new_lake,
    pick_person,
    subject_key,
    withdrawal,
)

SPLITS = ("train", "validation", "test")
ML_ROWS = EXPECTED_ROWS[Rules.PRIVACY]["machine_learning_curated"]


def export(root, out: Path, *args: str):
    return CliRunner().invoke(
        app, ["export", "--profile", "test", "-l", str(root), "--out", str(out), *args]
    )


def exported(out: Path) -> dict[str, pa.Table]:
    return {name: pq.read_table(out / name / "part-00000.parquet") for name in SPLITS}


@pytest.fixture(scope="module")
def lake_over_time(spark, test_settings, tmp_path_factory):
    """The sample in two runs (the customers' later updates last, which change
    machine_learning_curated), exported with seed 7 after the first run."""
    base = tmp_path_factory.mktemp("ml")
    root = base / "lake"
    lake = new_lake(spark, test_settings, root)
    batches = BATCHES["readings-first"]
    for files in batches[:-1]:
        deliver(root, files)
    run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    first_version = lake.version("machine_learning_curated")
    before = export(root, base / "before", "--seed", "7")
    deliver(root, batches[-1])
    run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    return root, base, first_version, before


def people(sets: dict[str, pa.Table]) -> set[str]:
    return {k for rows in sets.values() for k in rows.column("subject_key").to_pylist()}


def moments_of(rows: pa.Table) -> tuple[list, list]:
    return rows.column("subject_key").to_pylist(), rows.column("reading_time_ms").to_pylist()


def moments(sets: dict[str, pa.Table]) -> set[tuple[str, int]]:
    """(person, reading time) of every row."""
    return {m for rows in sets.values() for m in zip(*moments_of(rows), strict=True)}


def test_an_as_of_export_is_the_export_made_before_a_later_run_less_who_left(lake_over_time):
    """Every row whose person and moment are still in the table keeps its split; the rows the
    later run took out (consent withdrawn, or moved later) are not exported again."""
    root, base, first_version, before = lake_over_time
    assert before.exit_code == 0, before.output
    latest = export(root, base / "latest", "--seed", "7")
    as_of = export(root, base / "as-of", "--seed", "7", "--as-of", str(first_version))
    assert latest.exit_code == 0 and as_of.exit_code == 0, (latest.output, as_of.output)
    assert exported(base / "latest") != exported(base / "before")  # the later run changed it
    still = moments(exported(base / "latest"))
    left = {key for key, _ in moments(exported(base / "before")) - still}
    assert left - people(exported(base / "latest")), "the later run should take somebody out"
    for name, rows in exported(base / "before").items():
        kept = [moment in still for moment in zip(*moments_of(rows), strict=True)]
        assert exported(base / "as-of")[name] == rows.filter(pa.array(kept))
    cards = [json.loads((base / d / "card.json").read_text()) for d in ("before", "as-of")]
    assert cards[1].pop("people_left_out") == len(left) and cards[0].pop("people_left_out") == 0
    assert {k: v for k, v in cards[1].items() if k != "splits"} == {
        k: v for k, v in cards[0].items() if k != "splits"
    }


def test_the_sample_splits_are_disjoint_by_person_and_hold_every_row(lake_over_time, tmp_path):
    root, _, _, _ = lake_over_time
    result = export(root, tmp_path / "sets", "--seed", "7")
    assert result.exit_code == 0, result.output
    parts = exported(tmp_path / "sets")
    people = {name: set(rows["subject_key"].to_pylist()) for name, rows in parts.items()}
    assert all(people.values())  # the sample's 35 people reach every split
    assert not people["train"] & people["validation"]
    assert not people["train"] & people["test"]
    assert not people["validation"] & people["test"]
    assert sum(rows.num_rows for rows in parts.values()) == ML_ROWS
    for rows in parts.values():  # one person's rows together, in time order
        assert_in_time_order_per_person(rows)
    card = json.loads((tmp_path / "sets" / "card.json").read_text())
    shown = {name: (s["rows"], s["people"]) for name, s in card["splits"].items()}
    # under the test key: subject keys, and so the splits, depend on the pseudonym key (and
    # on the addresses they are made of, in lower case)
    assert shown == {"train": (178, 28), "validation": (25, 4), "test": (18, 3)}


def test_the_same_seed_exports_the_same_files(lake_over_time, tmp_path):
    root, _, _, _ = lake_over_time
    for out in ("one", "two"):
        assert export(root, tmp_path / out, "--seed", "11").exit_code == 0
    for name in [*(f"{s}/part-00000.parquet" for s in SPLITS), "card.json", "README.md"]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert export(root, tmp_path / "other", "--seed", "12").exit_code == 0
    assert exported(tmp_path / "other") != exported(tmp_path / "one")


def test_the_card_says_what_was_exported(lake_over_time, tmp_path):
    root, _, first_version, _ = lake_over_time
    result = export(root, tmp_path / "sets", "--splits", "train=0.7,test=0.3", "--format", "csv")
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "sets" / "card.json").read_text())
    assert card["table"] == "machine_learning_curated"
    assert card["delta_version"] > first_version
    assert card["rules"] == "privacy"
    assert card["pseudonym_key_fingerprint"] == fingerprint(b"test-key")  # the run recorded it
    assert KEY.decode() not in json.dumps(card)
    assert list(card["splits"]) == ["train", "test"]
    assert sum(s["rows"] for s in card["splits"].values()) == ML_ROWS
    assert sum(s["people"] for s in card["splits"].values()) == 35
    meanings = {c["name"]: c["meaning"] for c in card["columns"]}
    assert meanings["distance_from_object"] == "Step-trainer distance reading."
    assert "shareWithResearchAsOfDate" in card["consent"]
    readme = (tmp_path / "sets" / "README.md").read_text()
    assert "## What consent covers" in readme and "`distance_from_object`" in readme
    csv = (tmp_path / "sets" / "test" / "part-00000.csv").read_text().splitlines()
    assert csv[0].replace('"', "") == "subject_key,reading_time_ms,distance_from_object,x,y,z"
    assert len(csv) - 1 == card["splits"]["test"]["rows"]


def test_an_as_of_export_leaves_out_who_withdrew_since(
    lake_over_time, spark, test_settings, tmp_path
):
    """An earlier version still holds a person who withdrew consent after it (until
    maintenance): exported as of that version, they are not in any split."""
    root, base, first_version, _ = lake_over_time
    lake = copy_lake(root, tmp_path / "lake", spark, test_settings)
    person = pick_person(lake)
    theirs = subject_key(person["email"])
    before = exported(base / "before")
    assert any(theirs in rows.column("subject_key").to_pylist() for rows in before.values())
    update = tmp_path / "lake" / "landing" / "customer" / "withdrawal.json"
    update.write_text(json.dumps(withdrawal(lake, person["email"])) + "\n")
    run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    result = export(lake.root, tmp_path / "sets", "--seed", "7", "--as-of", str(first_version))
    assert result.exit_code == 0, result.output
    sets = exported(tmp_path / "sets")
    assert all(theirs not in rows.column("subject_key").to_pylist() for rows in sets.values())
    assert sum(t.num_rows for t in sets.values()) < sum(t.num_rows for t in before.values())
    card = json.loads((tmp_path / "sets" / "card.json").read_text())
    # with rows the fixture's later run took out, and now theirs
    assert export(root, tmp_path / "latest", "--seed", "7").exit_code == 0
    left_before = {key for key, _ in moments(before) - moments(exported(tmp_path / "latest"))}
    assert card["people_left_out"] == len(left_before | {theirs})
    old = training_set(lake.root, split="train", seed=7, as_of=first_version)
    assert theirs not in old.column("subject_key").to_pylist()


def test_an_as_of_export_leaves_out_the_moments_a_later_consent_does_not_cover(
    lake_over_time, spark, test_settings, tmp_path
):
    """Research consent moved later after a version: exported as of it, the person's rows
    before the new date are left out, and those after it stay."""
    root, _, first_version, _ = lake_over_time
    lake = copy_lake(root, tmp_path / "lake", spark, test_settings)
    person = pick_person(lake)
    theirs = subject_key(person["email"])

    def their_moments() -> list[int]:
        sets = exported(tmp_path / "sets")
        return sorted(t for key, t in moments(sets) if key == theirs)

    assert export(lake.root, tmp_path / "sets", "--as-of", str(first_version)).exit_code == 0
    before = their_moments()
    assert len(before) >= 2, "the person needs pairs at two moments"
    later = {**withdrawal(lake, person["email"]), "shareWithResearchAsOfDate": before[-1]}
    update = tmp_path / "lake" / "landing" / "customer" / "consent-later.json"
    update.write_text(json.dumps(later) + "\n")
    run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    shutil.rmtree(tmp_path / "sets")
    result = export(lake.root, tmp_path / "sets", "--as-of", str(first_version))
    assert result.exit_code == 0, result.output
    assert their_moments() == [t for t in before if t >= before[-1]]
    card = json.loads((tmp_path / "sets" / "card.json").read_text())
    assert card["people_left_out"] >= 1


def test_training_set_gives_the_exported_rows(lake_over_time, tmp_path):
    root, _, first_version, _ = lake_over_time
    assert export(root, tmp_path / "sets", "--seed", "7").exit_code == 0
    for name in SPLITS:
        assert training_set(str(root), split=name, seed=7) == exported(tmp_path / "sets")[name]
    old = training_set(str(root), split="test", seed=7, as_of=first_version)
    assert old == exported(lake_over_time[1] / "before")["test"]
    frame = training_set(str(root), split="validation", seed=7, as_pandas=True)
    assert list(frame.columns)[:2] == ["subject_key", "reading_time_ms"]


def test_the_card_carries_the_key_fingerprint_property(lake_over_time, spark, tmp_path):
    root, _, _, _ = lake_over_time
    copy = tmp_path / "lake"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("_metastore"))
    table = copy / "delta" / "curated" / "machine_learning_curated"
    spark.sql(
        f"ALTER TABLE delta.`{table}` SET TBLPROPERTIES ('{FINGERPRINT_PROPERTY}' = 'f1ngerprint')"
    )
    assert export(copy, tmp_path / "sets").exit_code == 0
    card = json.loads((tmp_path / "sets" / "card.json").read_text())
    assert card["pseudonym_key_fingerprint"] == "f1ngerprint"
    assert "`f1ngerprint`" in (tmp_path / "sets" / "README.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--splits", "train=0.9,validation=0.2"], "error: the split fractions must sum to 1"),
        (["--splits", "train=0.9,dev=0.1"], "error: unknown split 'dev'"),
        (["--as-of", "99"], "error: machine_learning_curated has no version 99"),
        (["--table", "customer_curated"], "error: customer_curated (version 1) has no subject"),
        (["--table", "nope"], "error: no table 'nope' in the catalogue"),
    ],
)
def test_bad_input_is_one_error_line(lake_over_time, tmp_path, args, message):
    root, _, _, _ = lake_over_time
    result = export(root, tmp_path / "sets", *args)
    assert result.exit_code == 1
    assert result.output.startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "sets").exists()


def test_a_missing_lake_or_a_used_folder_is_one_error_line(lake_over_time, tmp_path):
    root, base, _, _ = lake_over_time
    result = export(tmp_path / "no-lake", tmp_path / "sets")
    assert result.exit_code == 1 and result.output.startswith("error: lake root ")
    result = export(root, base / "before")
    assert result.exit_code == 1 and "is not an empty folder" in result.output
