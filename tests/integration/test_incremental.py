"""The lakehouse over time, on real Spark and Delta: landing data arriving in batches gives the
tables one run over all of it gives; a run with nothing new writes nothing; customers who
withdraw or grant consent are re-evaluated on the next run, without reprocessing everyone."""

import json
import shutil
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.tables import Dataset, RunRecord
from stedi_lakehouse.lake.tables import Lake
from stedi_lakehouse.pipeline import StageReport, Stages, watch
from stedi_lakehouse.presets import Rules
from tests.helpers import (
    BATCHES,
    DATA_TABLES,
    FILES,
    FILES_OF,
    KEY,
    SAMPLE,
    copy_lake,
    deliver,
    new_lake,
    run_through,
    snapshot,
    subject_key,
    versions,
)


def test_the_batches_cover_the_sample_once():
    for batches in BATCHES.values():
        assert sorted(f for batch in batches for f in batch) == FILES


def run(lake: Lake, rules: Rules):
    stages = Stages(lake, rules=rules)
    return stages.trusted().merge(stages.curated(pseudonym_key=KEY))


@pytest.fixture(params=list(Rules), ids=str)
def one_run(request, sample_runs, spark, test_settings):
    """The whole sample in one run: the state every other way of getting there must reach."""
    rules = request.param
    lake = Lake(spark, str(sample_runs(rules).root), test_settings.catalog.database)
    return lake, rules, snapshot(lake)


@pytest.mark.parametrize("through", ["in-process", "server"])
@pytest.mark.parametrize("order", list(BATCHES))
def test_batches_equal_one_run(order, through, one_run, spark, test_settings, tmp_path, request):
    """Through a lake server, each batch's run is `stedi-lake run` as its thin client."""
    _, rules, expected = one_run
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    server = request.getfixturevalue("lake_server") if through == "server" else None
    for batch in BATCHES[order]:
        deliver(Path(lake.root), batch)
        if server:
            run_through(server, Path(lake.root), rules)
        else:
            run(lake, rules)
    got = snapshot(lake)
    for name in DATA_TABLES:
        assert got[name] == expected[name], f"{name} differs after batches {order}"


def test_a_run_with_nothing_new_writes_no_version(one_run):
    lake, rules, expected = one_run
    before = versions(lake)
    report = run(lake, rules)
    assert report.writes == []
    assert versions(lake) == before
    assert snapshot(lake) == expected


def test_a_new_file_adds_its_rows_without_rewriting_the_tables(privacy_lake):
    """One new accelerometer file: only tables it can change get a commit, adding its rows."""
    lake = privacy_lake
    readings = [
        json.dumps(
            {
                "user": "Larry.Clayton@test.com",
                "timestamp": 1655564000000 + i,
                "x": 1.0,
                "y": 2.0,
                "z": 3.0,
            }
        )
        for i in range(5)
    ]
    extra = new_accelerometer_file(lake, readings)
    report = run(lake, Rules.PRIVACY)
    written = {w.table: w for w in report.writes}
    assert written["accelerometer_landing"].rows == 5
    assert written["accelerometer_quarantine"].rows == 1
    assert "customer_landing" not in written and "customer_trusted" not in written
    assert report.datasets["accelerometer"].files == 1
    # the last writes were made by a run that finished: the new file's rows are appended
    for table in ("accelerometer_landing", "accelerometer_quarantine", "accelerometer_trusted"):
        assert last_write_mode(lake, table) == "Append"
    assert lake.read("accelerometer_landing").filter(F.col("source_file") == extra).count() == 5


def new_accelerometer_file(lake: Lake, readings: list[str]) -> str:
    """A new landing file of `readings` and one bad line; its path as the lake gives it."""
    relative = "landing/accelerometer/2022/07/part-9.json"
    extra = Path(lake.root) / relative
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_text("\n".join([*readings, "not json"]) + "\n")
    return relative


def last_write_mode(lake: Lake, table: str) -> str:
    return lake.history(table, 1)[0]["operationParameters"]["mode"]


