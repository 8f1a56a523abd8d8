"""End to end on data/sample/: both presets, exact counts, nothing lost, catalog registered."""

import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import DataFrame

from stedi_lakehouse.contracts.spark import spark_schema
from stedi_lakehouse.contracts.tables import CATALOGUE, Dataset, ProcessedFile, RunRecord
from stedi_lakehouse.errors import LakeError, RulesMismatchError
from stedi_lakehouse.lake.catalog import Catalog
from stedi_lakehouse.lake.tables import Lake, local_frame
from stedi_lakehouse.pipeline import Stages
from stedi_lakehouse.presets import Rules
from tests import oracle
from tests.helpers import EXPECTED_EXCLUSIONS, EXPECTED_ROWS, KEY, SAMPLE, written_rows


@pytest.fixture(params=list(Rules), ids=str)
def sample_run(request, sample_runs, spark, test_settings):
    run = sample_runs(request.param)
    lake = Lake(spark, str(run.root), test_settings.catalog.database)
    return lake, run.report, run.rules


def test_exact_rows_per_table(sample_run):
    lake, report, rules = sample_run
    assert written_rows(report) == EXPECTED_ROWS[rules]


def test_rows_agree_with_the_independent_oracle(sample_run):
    _, report, rules = sample_run
    assert written_rows(report) == oracle.expected_counts(SAMPLE, str(rules))


def test_exclusions_by_reason(sample_run):
    _, report, rules = sample_run
    got = {name: counts.excluded for name, counts in report.datasets.items()}
    assert got == EXPECTED_EXCLUSIONS[rules]


def test_nothing_is_lost(sample_run):
    _, report, _ = sample_run
    for dataset in Dataset:
        counts = report.datasets[dataset]
        files = sorted((SAMPLE / dataset).rglob("*.json"))
        records = sum(1 for f in files for line in Path(f).read_text().split("\n") if line.strip())
        assert counts.read == counts.accepted + counts.quarantined == records
        assert counts.accepted == counts.trusted + sum(counts.excluded.values())


def test_every_table_has_its_contract_schema(sample_run):
    lake, _, rules = sample_run
    for name, spec in CATALOGUE.items():
        if name in ("runs", "erasures", "quality", "suppressions"):
            continue  # written by whole runs (`run_stages`) and by `forget`
        got = lake.read(name).schema
        expected = spark_schema(spec.contract_for(rules))
        assert [(f.name, f.dataType) for f in got] == [(f.name, f.dataType) for f in expected], name


def test_quarantine_keeps_raw_line_reason_and_file(sample_run):
    lake, _, _ = sample_run
    rows = lake.read("step_trainer_quarantine").collect()
    assert rows and all(r["reason"] and r["source_file"].endswith(".json") for r in rows)
    sample_lines = {
        line
        for f in (SAMPLE / "step_trainer").rglob("*.json")
        for line in f.read_text().split("\n")
    }
    assert {r["raw_line"] for r in rows} <= sample_lines


@pytest.mark.parametrize("rules", list(Rules), ids=str)
def test_tables_are_registered_in_the_catalog(rules, sample_runs):
    run = sample_runs(rules)  # the catalog's rows, read right after the run registered them
    rows = written_rows(run.report)
    for name in ("customer_trusted", "machine_learning_curated", "accelerometer_quarantine"):
        assert run.catalog_rows[name] == rows[name]


def _bookmark(spark) -> DataFrame:
    """One bookmark row, to write to `processed_files`."""
    rows = [{"path": "landing/x/1.json", "dataset": "x", "stage": "trusted", "run_id": "r"}]
    return local_frame(spark, rows, spark_schema(ProcessedFile))


