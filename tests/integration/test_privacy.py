"""Privacy under sequences of events, on real Spark and Delta: withdraw then forget, a forget
interrupted after any step then run again, a forgotten person delivered again, another key,
and `query` kept to reading. Every file under the lake root is scanned (Parquet decoded, the
Delta log, checkpoints and .crc files included)."""

import gzip
import io
import json
import shutil
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from typer.testing import CliRunner

from stedi_lakehouse.cli import app
from stedi_lakehouse.contracts.spark import spark_schema
from stedi_lakehouse.contracts.tables import CustomerLanding, PendingErasure, Suppression
from stedi_lakehouse.erasure.forget import JOURNAL, check_key, forget
from stedi_lakehouse.erasure.forget import _suppress as suppress
from stedi_lakehouse.erasure.identifiers import normalised
from stedi_lakehouse.errors import KeyMismatchError, LakeError, RulesMismatchError
from stedi_lakehouse.keys import FINGERPRINT_PROPERTY, fingerprint, keyed_hash
from stedi_lakehouse.lake.maintenance import due
from stedi_lakehouse.lake.tables import USER_METADATA, Lake
from stedi_lakehouse.pipeline import Stages, run_stages
from stedi_lakehouse.pipeline.bookmarks import IDENTIFIERS_KEY
from stedi_lakehouse.pipeline.ingest import identifiers_in_lower_case
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.settings import MaintenanceSettings
from tests.helpers import (
    DATA_TABLES,
    KEY,
    copy_files_as_a_kill_leaves_them,
    copy_lake,
    files_naming,
    land_sample,
    new_lake,
    pick_person,
    snapshot,
    subject_key,
    versions,
    withdrawal,
)

runner = CliRunner()


def run(lake: Lake):
    return run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=KEY)


def cli(root: Path, *args: str, env: dict | None = None):
    return runner.invoke(app, [*args, "--profile", "test", "-l", str(root)], env=env)


def sample_run(sample_runs, spark, test_settings, root: Path) -> tuple[Lake, dict]:
    """The sample run, copied to a new lake at `root`; a curated person to erase."""
    lake = copy_lake(sample_runs().root, root, spark, test_settings)
    return lake, pick_person(lake)


@pytest.fixture(scope="module")
def withdrawn(sample_runs, spark, test_settings, tmp_path_factory):
    """The sample, run; then one curated person withdraws consent, and a run applies it."""
    root = tmp_path_factory.mktemp("withdrawn") / "lake"
    lake, person = sample_run(sample_runs, spark, test_settings, root)
    update = root / "landing" / "customer" / "withdrawal.json"
    spelt_otherwise = {"email": person["email"].upper()}  # one person's in any letter case
    update.write_text(json.dumps(withdrawal(lake, person["email"]) | spelt_otherwise) + "\n")
    run(lake)
    return root, person


def test_a_withdrawal_leaves_the_current_version_but_not_the_storage(withdrawn):
    root, person = withdrawn
    assert files_naming(root / "delta" / "trusted" / "customer_trusted", person["email"])


def test_a_withdrawal_spelt_in_other_letters_takes_out_all_that_is_theirs(
    withdrawn, spark, test_settings
):
    root, person = withdrawn
    lake, email = Lake(spark, str(root), test_settings.catalog.database), person["email"].lower()
    theirs = {
        "customer_trusted": F.lower("email") == email,
        "customer_curated": F.lower("email") == email,
        "accelerometer_trusted": F.lower("user") == email,
        "step_trainer_trusted": F.col("serialNumber") == person["serial"],
        "machine_learning_curated": F.col("subject_key") == subject_key(email),
    }
    for table, condition in theirs.items():
        assert lake.read(table, version=0).filter(condition).count() > 0, table
        assert lake.read(table).filter(condition).count() == 0, table


def as_a_lake_made_before_0_3(lake: Lake) -> None:
    """Make `lake` as 0.2 left it: addresses and serial numbers as delivered (here in
    capitals, serial numbers with white space around them), and no commit recording that they
    are in lower case. Pseudonyms change too, to see them made again."""
    changes = {"subject_key": "concat('old-', subject_key)"}
    changes |= {c: c for c in ("email", "user")}
    changes["serialNumber"] = "concat(' ', serialNumber, '\\u00a0')"
    for name in DATA_TABLES:
        path, metadata = lake.table_path(name), lake.table_metadata(name)
        metadata.pop(IDENTIFIERS_KEY)
        columns = [c for c in lake.read(name).columns if c in changes]
        with lake.setting(USER_METADATA, json.dumps(metadata)):
            if columns:
                sets = ", ".join(f"{c} = upper({changes[c]})" for c in columns)
                lake.spark.sql(f"UPDATE delta.`{path}` SET {sets}")
            else:
                lake.spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('made' = '0.2')")
        lake.changed(name)


def test_a_lake_made_before_lower_case_addresses_is_lowered_then_as_if_made_now(
    sample_runs, spark, test_settings, tmp_path
):
    """A lake made by 0.2 kept addresses as delivered, so a withdrawal spelt otherwise was not
    applied. Its next run lowers the landing tables' addresses once and remakes the tables made
    from them: then the same tables as a lake made now, the withdrawal applied."""
    made_now = copy_lake(sample_runs().root, tmp_path / "now", spark, test_settings)
    made_before = copy_lake(sample_runs().root, tmp_path / "before", spark, test_settings)
    as_a_lake_made_before_0_3(made_before)
    assert made_before.read("customer_landing").filter(F.col("email").rlike("[A-Z]")).count()
    with pytest.raises(RulesMismatchError, match="before 0.3"):
        run_stages(Stages(made_before, rules=Rules.PRIVACY), "curated", pseudonym_key=KEY)
    person = pick_person(made_now)
    record = withdrawal(made_now, person["email"]) | {"email": person["email"].title()}
    for lake in (made_now, made_before):
        update = Path(lake.root) / "landing" / "customer" / "withdrawal.json"
        update.write_text(json.dumps(record) + "\n")
        run(lake)
    assert snapshot(made_before) == snapshot(made_now)
    email = person["email"].lower()
    assert made_now.read("customer_trusted").filter(F.col("email") == email).count() == 0
    history = [c["operation"] for c in made_before.history("customer_landing")]
    assert history.count("UPDATE") == 2  # made old once, lowered once
    run(made_before)  # nothing new: nothing lowered again
    assert [c["operation"] for c in made_before.history("customer_landing")] == history