def test_rows_a_stopped_run_wrote_are_replaced_not_added_again(privacy_lake):
    """A run that stopped after writing a new file's landing rows, before its bookmark: the
    next run replaces those rows (appending them would count them twice)."""
    lake = privacy_lake
    reading = {"user": "Larry.Clayton@test.com", "x": 1.0, "y": 2.0, "z": 3.0}
    readings = [json.dumps(reading | {"timestamp": 1655564000000 + i}) for i in range(5)]
    extra = new_accelerometer_file(lake, readings)
    Stages(lake, rules=Rules.PRIVACY).ingest(Dataset.ACCELEROMETER, [extra], StageReport())
    run(lake, Rules.PRIVACY)
    assert last_write_mode(lake, "accelerometer_landing") == "Overwrite"
    assert lake.read("accelerometer_landing").filter(F.col("source_file") == extra).count() == 5
    assert lake.read("accelerometer_quarantine").filter(F.col("source_file") == extra).count() == 1


def test_watch_runs_each_arrival_as_a_run_of_its_own(spark, test_settings, tmp_path):
    """`stedi-lake watch`: the first look runs what is there, a look with nothing new writes
    nothing, and a file that arrives between looks is run on its own (its own run id)."""
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    deliver(Path(lake.root), FILES)
    reading = {"user": "Larry.Clayton@test.com", "x": 1.0, "y": 2.0, "z": 3.0}
    arrivals = iter(
        [
            lambda: None,
            lambda: new_accelerometer_file(
                lake, [json.dumps(reading | {"timestamp": 1655564000000 + i}) for i in range(5)]
            ),
        ]
    )
    reports, idle = [], []
    written = watch(
        lake,
        rules=Rules.PRIVACY,
        pseudonym_key=KEY,
        every=30,
        runs=2,
        on_run=lambda report, seconds: reports.append(report),
        on_idle=idle.append,
        sleep=lambda seconds: next(arrivals)(),  # between looks
    )
    assert written == 2 and idle == [1, 1]  # three looks: the sample, nothing, the new file
    assert [r.datasets["accelerometer"].files for r in reports] == [FILES_OF["accelerometer"], 1]
    assert reports[1].datasets["accelerometer"].accepted == 5
    runs = lake.read("runs").select("run_id").collect()
    assert len({r.run_id for r in runs}) == len(runs) == 2


# -- customers change ------------------------------------------------------------------------


def latest_record(lake: Lake, email: str) -> dict:
    rows = [r.asDict() for r in lake.read("customer_landing").collect() if r["email"] == email]
    record = max(rows, key=lambda r: (r["lastUpdateDate"], r["source_file"]))
    record.pop("source_file")
    return record


def person_rows(lake: Lake, email: str, serial: str) -> dict[str, int]:
    """How many rows of each table belong to this person (and their device)."""
    checks = {
        "customer_trusted": ("email", email),
        "customer_curated": ("email", email),
        "accelerometer_trusted": ("user", email),
        "step_trainer_trusted": ("serialNumber", serial),
        "machine_learning_curated": ("subject_key", subject_key(email)),
    }
    return {
        table: lake.read(table).filter(f"{column} = '{value}'").count()
        for table, (column, value) in checks.items()
    }


def curated_people(lake: Lake) -> list[dict]:
    """Curated customers with pairs in machine_learning_curated."""
    keys = {r[0] for r in lake.read("machine_learning_curated").select("subject_key").collect()}
    emails = [r["email"] for r in lake.read("customer_curated").orderBy("email").collect()]
    return [latest_record(lake, e) for e in emails if subject_key(e) in keys]


def unconsenting_person(lake: Lake) -> dict:
    """A customer without consent whose phone and device both sent readings, the device theirs
    alone."""
    landing = lake.read("customer_landing")
    owners = landing.groupBy("serialNumber").agg(F.count_distinct("email")).collect()
    sole = {r[0] for r in owners if r[1] == 1}
    users = {r[0] for r in lake.read("accelerometer_landing").select("user").distinct().collect()}
    serials = {
        r[0] for r in lake.read("step_trainer_landing").select("serialNumber").distinct().collect()
    }
    trusted = {r[0] for r in lake.read("customer_trusted").select("email").collect()}
    for email in sorted(users - trusted):
        if email in {r["email"] for r in landing.select("email").collect()}:
            record = latest_record(lake, email)
            if record["serialNumber"] in sole & serials:
                return record
    raise AssertionError("the sample has no such person")