def test_adding_to_a_registered_table_does_not_ask_the_metastore(lake, monkeypatch):
    """A commit registers the table it creates (or writes whole); one that adds to a table
    does not, while the metastore it was registered in is kept: booting the metastore cost a
    small run about a second. Without it, every commit registers again."""
    bookmark = _bookmark(lake.spark)
    lake.append(bookmark, "processed_files")
    lake.catalog.registered()
    assert lake.spark.catalog.tableExists("stedi.processed_files")
    asked: list[str] = []
    monkeypatch.setattr(Catalog, "register", lambda self, name, **_: asked.append(name))
    lake.append(bookmark, "processed_files")
    lake.catalog.registered()
    assert asked == []
    monkeypatch.setattr(Catalog, "metastore_kept", lambda self: False)
    lake.append(bookmark, "processed_files")
    lake.catalog.registered()
    assert asked == ["processed_files"]


@pytest.mark.parametrize("folder", ["lakes", "lakes with 50% odd #names"])
def test_a_table_written_whole_elsewhere_is_registered_there(
    folder, spark, test_settings, tmp_path
):
    """The catalog names one lake's table: a lake that writes it whole moves the name to its
    own, and one written whole again where the name points keeps it."""
    bookmark = _bookmark(spark)
    for root in [tmp_path / folder / "a", tmp_path / folder / "b"] * 2:
        root.mkdir(parents=True, exist_ok=True)
        lake = Lake(spark, str(root), test_settings.catalog.database)
        lake.overwrite(bookmark, "processed_files", rules=None)
        lake.catalog.registered()
        path = Path(lake.table_path("processed_files"))
        detail = spark.sql("DESCRIBE DETAIL stedi.processed_files").collect()[0]
        assert Path(detail["location"].removeprefix("file:")) == path
        # read from the metastore's entry, as registering does
        location = lake.catalog.location("stedi", "processed_files")
        assert location is not None and Path(location.removeprefix("file:")) == path


def test_a_table_a_first_append_makes_takes_its_name_from_another_lake(spark, lake, tmp_path):
    """A table made by adding rows (the bookkeeping tables are) is registered where it is
    made, even while the name points at another lake's table."""
    bookmark = _bookmark(spark)
    other = Lake(spark, str(tmp_path / "other"), lake.catalog.database)
    (tmp_path / "other").mkdir()
    for each in (other, lake):
        each.append(bookmark, "processed_files")
        each.catalog.registered()
    location = lake.catalog.location("stedi", "processed_files")
    assert location is not None
    assert Path(location.removeprefix("file:")) == Path(lake.table_path("processed_files"))


def test_opening_a_lake_registers_a_table_made_since_its_tables_were(spark, lake):
    """A table made where no registration followed (a command killed right after making it,
    another machine writing the same S3 lake) is registered when a command next opens the
    lake, though the others need not be."""
    bookmark = _bookmark(spark)
    lake.append(bookmark, "processed_files")
    lake.catalog.registered()
    lake.adopt_metastore()  # as a command opening the lake now would
    bookmark.write.format("delta").save(lake.table_path("runs"))  # Lake's commits register
    lake.adopt_metastore()
    location = lake.catalog.location("stedi", "runs")
    assert location is not None
    assert Path(location.removeprefix("file:")) == Path(lake.table_path("runs"))


def test_a_table_whose_registered_lake_was_deleted_is_registered_again(spark, lake, tmp_path):
    """The catalog's name points at a lake deleted since (a shared or external metastore
    outlives it): the next lake to write the table whole takes the name."""
    bookmark = _bookmark(spark)
    gone = Lake(spark, str(tmp_path / "gone"), lake.catalog.database)
    (tmp_path / "gone").mkdir()
    gone.overwrite(bookmark, "processed_files", rules=None)
    gone.catalog.registered()
    shutil.rmtree(tmp_path / "gone")
    lake.overwrite(bookmark, "processed_files", rules=None)
    lake.catalog.registered()
    assert spark.table("stedi.processed_files").count() == 1


def test_curated_refuses_trusted_tables_of_another_preset(sample_run):
    lake, _, rules = sample_run
    other = Rules.UDACITY if rules is Rules.PRIVACY else Rules.PRIVACY
    with pytest.raises(RulesMismatchError, match=f"built with --rules {rules}"):
        Stages(lake, rules=other).curated(pseudonym_key=KEY)