def test_a_lake_made_before_0_3_has_its_identifiers_composed_once(spark, test_settings, tmp_path):
    """Its next run lowers, strips and composes the landing tables' identifiers once: those
    beyond ASCII by a MERGE first (composing, which an UPDATE refuses), then the UPDATE that
    records the work. A second finds nothing to do."""
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    emails = ["ZOE\u0308@X.IO", "zo\u00eb@x.io", " A@X.IO", "b@x.io"]
    rows = [
        {"email": e, "serialNumber": f" A\u030a-{i}\t", "source_file": "customers.json"}
        | {"registrationDate": 1, "lastUpdateDate": 1}
        for i, e in enumerate(emails)
    ]
    delivered = spark.createDataFrame(rows, spark_schema(CustomerLanding))
    lake.overwrite(delivered, "customer_landing", rules=None)  # without the 0.3 metadata
    identifiers_in_lower_case(Stages(lake, rules=Rules.PRIVACY))
    kept = lake.read("customer_landing").select("email", "serialNumber").collect()
    expected = [(normalised(r["email"]), normalised(r["serialNumber"])) for r in rows]
    assert sorted(map(tuple, kept)) == sorted(expected)
    assert ("zo\u00eb@x.io", "\u00e5-0") in expected
    history = [c["operation"] for c in lake.history("customer_landing")]
    assert history[:3] == ["SET TBLPROPERTIES", "UPDATE", "MERGE"]
    identifiers_in_lower_case(Stages(lake, rules=Rules.PRIVACY))
    assert [c["operation"] for c in lake.history("customer_landing")] == history


def test_forget_on_a_lake_made_before_0_3_before_its_next_run_reaches_everything(
    sample_lake_copy,
):
    """Upgraded, then a forget before any run: the lake still holds addresses and serial
    numbers as delivered (in capitals, padded); the forget finds every spelling. The delivered
    customer files were cleared away, so only the tables say which device is theirs."""
    lake = sample_lake_copy
    person = pick_person(lake)
    as_a_lake_made_before_0_3(lake)
    shutil.rmtree(Path(lake.root) / "landing" / "customer")
    result = cli(Path(lake.root), "forget", "--email", person["email"])
    assert result.exit_code == 0, result.output
    assert files_naming(Path(lake.root), person["email"], person["serial"]) == []


def test_forget_after_a_withdrawal_reaches_every_version(withdrawn, spark, test_settings, tmp_path):
    source, person = withdrawn
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    assert (
        lake.read("customer_trusted").filter(F.lower("email") == person["email"].lower()).count()
        == 0
    )
    old = lake.read("customer_trusted", version=0).filter(
        F.lower("email") == person["email"].lower()
    )
    assert old.count() == 1  # the withdrawn person, still in an earlier version
    result = cli(Path(lake.root), "forget", "--email", person["email"].upper())
    assert result.exit_code == 0, result.output
    assert files_naming(Path(lake.root), person["email"], person["serial"]) == []
    assert lake.history("customer_trusted")[-1]["version"] > 0  # only the current one is left
    with pytest.raises(LakeError, match="has no version 0"):
        lake.read("customer_trusted", version=0)
    journal = Path(lake.root) / JOURNAL
    assert not journal.exists() or list(journal.iterdir()) == []


def test_maintenance_removes_withdrawn_data_from_storage(withdrawn, spark, test_settings, tmp_path):
    source, person = withdrawn
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    delta = Path(lake.root) / "delta"

    def data_files_naming() -> list[str]:
        """Data files of the zones consent governs (landing keeps records as delivered)."""
        named = files_naming(delta / "trusted", person["email"])
        named += files_naming(delta / "curated", person["email"])
        return [f for f in named if "_delta_log" not in f]

    assert data_files_naming()  # the versions before the withdrawal still hold them
    kept = cli(Path(lake.root), "maintain")  # within the retention: nothing of theirs goes
    assert kept.exit_code == 0, kept.output
    assert data_files_naming()
    gone = cli(Path(lake.root), "maintain", "--retention-hours", "0")
    assert gone.exit_code == 0, gone.output
    assert data_files_naming() == []
    assert lake.read("customer_trusted").count() > 0
    maintained = lake.read("runs").filter(F.col("command") == "maintain").count()
    assert maintained == 2
    settings = MaintenanceSettings(every_hours=24)
    assert not due(lake, settings)  # just maintained
    assert due(lake, settings, now=datetime.now(UTC) + timedelta(hours=25))


STEPS = [
    "removing from step_trainer_landing",  # customer rows gone: devices come from the journal
    "rewriting landing files",
    "purging old files and log of customer_trusted",
    "finishing",  # the erasure recorded, the journal not yet removed
]


@pytest.fixture(scope="module")
def sample_lake(sample_runs, spark, test_settings):
    root = sample_runs().root
    return root, pick_person(Lake(spark, str(root), test_settings.catalog.database))


@pytest.fixture(scope="module")
def interrupted(sample_lake, spark, test_settings, tmp_path_factory) -> dict[str, Path]:
    """One forget on a copy of the sample, its lake's files kept as each of `STEPS` begins:
    what a forget interrupted there leaves (it works one step after another, in this thread).
    Step -> the kept lake's root; each is finished once, by its test."""
    source, person = sample_lake
    folder = tmp_path_factory.mktemp("interrupted")
    lake = copy_lake(source, folder / "forgotten", spark, test_settings)
    kept: dict[str, Path] = {}

    def progress(message: str) -> None:
        if message in STEPS:
            kept[message] = folder / f"step-{STEPS.index(message)}" / "lake"
            shutil.copytree(lake.root, kept[message])

    forget(lake, person["email"], pseudonym_key=KEY, progress=progress)
    return kept


@pytest.mark.parametrize("step", STEPS)
def test_a_forget_interrupted_after_a_step_is_finished_by_the_next(
    step, sample_lake, interrupted, spark, test_settings, tmp_path
):
    _, person = sample_lake
    assert step in interrupted  # the forget got there
    lake = copy_lake(interrupted[step], tmp_path / "lake", spark, test_settings)
    pending = list((Path(lake.root) / JOURNAL).iterdir())
    assert len(pending) == 1
    assert person["email"].lower() not in pending[0].read_text().lower()  # hashes only
    with pytest.raises(LakeError, match="erasure\\(s\\) did not finish"):
        run(lake)
    report = forget(lake, person["email"], pseudonym_key=KEY, progress=lambda _: None)
    assert report.resumed
    assert files_naming(Path(lake.root), person["email"], person["serial"]) == []
    assert list((Path(lake.root) / JOURNAL).iterdir()) == []
    assert lake.read("erasures").count() == 1
    ml = lake.read("machine_learning_curated")
    assert ml.filter(F.col("subject_key") == subject_key(person["email"])).count() == 0
    assert run(lake).writes == []  # the lake runs again, and has nothing to do