def reading_times(lake: Lake, email: str) -> list[int]:
    rows = lake.read("accelerometer_landing").filter(f"user = '{email}'").collect()
    return sorted(r["timestamp"] for r in rows)


def change_consent(lake: Lake, record: dict, consent_ms: int | None, name: str) -> Path:
    """Deliver a newer record of this customer with consent set to `consent_ms`."""
    changed = record | {
        "lastUpdateDate": record["lastUpdateDate"] + 86_400_000,
        "shareWithResearchAsOfDate": consent_ms,
    }
    path = Path(lake.root) / "landing/customer/changes" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(changed) + "\n")
    return path


@pytest.fixture
def privacy_lake(sample_lake_copy):
    """A lake with the whole sample run once (privacy), to change."""
    return sample_lake_copy


@pytest.fixture(scope="module", params=["in-process", "server"])
def changed_lake(request, sample_runs, spark, test_settings, tmp_path_factory):
    """The sample run once (privacy), then one batch in which four customers change their
    minds: one withdraws consent, one grants it part-way through their readings, two move it
    earlier or later; that batch run in-process or through a lake server. Returns the lake, the
    people, their rows before, the change run's rows removed per table and a fresh lake that
    got all the files in one run."""
    target = tmp_path_factory.mktemp("changed") / "lake"
    lake = copy_lake(sample_runs().root, target, spark, test_settings)
    curated = curated_people(lake)
    people = {
        "withdrawn": curated[0],
        "moved-earlier": curated[1],
        "moved-later": curated[2],
        "granted": unconsenting_person(lake),
    }
    before = {k: person_rows(lake, p["email"], p["serialNumber"]) for k, p in people.items()}
    consent = {}
    for change, person in people.items():
        times = reading_times(lake, person["email"])
        consent[change] = {
            "withdrawn": None,
            "moved-earlier": times[0],
            "moved-later": times[-1],
            "granted": times[len(times) // 2],
        }[change]
        change_consent(lake, person, consent[change], change)
    if request.param == "server":
        done = run_through(request.getfixturevalue("lake_server"), target, Rules.PRIVACY, "--json")
        writes = RunRecord.model_validate_json(done.stdout).writes
        removed = {w.table: w.rows_removed for w in writes}
    else:
        removed = {w.table: w.removed for w in run(lake, Rules.PRIVACY).writes}

    fresh = new_lake(spark, test_settings, tmp_path_factory.mktemp("changed-fresh") / "lake")
    shutil.copytree(Path(lake.root) / "landing", Path(fresh.root) / "landing", dirs_exist_ok=True)
    run(fresh, Rules.PRIVACY)
    return lake, people, before, consent, removed, fresh


def test_consent_withdrawn_removes_the_person_everywhere(changed_lake):
    lake, people, before, _, _, _ = changed_lake
    person = people["withdrawn"]
    assert all(before["withdrawn"].values()), before
    after = person_rows(lake, person["email"], person["serialNumber"])
    assert after == dict.fromkeys(before["withdrawn"], 0)


def test_consent_granted_brings_in_readings_since_then(changed_lake):
    lake, people, before, consent, _, _ = changed_lake
    email = people["granted"]["email"]
    assert before["granted"]["accelerometer_trusted"] == 0
    trusted = lake.read("accelerometer_trusted").filter(f"user = '{email}'").collect()
    times = reading_times(lake, email)
    assert sorted(r["timestamp"] for r in trusted) == [t for t in times if t >= consent["granted"]]
    assert lake.read("customer_trusted").filter(f"email = '{email}'").count() == 1


@pytest.mark.parametrize("move", ["moved-earlier", "moved-later"])
def test_consent_moved_re_evaluates_the_persons_readings(move, changed_lake):
    lake, people, _, consent, _, _ = changed_lake
    email = people[move]["email"]
    trusted = lake.read("accelerometer_trusted").filter(f"user = '{email}'").collect()
    times = reading_times(lake, email)
    assert sorted(r["timestamp"] for r in trusted) == [t for t in times if t >= consent[move]]


def test_a_withdrawal_dated_in_the_future_withdraws_and_a_grant_so_dated_waits(privacy_lake):
    """A record dated more than a day after the run reads it comes from a clock in the future.
    Granting consent, it would outrank a real withdrawal until that day: quarantined. A
    withdrawal is a withdrawal whenever it is dated: kept, and the person is out."""
    lake = privacy_lake
    withdrawing, granting = curated_people(lake)[0], unconsenting_person(lake)
    ahead = int(time.time() * 1000) + 2 * 86_400_000
    consent = reading_times(lake, granting["email"])[0]
    folder = Path(lake.root) / "landing/customer/changes"
    folder.mkdir(parents=True)
    for name, person, given in (("withdrawal", withdrawing, None), ("grant", granting, consent)):
        record = person | {"lastUpdateDate": ahead, "shareWithResearchAsOfDate": given}
        (folder / f"{name}.json").write_text(json.dumps(record) + "\n")
    run(lake, Rules.PRIVACY)
    gone = person_rows(lake, withdrawing["email"], withdrawing["serialNumber"])
    assert gone == dict.fromkeys(gone, 0)
    assert person_rows(lake, granting["email"], granting["serialNumber"]) == dict.fromkeys(gone, 0)
    reasons = lake.read("customer_quarantine").filter("source_file LIKE '%/changes/%'").collect()
    assert [(r.source_file, r.reason) for r in reasons] == [
        (
            "landing/customer/changes/grant.json",
            "'lastUpdateDate' must not be more than a day after it was read where consent is "
            f"given, got '{ahead}'",
        )
    ]


def test_only_the_changed_peoples_rows_are_reprocessed(changed_lake):
    lake, _, before, _, removed, _ = changed_lake
    # every trusted reading of the four people is replaced, and nobody else's
    assert removed["accelerometer_trusted"] == sum(
        b["accelerometer_trusted"] for b in before.values()
    )
    assert removed["customer_trusted"] == sum(b["customer_trusted"] for b in before.values())
    assert removed["step_trainer_trusted"] < lake.read("step_trainer_trusted").count() / 2


def test_changes_give_what_one_run_over_all_files_gives(changed_lake):
    lake, _, _, _, _, fresh = changed_lake
    assert snapshot(lake) == snapshot(fresh)


def test_a_failed_run_is_recorded_and_the_next_run_finishes_the_work(
    spark, test_settings, tmp_path
):
    from stedi_lakehouse.errors import ConfigError
    from stedi_lakehouse.pipeline import run_stages

    lake = new_lake(spark, test_settings, tmp_path / "lake")
    deliver(Path(lake.root), FILES)
    with pytest.raises(ConfigError, match="no pseudonym key"):
        run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=None)
    run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)
    runs = lake.read("runs").orderBy("started_at").collect()
    assert [r["outcome"] for r in runs] == ["failed", "succeeded"]
    assert runs[0]["error"].startswith("ConfigError: no pseudonym key")
    failed_tables = {w["table"] for w in runs[0]["writes"]}
    assert "accelerometer_trusted" in failed_tables  # the trusted stage had finished
    assert "machine_learning_curated" not in failed_tables
    assert {w["table"] for w in runs[1]["writes"]} >= {"machine_learning_curated"}
    assert lake.read("machine_learning_curated").count() == 221


def test_more_new_files_than_a_predicate_takes_add_each_pair_once(
    sample_runs, spark, test_settings, tmp_path, monkeypatch
):
    """New files beyond KEY_LIMIT make the replaced scopes whole; the pairs the new readings
    add must still be only theirs, not every pair again."""
    from stedi_lakehouse.pipeline import scope

    again = ["accelerometer/again-1.json", "accelerometer/again-2.json"]
    reference = new_lake(spark, test_settings, tmp_path / "reference")
    deliver(Path(reference.root), FILES)
    lake = copy_lake(sample_runs().root, tmp_path / "lake", spark, test_settings)
    for root in (Path(reference.root), Path(lake.root)):
        for name in again:
            shutil.copyfile(SAMPLE / "accelerometer/accelerometer-1.json", root / "landing" / name)
    run(reference, Rules.PRIVACY)
    monkeypatch.setattr(scope, "KEY_LIMIT", 1)
    run(lake, Rules.PRIVACY)
    assert snapshot(lake) == snapshot(reference)