def test_missing_landing_folder_is_a_clear_error(lake):
    with pytest.raises(LakeError, match="no landing folder for 'customer'"):
        Stages(lake, rules=Rules.PRIVACY).trusted()


def test_landing_that_is_a_file_is_a_clear_error(lake):
    (Path(lake.root) / "landing").mkdir()
    for dataset in Dataset:
        (Path(lake.root) / "landing" / dataset).write_text("{}\n")
    with pytest.raises(LakeError, match="landing for 'customer' must be a folder"):
        Stages(lake, rules=Rules.PRIVACY).trusted()


def test_source_file_is_the_path_under_the_lake_root(lake):
    """Even when a folder under landing/ repeats the lake root's path: only the prefix is cut."""
    root = lake.storage.qualified_root
    nested = Path(lake.root) / "landing" / "customer" / root.replace("/", os.sep)
    nested.mkdir(parents=True)
    (nested / "c.json").write_text('{"a": 1}\n')
    (Path(lake.root) / "landing" / "customer" / "d.json").write_text('{"a": 2}\n')
    got = {row.source_file for row in lake.landing.read(Dataset.CUSTOMER).collect()}
    assert got == {f"landing/customer/{root}c.json", "landing/customer/d.json"}


def test_curated_before_trusted_is_a_clear_error(lake):
    with pytest.raises(LakeError, match="table customer_trusted not found"):
        Stages(lake, rules=Rules.PRIVACY).curated(pseudonym_key=KEY)


def test_jobs_are_named_by_what_they_do_and_the_name_is_restored(lake):
    """`bench/eventlog.py` shows each Spark job by its description: a write names its table."""
    context = lake.spark.sparkContext
    with lake.described("write customer_landing"):
        assert context.getLocalProperty("spark.job.description") == "write customer_landing"
        with lake.described("look up x"):
            assert context.getLocalProperty("spark.job.description") == "look up x"
        assert context.getLocalProperty("spark.job.description") == "write customer_landing"
    assert context.getLocalProperty("spark.job.description") is None


@pytest.mark.parametrize("arrow", [True, False], ids=["arrow", "python rows"])
def test_local_frames_hold_the_rows_with_exactly_the_contract_schema(spark, monkeypatch, arrow):
    """Bookmarks and run records go to the JVM as Arrow (or, without pyarrow, as Python rows):
    the same rows, nested maps and times included, and the contract's schema to the letter."""
    if not arrow:
        monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    counts = {"dataset": "customer", "files": 1, "read": 3, "accepted": 2, "quarantined": 1}
    record = {
        "run_id": "r",
        "command": "all",
        "rules": "privacy",
        "started_at": datetime(2026, 11, 29, 17, 1, 2, 123456, tzinfo=UTC),
        "ended_at": datetime(2026, 11, 29, 17, 2, 0, tzinfo=UTC),
        "outcome": "failed",
        "error": "ValueError: 'quoted' ünicode\nline",
        "datasets": [{**counts, "trusted": 1, "excluded": {"no consent": 1}}],
        "writes": [{"table": "runs", "rows_written": 2**40, "rows_removed": 0, "version": 3}],
    }
    records = [record, {**record, "error": None, "writes": []}]
    schema = spark_schema(RunRecord)
    frame = local_frame(spark, records, schema)
    assert frame.schema == schema
    assert frame.collect() == spark.createDataFrame(records, schema).collect()
    rows = [row.asDict(recursive=True) for row in frame.collect()]
    assert rows[0]["datasets"][0]["excluded"] == {"no consent": 1}
    assert rows[0]["writes"][0]["rows_written"] == 2**40 and rows[1]["writes"] == []
    assert rows[0]["error"] == record["error"] and rows[1]["error"] is None
    assert local_frame(spark, [], schema).count() == 0