def test_a_forgotten_person_delivered_again_is_not_ingested(
    sample_lake, spark, test_settings, tmp_path
):
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    forget(lake, person["email"], pseudonym_key=KEY, progress=lambda _: None)
    root, email = Path(lake.root), person["email"]
    escaped = email.upper().replace("@", "\\u0040")
    accelerometer = root / "landing" / "accelerometer" / "again.json"
    accelerometer.write_text(
        f'{{"user": "{escaped}", "timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}}\n'
        f'{{"user": "{email}", "timestamp": "broken", "x": 1, "y": 2, "z": 3}}\n'
        '{"user": "Somebody.Else@test.com", "timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}\n'
    )
    steps = root / "landing" / "step_trainer" / "again.json"
    steps.write_text(
        json.dumps(
            {
                "sensorReadingTime": 1655564444103,
                "serialNumber": person["serial"],
                "distanceFromObject": 5,
            }
        )
        + "\n"
    )
    other = {
        "customerName": f"Friend of {email}",
        "email": "friend@test.com",
        "phone": "1",
        "birthDay": "1990-01-01",
        "serialNumber": "friend-device",
        "registrationDate": 1655564000000,
        "lastUpdateDate": 1655564000000,
        "shareWithResearchAsOfDate": 1655564000000,
    }
    customers = root / "landing" / "customer" / "again.json"
    customers.write_text(json.dumps(other) + "\n")
    report = run(lake)
    counts = report.datasets
    assert counts["accelerometer"].excluded.get("erased person") == 2
    assert (
        counts["accelerometer"].read
        == 3
        == counts["accelerometer"].accepted + counts["accelerometer"].quarantined
    )
    assert counts["step_trainer"].excluded.get("erased person") == 1
    assert "erased person" not in counts["customer"].excluded
    assert files_naming(root / "delta", person["serial"]) == []
    # the address is left only where the friend's record names it, as a name
    holding = files_naming(root, email)
    assert "landing/customer/again.json" in holding
    assert set(holding) <= set(files_naming(root, "friend@test.com"))
    for table, column in [("customer_landing", "email"), ("accelerometer_landing", "user")]:
        assert lake.read(table).filter(F.lower(column) == email.lower()).count() == 0
    assert "Somebody.Else@test.com" in accelerometer.read_text()
    assert steps.read_text() == ""
    suppressions = lake.read("suppressions")
    fields = [(f.name, f.dataType) for f in suppressions.schema]
    assert fields == [(f.name, f.dataType) for f in spark_schema(Suppression)]
    assert suppressions.count() == 2  # their address and their one device, as keyed hashes
    kept = lake.read("customer_landing").filter(F.col("email") == "friend@test.com").count()
    assert kept == 1


def malformed_lines(email: str, serial: str) -> dict[str, list[dict]]:
    """Records naming a person in a malformed identifier field: each is quarantined, and each
    is theirs."""
    reading = {"timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}
    steps = {"sensorReadingTime": 1655564444103, "distanceFromObject": 5}
    return {
        "accelerometer": [
            {"user": [email], **reading},
            {"user": {"address": email.upper()}, **reading},
            {"User": email, **reading},
            {"user": f"{email}\u200b", **reading},
            {"user": f"{email[:2]}\u200b{email[2:]}", **reading},
        ],
        "step_trainer": [
            {"serialNumber": [serial], **steps},
            {"SerialNumber": serial, **steps},
            {"serialNumber": {"device": serial.upper()}, **steps},
        ],
    }


def erased_and_kept_out(
    lake: Lake, email: str, deliver_records: Callable[[str], dict[str, int]], *spellings: str
) -> None:
    """Records `deliver_records(name)` writes (their count per dataset) are each quarantined;
    after `forget`, no file spells them; delivered again, each is dropped as theirs."""
    root = Path(lake.root)
    delivered = deliver_records("first")
    first = run(lake).datasets
    assert {d: first[d].quarantined for d in delivered} == delivered
    forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    assert files_naming(root, *spellings) == []
    delivered = deliver_records("again")
    again = run(lake).datasets
    assert {d: again[d].excluded.get("erased person") for d in delivered} == delivered
    assert files_naming(root, *spellings) == []


def test_a_malformed_record_naming_a_person_is_erased_and_stays_erased(
    sample_lake, spark, test_settings, tmp_path
):
    """An identifier given as an array or an object, under a name in other letters, or with an
    invisible character: `forget` erases the record, and a later delivery of it is dropped."""
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root, email, serial = Path(lake.root), person["email"], person["serial"]
    hidden = f"{email[:2]}\u200b{email[2:]}"  # written as it is, not as an escape

    def deliver_malformed(name: str) -> dict[str, int]:
        """Each record in a file of its own: each must be found on its own."""
        lines = malformed_lines(email, serial)
        for dataset, records in lines.items():
            for n, record in enumerate(records):
                text = json.dumps(record, ensure_ascii=False) + "\n"
                (root / "landing" / dataset / f"{name}-{n}.json").write_text(text)
        return {dataset: len(records) for dataset, records in lines.items()}

    erased_and_kept_out(lake, email, deliver_malformed, email, serial, hidden)
    # alone in its run: no other line of the batch names the device
    lone = malformed_lines(email, serial)["step_trainer"][-1]
    (root / "landing" / "step_trainer" / "lone.json").write_text(json.dumps(lone) + "\n")
    assert run(lake).datasets["step_trainer"].excluded.get("erased person") == 1
    assert files_naming(root, email, serial, hidden) == []


def test_a_file_named_after_a_person_is_renamed_by_forget_and_read_then(
    sample_lake, spark, test_settings, tmp_path
):
    """A run leaves such a file unread; `forget` takes their lines out and the address out of
    its name (a folder of theirs with nothing else goes), and the next run reads the rest."""
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root, email = Path(lake.root), person["email"]
    reading = {"timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}
    mixed = root / "landing" / "accelerometer" / "by person" / f"{email}.json"
    mixed.parent.mkdir()
    lines = [{"user": email, **reading}, {"user": "Somebody.Else@test.com", **reading}]
    mixed.write_text("".join(json.dumps(line) + "\n" for line in lines))
    theirs = root / "landing" / "accelerometer" / email.upper() / "readings.json"
    theirs.parent.mkdir()
    theirs.write_text(json.dumps(lines[0]) + "\n")
    assert set(run(lake).skipped) == {str(f.relative_to(root)) for f in (mixed, theirs)}
    forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    assert files_naming(root, email) == []
    assert [p for p in root.rglob("*") if email.lower() in str(p).lower()] == []
    assert not theirs.parent.exists()
    (moved,) = mixed.parent.iterdir()
    assert moved.read_text() == json.dumps(lines[1]) + "\n"
    assert run(lake).datasets["accelerometer"].read == 1  # the rest, under its new name


def test_forget_searches_the_landing_files_runs_do_not_read(
    sample_lake, spark, test_settings, tmp_path
):
    """Files in UTF-16 and UTF-32 with a byte-order mark, one copied in by hand under another
    suffix, and one being written: their lines leave each, which keeps its encoding. A file
    that is not text and spells the address (a cut .json.gz, a gzip file compressed twice, a
    zip) stops the erasure, named, until it is removed and `forget` is run again. A UTF-16
    file delivered later loses their line too."""
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root, email = Path(lake.root), person["email"]
    reading = {"timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}
    lines = [{"user": email.upper(), **reading}, {"user": "Somebody.Else@test.com", **reading}]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    folder = root / "landing" / "accelerometer"
    encoded = {
        folder / "utf-16.json": "utf-16",
        folder / "utf-32.json": "utf-32",
        folder / "by hand.jsonl": "utf-8",
        folder / "upload.json.tmp": "utf-8",
    }
    for path, codec in encoded.items():
        path.write_bytes(text.encode(codec))
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readings.json", text)
    not_text = {
        folder / "cut.json.gz": gzip.compress(text.encode())[:-10],
        folder / "twice.json.gz": gzip.compress(gzip.compress(text.encode())),
        folder / "readings.zip": packed.getvalue(),
    }
    for path, data in not_text.items():
        path.write_bytes(data)
    run(lake)
    with pytest.raises(LakeError, match=r"not text") as stopped:
        forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    for path in not_text:
        assert str(path.relative_to(root)) in str(stopped.value)
        path.unlink()
    forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    assert files_naming(root, email) == []
    for path, codec in encoded.items():
        assert path.read_bytes().decode(codec) == json.dumps(lines[1]) + "\n", path.name
    again = folder / "again in utf-16.json"  # delivered after the erasure
    again.write_bytes(text.encode("utf-16"))
    assert run(lake).datasets["accelerometer"].excluded.get("erased person") == 1
    assert files_naming(root, email) == []
    assert again.read_bytes().decode("utf-16") == json.dumps(lines[1]) + "\n"


def test_forget_leaves_what_a_link_in_landing_leads_to_and_names_the_link(
    sample_lake, spark, test_settings, tmp_path
):
    """Runs never read a link in landing, and a rewrite would replace the link, not erase the
    file it leads to (outside the lake): the erasure stops, naming each link that leads to a
    line of theirs, until it is removed."""
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root, email = Path(lake.root), person["email"]
    outside = tmp_path / "outside"
    outside.mkdir()
    theirs = outside / "theirs.json"
    line = json.dumps({"user": email, "timestamp": 1655564444103, "x": 1, "y": 2, "z": 3})
    theirs.write_text(line + "\n")
    (outside / "nobodys.json").write_text("{}\n")
    folder = root / "landing" / "accelerometer"
    links = [folder / "theirs.json", folder / "linked"]
    links[0].symlink_to(theirs)
    links[1].symlink_to(outside)
    with pytest.raises(LakeError, match=r"symbolic links") as stopped:
        forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    named = str(stopped.value)
    assert "landing/accelerometer/theirs.json" in named
    assert "landing/accelerometer/linked/theirs.json" in named and "nobodys" not in named
    assert links[0].is_symlink() and theirs.read_text() == line + "\n"
    for link in links:
        link.unlink()
    forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    assert files_naming(root, email) == []


def wrapped_addresses(email: str) -> list[str]:
    """Their address as no valid record spells it, yet anyone reads as theirs."""
    full_width = chr(ord(email[0]) + 0xFEE0) + email[1:]  # `ａ` for `a`
    percent = email.replace("@", "%40")
    return [f"mailto:{email}", f"{email}.", full_width, f"Them <{email}>", percent]


def test_an_address_wrapped_or_out_of_its_field_is_theirs_and_stays_out(
    sample_lake, spark, test_settings, tmp_path
):
    """Records that spell the address with more around it, or give it under another field,
    are quarantined (no table holds them), erased with the person, and kept out later."""
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root, email = Path(lake.root), person["email"]
    reading = {"timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}
    customer = {
        "customerName": "Them", "serialNumber": "wrapped-device", "registrationDate": 1655564000000,
        "lastUpdateDate": 1655564000000, "shareWithResearchAsOfDate": 1655564000000,
    }  # fmt: skip
    spelt = wrapped_addresses(email)
    records = {
        "customer": [{"email": address, **customer} for address in spelt],
        "accelerometer": [
            *({"user": address, **reading} for address in spelt),
            {"user ": email, **reading},
            {"userEmail": email, **reading},
            {"reading": {"user": email, **reading}},
        ],
    }

    def deliver_wrapped(name: str) -> dict[str, int]:
        for dataset, lines in records.items():
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)
            (root / "landing" / dataset / f"{name}.json").write_text(text)
        return {dataset: len(lines) for dataset, lines in records.items()}

    erased_and_kept_out(lake, email, deliver_wrapped, email, *spelt)


def test_a_file_changed_after_its_run_stays_new_when_forget_rewrites_it(
    sample_lake, spark, test_settings, tmp_path
):
    """Lines added to a processed file holding the person's line are a new delivery: the
    rewrite by `forget` must not bookmark them as processed."""
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root, email = Path(lake.root), person["email"]
    found = files_naming(root / "landing", email)
    theirs = next(f for f in found if f.startswith("accelerometer/") and f.endswith(".json"))
    added = {"user": "Somebody.Later@test.com", "timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}
    with (root / "landing" / theirs).open("a") as landing_file:
        landing_file.write("\n" + json.dumps(added) + "\n")  # a blank line is no record
    forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    report = run(lake)
    assert report.changed == [f"landing/{theirs}"]
    landing = lake.read("accelerometer_landing")
    assert landing.filter(F.col("user") == "somebody.later@test.com").count() == 1


def test_the_devices_a_forgotten_person_claims_later_are_theirs_whenever_their_readings_come(
    sample_lake, spark, test_settings, tmp_path
):
    """A forgotten person, still using the app, delivers records again: one claims a device
    whose readings arrived a run before (kept then as an unknown device's), one a device whose
    readings come with it. Both are theirs: listed, their readings gone from every table,
    version and landing file, and dropped when delivered again. One claims another customer's
    device: it is then nobody's, as had they claimed it before `forget`, also when the run
    that lists it stops right after."""
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root, email = Path(lake.root), person["email"]
    record = withdrawal(lake, email) | {"shareWithResearchAsOfDate": 1655564000000}
    forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    listed = lake.read("suppressions").count()
    devices = ["Their-Later-Device", "their-newest-device"]

    def readings(name: str, serial: str) -> None:
        rows = [
            {"sensorReadingTime": 1655564000000 + n, "serialNumber": serial}
            | {"distanceFromObject": n}
            for n in range(3)
        ]
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (root / "landing" / "step_trainer" / f"{name}.json").write_text(text)

    readings("before", devices[0])
    assert run(lake).datasets["step_trainer"].accepted == 3  # nobody's device, yet
    trusted = lake.read("step_trainer_trusted")
    another = trusted.select("serialNumber").orderBy("serialNumber").first()[0]  # someone's
    of_another = F.col("serialNumber") == another
    times = [r[0] for r in trusted.filter(of_another).select("sensorReadingTime").collect()]
    owner = lake.read("customer_landing").filter(of_another).select("email").first()[0]
    owners_pairs = (F.col("subject_key") == subject_key(owner)) & F.col("reading_time_ms").isin(
        times
    )
    assert lake.read("machine_learning_curated").filter(owners_pairs).count() > 0
    in_landing = lake.read("step_trainer_landing").filter(of_another).count()
    claims = [
        record | {"serialNumber": devices[0].upper()},
        record | {"serialNumber": devices[1], "lastUpdateDate": record["lastUpdateDate"] + 1},
        record | {"serialNumber": another, "lastUpdateDate": record["lastUpdateDate"] + 2},
    ]
    lines = "".join(json.dumps(c) + "\n" for c in claims)
    (root / "landing" / "customer" / "again.json").write_text(lines)
    readings("with", devices[1])
    stopped_at = tmp_path / "stopped" / "lake"  # the files a run stopped after its 1st commit

    def after_commit(commits: int) -> None:
        if commits == 1:
            copy_files_as_a_kill_leaves_them(root, stopped_at)

    counts = run(Lake(spark, str(root), lake.database, after_commit=after_commit)).datasets
    assert counts["customer"].excluded.get("erased person") == 3
    assert counts["step_trainer"].excluded.get("erased person") == 3
    assert counts["step_trainer"].excluded.get("ambiguous device", 0) > 0
    assert lake.read("suppressions").count() == listed + 3  # theirs, and another's as shared
    assert files_naming(root, email, *devices) == []
    stopped = Lake(spark, str(stopped_at), test_settings.catalog.database)
    assert stopped.read("suppressions").count() == listed + 1  # the run stopped once it listed
    run(stopped)
    for after in (lake, stopped):  # another's device is nobody's; its readings are kept
        assert after.read("step_trainer_trusted").filter(of_another).count() == 0
        assert after.read("machine_learning_curated").filter(owners_pairs).count() == 0
        assert after.read("step_trainer_landing").filter(of_another).count() == in_landing
    readings("after", f" {devices[0].upper()}")
    assert run(lake).datasets["step_trainer"].excluded.get("erased person") == 3
    assert files_naming(root, *devices) == []


def test_a_person_forgotten_before_their_data_arrives_is_kept_out(
    sample_lake, spark, test_settings, tmp_path
):
    """Refused as nobody unless said to come before the delivery; then their records,
    delivered later, are dropped and leave the landing files."""
    source, _ = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root, email = Path(lake.root), "Not.Yet@test.com"
    with pytest.raises(LakeError, match="--before-delivery"):
        forget(lake, email, pseudonym_key=KEY, progress=lambda _: None)
    forget(lake, email, pseudonym_key=KEY, progress=lambda _: None, before_delivery=True)
    customer = {
        "customerName": "Not Yet", "email": email.lower(), "serialNumber": "not-yet-device",
        "registrationDate": 1655564000000, "lastUpdateDate": 1655564000000,
        "shareWithResearchAsOfDate": 1655564000000,
    }  # fmt: skip
    reading = {"user": email, "timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}
    step = {"sensorReadingTime": 1655564444103, "serialNumber": "not-yet-device"}
    step |= {"distanceFromObject": 1}
    for dataset, record in (
        ("customer", customer),
        ("accelerometer", reading),
        ("step_trainer", step),
    ):
        (root / "landing" / dataset / "later.json").write_text(json.dumps(record) + "\n")
    datasets = run(lake).datasets
    for dataset in ("customer", "accelerometer", "step_trainer"):
        assert datasets[dataset].excluded.get("erased person") == 1, dataset
    assert files_naming(root, email, "not-yet-device") == []


def test_a_forgotten_address_delivered_again_padded_with_spaces_is_not_kept(
    sample_lake, spark, test_settings, tmp_path
):
    """Validation quarantines an address with surrounding spaces: the line is still theirs,
    so it is dropped, not quarantined, and leaves the landing file."""
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    forget(lake, person["email"], pseudonym_key=KEY, progress=lambda _: None)
    root, email = Path(lake.root), person["email"]
    again = root / "landing" / "accelerometer" / "again.json"
    others = [
        {"user": f"Somebody.Else{i}@test.com", "timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}
        for i in range(3)
    ]
    padded = {"user": f" {email.upper()}\t", "timestamp": 1655564444103, "x": 1, "y": 2, "z": 3}
    again.write_text("".join(json.dumps(r) + "\n" for r in [padded, *others]))
    counts = run(lake).datasets["accelerometer"]
    assert counts.read == 4 and counts.excluded.get("erased person") == 1
    assert files_naming(root, email) == []
    assert again.read_text().count("Somebody.Else") == 3


def test_a_person_whose_every_record_was_quarantined_can_be_forgotten(
    sample_lake, spark, test_settings, tmp_path
):
    """No table accepted them, yet the quarantine and a landing file hold their record, which
    claims a device: its readings are theirs."""
    source, _ = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root, email = Path(lake.root), "Only.Refused@test.com"
    fine = {"phone": "1", "birthDay": "1990-01-01", "lastUpdateDate": 1655564000000}
    records = [
        {"customerName": "Only Refused", "email": email, "serialNumber": "refused-device",
         "registrationDate": "never", "shareWithResearchAsOfDate": 1655564000000, **fine},
        *({"customerName": f"Fine {i}", "email": f"fine{i}@test.com", "serialNumber": f"f-{i}",
           "registrationDate": 1655564000000, **fine} for i in range(4)),
    ]  # fmt: skip
    delivered = root / "landing" / "customer" / "refused.json"
    delivered.write_text("".join(json.dumps(r) + "\n" for r in records))
    steps = [  # their device's readings, and another customer's
        {"sensorReadingTime": 1655564000000 + i, "serialNumber": serial, "distanceFromObject": i}
        for i, serial in enumerate(["refused-device", "refused-device", "f-0"])
    ]
    stepped = root / "landing" / "step_trainer" / "refused.json"
    stepped.write_text("".join(json.dumps(r) + "\n" for r in steps))
    assert run(lake).datasets["customer"].quarantined == 1
    assert files_naming(root, email), "the quarantine should hold their line"
    assert files_naming(root, "refused-device")
    forget(lake, email.upper(), pseudonym_key=KEY, progress=lambda _: None)
    assert files_naming(root, email) == []
    assert files_naming(root, "refused-device") == []  # their device's readings too
    assert delivered.read_text().count("Fine ") == 4
    assert stepped.read_text().count('"f-0"') == 1


def test_a_record_naming_a_field_twice_is_nobodys_and_either_value_is_erased(
    sample_lake, spark, test_settings, tmp_path
):
    """A customer record naming two addresses and two devices, and readings naming a device
    only after another serial number, are quarantined; `forget` of the first address removes
    every line naming either value, and such lines delivered later are dropped."""
    source, _ = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root = Path(lake.root)
    fields = (  # the second address and device come last: what a JSON reader keeps
        '"customerName":"Twice Named","phone":"1","birthDay":"1990-01-01",'
        '"registrationDate":1655564000000,"lastUpdateDate":1655564000000,'
        '"shareWithResearchAsOfDate":1655564000000'
    )
    record = (
        f'{{"email":"First.Twice@test.com","serialNumber":"twice-device",{fields},'
        '"email":"second.twice@test.com","serialNumber":"other-twice-device"}'
    )
    fine = [  # beside them, so that the quarantine's share stays under its fail level
        f'{{"email":"fine{i}@test.com","serialNumber":"fine-{i}",{fields}}}' for i in range(3)
    ]
    customers = root / "landing" / "customer" / "twice.json"
    customers.write_text("\n".join([record, *fine]) + "\n")

    def readings(name: str, *serials: str, device: str = "other-twice-device") -> Path:
        """Step readings naming `device` only after another serial number, and three of the
        fine customers' devices."""
        lines = [
            f'{{"sensorReadingTime":{1655564000000 + i},"serialNumber":"{s}",'
            f'"distanceFromObject":1,"serialNumber":"{device}"}}'
            for i, s in enumerate(serials)
        ] + [
            f'{{"sensorReadingTime":{1655564000000 + i},"serialNumber":"fine-{i}",'
            f'"distanceFromObject":{len(serials)}}}'
            for i in range(3)
        ]
        path = root / "landing" / "step_trainer" / name
        path.write_text("\n".join(lines) + "\n")
        return path

    first = readings("twice.json", "nobodys-1", "nobodys-2")
    counts = run(lake).datasets
    assert (counts["customer"].quarantined, counts["step_trainer"].quarantined) == (1, 2)
    reasons = {r[0] for r in lake.read("customer_quarantine").select("reason").collect()}
    assert "'email' is named more than once; 'serialNumber' is named more than once" in reasons
    for table in ("customer_landing", "customer_trusted", "customer_curated"):
        named = lake.read(table).filter(F.col("email").contains("twice"))
        assert named.count() == 0, table
    forget(lake, "FIRST.TWICE@test.com", pseudonym_key=KEY, progress=lambda _: None)
    assert files_naming(root, "first.twice", "second.twice", "twice-device") == []
    assert customers.read_text().count("fine") == 6 and first.read_text().count("fine") == 3
    escaped = "other-twice-d\\u0065vice"  # JSON reads the device's serial number
    again = readings("again.json", "nobodys-3", device=escaped)
    counts = run(lake).datasets["step_trainer"]
    assert counts.read == 4 and counts.excluded.get("erased person") == 1
    assert files_naming(root, "twice-device", escaped) == []
    assert again.read_text().count("fine") == 3


def test_a_device_a_forgotten_person_shared_stays_nobodys(
    sample_lake, spark, test_settings, tmp_path
):
    """Two consenting customers claim one device, so its readings are nobody's. Forgetting
    one leaves the other its only claimant in the lake: the device's readings, the forgotten
    person's use of it included, must not become the other's when a run looks at it again.
    Forgetting the other then makes it theirs alone: later readings of it are dropped."""
    source, _ = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    serial, (forgotten, other) = a_shared_device(lake)
    forget(lake, forgotten, pseudonym_key=KEY, progress=lambda _: None)
    update = Path(lake.root) / "landing" / "customer" / "update.json"
    latest = withdrawal(lake, other) | {"shareWithResearchAsOfDate": 1655564000000}
    update.write_text(json.dumps(latest) + "\n")
    counts = run(lake).datasets["step_trainer"]
    of_device = F.col("serialNumber") == serial
    assert lake.read("step_trainer_landing").filter(of_device).count() > 0  # the other's too
    assert lake.read("step_trainer_trusted").filter(of_device).count() == 0
    assert counts.excluded.get("ambiguous device", 0) > 0
    # the other forgotten too: the device is then only ever theirs, its later readings dropped
    forget(lake, other, pseudonym_key=KEY, progress=lambda _: None)
    later = {"sensorReadingTime": 1655564000123, "serialNumber": f"\t{serial.upper()}\u3000"}
    later |= {"distanceFromObject": 1}  # its serial in other letters, padded: still the device
    (Path(lake.root) / "landing" / "step_trainer" / "later.json").write_text(json.dumps(later))
    counts = run(lake).datasets["step_trainer"]
    assert counts.excluded.get("erased person") == 1
    assert files_naming(Path(lake.root), serial) == []


def a_shared_device(lake: Lake) -> tuple[str, list[str]]:
    """A serial number two consenting customers claim, and their addresses."""
    consenting = {r[0] for r in lake.read("customer_trusted").select("email").collect()}
    owners: dict[str, set[str]] = {}
    for email, serial in lake.read("customer_landing").select("email", "serialNumber").collect():
        owners.setdefault(serial, set()).add(email)
    return next(
        (s, sorted(o)) for s, o in sorted(owners.items()) if len(o) == 2 and o <= consenting
    )


def test_a_device_claimed_again_in_other_letters_is_ambiguous(sample_lake_copy):
    """A serial number names one device in any letter case and white space around it: a
    second claim spelt otherwise makes the device's readings nobody's, as any second claim
    does."""
    lake = sample_lake_copy
    person = pick_person(lake)
    of_device = F.col("serialNumber") == person["serial"]
    assert lake.read("step_trainer_trusted").filter(of_device).count() > 0
    claim = withdrawal(lake, person["email"]) | {
        "email": "another.person@example.com",
        "serialNumber": f" {person['serial'].upper()}\u00a0",
    }
    (Path(lake.root) / "landing" / "customer" / "claim.json").write_text(json.dumps(claim))
    counts = run(lake).datasets["step_trainer"]
    assert lake.read("step_trainer_trusted").filter(of_device).count() == 0
    assert counts.excluded.get("ambiguous device", 0) > 0


def test_an_address_with_a_combining_mark_names_one_person(sample_lake_copy):
    """`zoë` spelt with one letter, or with `e` and a combining diaeresis, is one person: her
    withdrawal spelt the other way is applied, and `forget` typed either way finds all of her.
    She takes a curated person's records, under her own address and device."""
    lake = sample_lake_copy
    person = pick_person(lake)
    composed, combining = "zo\u00eb.ng@test.com", "ZOE\u0308.NG@TEST.COM"
    consent = lake.read("customer_trusted").filter(F.col("email") == person["email"]).first()
    record = withdrawal(lake, person["email"]) | {"email": composed, "serialNumber": "zoe-1"}
    records = [
        record | {"shareWithResearchAsOfDate": consent["shareWithResearchAsOfDate"]},
        record | {"email": combining, "lastUpdateDate": record["lastUpdateDate"] + 1000},
    ]
    readings = lake.read("accelerometer_landing").filter(F.col("user") == person["email"])
    steps = lake.read("step_trainer_landing").filter(F.col("serialNumber") == person["serial"])
    landing = Path(lake.root) / "landing"
    for folder, rows in [
        ("customer", records),
        ("accelerometer", [r.asDict() | {"user": combining} for r in readings.collect()]),
        ("step_trainer", [r.asDict() | {"serialNumber": "zoe-1"} for r in steps.collect()]),
    ]:
        rows = [{k: v for k, v in r.items() if k != "source_file"} for r in rows]
        lines = (json.dumps(r, ensure_ascii=False) for r in rows)
        (landing / folder / "zoe.json").write_text("".join(f"{line}\n" for line in lines))
    run(lake)
    assert {r[0] for r in lake.read("customer_landing").select("email").collect()} >= {composed}
    assert lake.read("accelerometer_landing").filter(F.col("user") == composed).count() > 0
    for table, column in [("customer_trusted", "email"), ("accelerometer_trusted", "user")]:
        assert lake.read(table).filter(F.col(column) == composed).count() == 0, table
    pairs = lake.read("machine_learning_curated")
    assert pairs.filter(F.col("subject_key") == subject_key(composed)).count() == 0
    forget(lake, combining, pseudonym_key=KEY, progress=lambda _: None)
    assert files_naming(Path(lake.root), composed, "zoe\u0308.ng@test.com", "zoe-1") == []


def test_a_device_handed_to_another_customer_is_nobodys(sample_lake_copy):
    """A curated person moves to a new device; a run later, another customer (consenting
    since long before, with readings of their own) claims the old one. Its readings are both
    people's, told apart by nothing: nobody's, as those of a device two people claim."""
    lake = sample_lake_copy
    person = pick_person(lake)
    email, of_device = person["email"].lower(), F.col("serialNumber") == person["serial"]
    theirs = lake.read("step_trainer_trusted").filter(of_device).count()
    assert theirs > 0
    consent = lake.read("customer_trusted").filter(F.col("email") == email).first()
    moved = withdrawal(lake, email) | {
        "serialNumber": "their-new-device",
        "shareWithResearchAsOfDate": consent["shareWithResearchAsOfDate"],
    }
    landing = Path(lake.root) / "landing"
    (landing / "customer" / "moved.json").write_text(json.dumps(moved) + "\n")
    run(lake)
    assert lake.read("step_trainer_trusted").filter(of_device).count() == 0  # nobody's now
    claim = moved | {"email": "new.owner@example.com", "serialNumber": person["serial"]}
    claim |= {"shareWithResearchAsOfDate": 1_000_000_000_000}
    (landing / "customer" / "claim.json").write_text(json.dumps(claim) + "\n")
    reading = {"user": claim["email"], "timestamp": 1_600_000_000_000, "x": 1, "y": 2, "z": 3}
    (landing / "accelerometer" / "new-owner.json").write_text(json.dumps(reading) + "\n")
    counts = run(lake).datasets["step_trainer"]
    assert lake.read("customer_curated").filter(F.col("email") == claim["email"]).count() == 1
    assert lake.read("step_trainer_trusted").filter(of_device).count() == 0
    assert counts.excluded.get("ambiguous device", 0) >= theirs


def test_a_shared_device_a_lake_made_before_0_3_listed_stays_nobodys(
    sample_lake, spark, test_settings, tmp_path
):
    """A lake made by 0.2 listed a forgotten person's shared device by its serial number as
    delivered. Lowering the lake's serial numbers must not make the device the other
    claimant's: the list gains its lower-case spelling first."""
    lake = copy_lake(sample_lake[0], tmp_path / "lake", spark, test_settings)
    serial, (forgotten, other) = a_shared_device(lake)
    forget(lake, forgotten, pseudonym_key=KEY, progress=lambda _: None)
    as_a_lake_made_before_0_3(lake)
    lowered, delivered = (keyed_hash(KEY, "serial", s) for s in (serial, serial.upper()))
    as_delivered = f"SET identifier_hash = '{delivered}' WHERE identifier_hash = '{lowered}'"
    spark.sql(f"UPDATE delta.`{lake.table_path('suppressions')}` {as_delivered}")
    update = Path(lake.root) / "landing" / "customer" / "update.json"
    latest = withdrawal(lake, other) | {"shareWithResearchAsOfDate": 1655564000000}
    update.write_text(json.dumps(latest) + "\n")
    counts = run(lake).datasets["step_trainer"]
    of_device = F.col("serialNumber") == serial
    assert lake.read("step_trainer_landing").filter(of_device).count() > 0
    assert lake.read("step_trainer_trusted").filter(of_device).count() == 0
    assert counts.excluded.get("ambiguous device", 0) > 0


def test_another_key_is_refused_with_one_line(sample_lake, spark, test_settings, tmp_path):
    source, person = sample_lake
    lake = copy_lake(source, tmp_path / "lake", spark, test_settings)
    root = Path(lake.root)
    assert lake.table_property("machine_learning_curated", FINGERPRINT_PROPERTY) == fingerprint(KEY)
    shutil.copyfile(
        root / "landing" / "accelerometer" / "accelerometer-1.json",
        root / "landing" / "accelerometer" / "more.json",
    )
    before = {t: lake.version(t) for t in ("accelerometer_landing", "machine_learning_curated")}
    env = {"STEDI_PSEUDONYM_KEY": "another-key"}
    for args in (["run"], ["forget", "--email", person["email"]]):
        result = cli(root, *args, env=env)
        assert result.exit_code == 1, result.output
        assert result.output.startswith(
            "error: machine_learning_curated was built with another pseudonym key"
        ), result.output
        assert len(result.output.strip().splitlines()) == 1
    assert {t: lake.version(t) for t in before} == before  # nothing written


class Stopped(Exception):
    """A process stopping right after a commit."""


def test_another_key_is_refused_after_a_run_stopped_right_after_the_pairs_commit(
    spark, test_settings, tmp_path
):
    """The pairs' commit records the key's fingerprint itself: a first run stopped before
    the table's property is set leaves the key recorded all the same."""
    land_sample(tmp_path / "lake")
    lake = new_lake(spark, test_settings, tmp_path / "lake")
    ml = Path(lake.table_path("machine_learning_curated"))

    def stop_after_the_pairs(_: int) -> None:
        if (ml / "_delta_log").exists():
            raise Stopped

    lake.after_commit = stop_after_the_pairs
    with pytest.raises(Stopped):
        run(lake)
    lake.after_commit = None
    assert lake.table_property("machine_learning_curated", FINGERPRINT_PROPERTY) is None
    before = versions(lake)
    with pytest.raises(KeyMismatchError, match="machine_learning_curated was built with another"):
        run_stages(Stages(lake, rules=Rules.PRIVACY), "all", pseudonym_key=b"another-key")
    assert versions(lake) == before | {"runs": before.get("runs", 0) + 1}  # its failure recorded


def test_another_key_is_refused_after_a_forget_stopped_right_after_its_first_commit(lake):
    """On a lake without pairs (a trusted stage only), the suppression list's first commit
    records the key; so does the journal of an erasure that did not finish."""
    entry = PendingErasure(
        person="a-hash", devices=[], subject_keys=[], key_fingerprint=fingerprint(KEY),
        started_at=datetime.now(UTC),
    )  # fmt: skip
    lake.storage.write(f"{JOURNAL}/a-hash.json", entry.model_dump_json().encode())
    with pytest.raises(KeyMismatchError, match="an erasure that did not finish was built"):
        check_key(lake, b"another-key")
    check_key(lake, KEY)

    def stop(_: int) -> None:
        raise Stopped

    lake.after_commit = stop
    with pytest.raises(Stopped):
        suppress(lake, entry, KEY)
    lake.storage.delete(f"{JOURNAL}/a-hash.json")
    assert lake.table_property("suppressions", FINGERPRINT_PROPERTY) is None
    with pytest.raises(KeyMismatchError, match="suppressions was built with another"):
        check_key(lake, b"another-key")


def test_a_damaged_journal_entry_is_one_clear_error(lake):
    lake.storage.write(f"{JOURNAL}/a-hash.json", b'{"person": "a-hash"')
    with pytest.raises(LakeError, match="is not an erasure journal entry"):
        check_key(lake, KEY)


REFUSED = [
    "DELETE FROM customer_quarantine",
    "RESTORE TABLE customer_curated TO VERSION AS OF 0",
    "INSERT INTO customer_quarantine VALUES ('x', 'y', 'z')",
    "SELECT * FROM text.`/etc/passwd`",
    "SELECT * FROM `json`.`/etc`",
    "SELECT * FROM IDENTIFIER('text.`/etc/passwd`')",
    "SELECT TRANSFORM(email) USING 'cat' FROM customer_curated",
    "SELECT * FROM customer_curated WHERE email IN (SELECT TRANSFORM(email) USING 'id' AS (e) "
    "FROM customer_curated)",
    "SELECT reflect('java.lang.System', 'getenv', 'STEDI_PSEUDONYM_KEY')",
    "SELECT java_method('java.lang.System', 'getenv', 'HOME')",
    "SET spark.sql.runSQLOnFiles=true",
    "CACHE TABLE customer_curated",
    "VACUUM customer_curated",
    "DROP TABLE customer_curated",
    "CREATE TABLE x AS SELECT * FROM customer_curated",
    "SELECT 1; DELETE FROM customer_quarantine",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_query_refuses_what_is_not_a_read(sql, sample_lake):
    root, _ = sample_lake
    before = cli(root, "query", "SELECT count(*) FROM customer_quarantine")
    result = cli(root, "query", sql)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: "), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert cli(root, "query", "SELECT count(*) FROM customer_quarantine").output == before.output


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM machine_learning_curated",
        "WITH c AS (SELECT * FROM customer_curated) SELECT count(*) FROM c",
        "SHOW TABLES",
        "DESCRIBE customer_curated",
        "EXPLAIN SELECT * FROM customer_curated",
        "VALUES (1, 2)",
        "TABLE runs",
        "SELECT * FROM customer_trusted VERSION AS OF 0",
    ],
)
def test_query_runs_reads(sql, sample_lake):
    root, _ = sample_lake
    result = cli(root, "query", sql)
    assert result.exit_code == 0, result.output


def data_scientists_tables(root: Path) -> set[str]:
    result = cli(root, "query", "--database", "stedi_curated", "SHOW TABLES")
    assert result.exit_code == 0, result.output
    names = ("customer_curated", "machine_learning_curated", "customer_trusted", "runs")
    return {name for name in names if name in result.output}


def test_data_scientists_database_holds_the_curated_tables_naming_nobody(sample_lake):
    """customer_curated is curated but holds e-mails, names and phones: not for them."""
    root, _ = sample_lake
    assert data_scientists_tables(root) == {"machine_learning_curated"}


def test_under_the_udacity_rules_the_data_scientists_database_is_empty(sample_runs):
    """The udacity training table carries the e-mail and the device's serial."""
    assert data_scientists_tables(sample_runs(Rules.UDACITY).root) == set()


def test_a_table_naming_people_registered_for_data_scientists_before_is_taken_out(
    sample_lake_copy, spark
):
    """A lake registered when every curated table went to the data scientists' database."""
    lake = sample_lake_copy
    where = lake.table_path("customer_curated")
    spark.sql(f"CREATE TABLE stedi_curated.customer_curated USING DELTA LOCATION '{where}'")
    lake.catalog.mark_kept([])  # what a metastore filled otherwise says: nothing of today's
    assert data_scientists_tables(Path(lake.root)) == {"machine_learning_curated"}
