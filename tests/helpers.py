"""What the tests share: the sample, its expected counts, the test pseudonym key, and lakes
made from it. Test modules import from here, never from each other."""

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
from itertools import product
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.tables import CATALOGUE, Zone
from stedi_lakehouse.lake.layout import LOCK_FILE, SERVER_DIR, WRITER_LOCK
from stedi_lakehouse.lake.readers import open_table
from stedi_lakehouse.lake.tables import Lake
from stedi_lakehouse.presets import Rules

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
# The suite's one embedded metastore, held by the suite's JVM: a process of its own keeps its
# lake's catalog instead.
SHARED_METASTORE = "STEDI_CATALOG__METASTORE_DIR"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_REGION": "us-east-1",
}

KEY = b"test-key"  # the pseudonym key of every test run

# -- the sample and its expected outcome --------------------------------------------------------

SHARED = {  # the same under both presets
    "customer_landing": 94,
    "accelerometer_landing": 680,
    "step_trainer_landing": 302,
    "customer_quarantine": 37,
    "accelerometer_quarantine": 37,
    "step_trainer_quarantine": 32,
    "customer_trusted": 47,
    "customer_curated": 39,
}

EXPECTED_ROWS = {
    Rules.PRIVACY: SHARED
    | {
        "accelerometer_trusted": 319,
        "step_trainer_trusted": 134,
        "machine_learning_curated": 221,
    },
    Rules.UDACITY: SHARED
    | {
        "accelerometer_trusted": 381,
        "step_trainer_trusted": 176,
        "machine_learning_curated": 296,
    },
}

EXPECTED_EXCLUSIONS = {
    Rules.PRIVACY: {
        "customer": {"superseded": 8, "no consent": 39},
        "accelerometer": {"unknown person": 34, "no consent": 265, "before consent": 62},
        "step_trainer": {
            "unknown person": 16,
            "ambiguous device": 26,
            "no consent": 96,
            "no accelerometer data": 10,
            "before consent": 20,
        },
    },
    Rules.UDACITY: {
        "customer": {"superseded": 8, "no consent": 39},
        "accelerometer": {"unknown person": 34, "no consent": 265},
        "step_trainer": {"unknown person": 16, "no consent": 110},
    },
}

DATA_TABLES = [name for name, spec in CATALOGUE.items() if spec.zone != Zone.SYSTEM]
FILES = sorted(p.relative_to(SAMPLE).as_posix() for p in SAMPLE.rglob("*.json"))
FILES_OF = {d: sum(f.startswith(f"{d}/") for f in FILES) for d in ("accelerometer",)}
# Readings before their customers, customers before their updates, a bit of everything at once
# (the edge cases' files, then the generated population's: "-000" and "-001").
BATCHES = {
    "readings-first": [
        [
            "accelerometer/accelerometer-1.json",
            "step_trainer/step_trainer-1.json",
            "accelerometer/accelerometer-000.json",
            "step_trainer/step_trainer-000.json",
        ],
        [
            "customer/customer-1.json",
            "accelerometer/accelerometer-2.json",
            "step_trainer/2022/06/18/part-2.json",
            "customer/customer-000.json",
            "accelerometer/accelerometer-001.json",
        ],
        [
            "customer/customer-2.json",
            "accelerometer/2022/06/part-3.json",
            "step_trainer/2022/06/19/part-3.json",
            "step_trainer/step_trainer-001.json",
        ],
        ["customer/updates/2022/06/customer-updates.json", "customer/customer-updates-000.json"],
    ],
    "updates-first": [
        [
            "customer/updates/2022/06/customer-updates.json",
            "customer/customer-updates-000.json",
            "customer/customer-2.json",
        ],
        [f for f in FILES if f.startswith("accelerometer/")],
        [
            "customer/customer-1.json",
            "customer/customer-000.json",
            *[f for f in FILES if f.startswith("step_trainer/")],
        ],
    ],
}


def written_rows(report) -> dict[str, int]:
    """Rows written per data table (not the lake's bookkeeping)."""
    return {w.table: w.rows for w in report.writes if CATALOGUE[w.table].zone != Zone.SYSTEM}


# -- lakes -------------------------------------------------------------------------------------


def land_sample(root: Path) -> None:
    for dataset_dir in SAMPLE.iterdir():
        shutil.copytree(dataset_dir, root / "landing" / dataset_dir.name)


def copy_lake(source: Path, target: Path, spark, settings) -> Lake:
    """A copy of the lake at `source`, to change: its tables are registered at the copy, as
    they would be had it been built there (the session's one catalog names one lake's)."""
    shutil.copytree(source, target)
    lake = Lake(spark, str(target), settings.catalog.database)
    for name in lake.tables():
        lake.catalog.register(name)  # an entry pointing at another lake is pointed here
    return lake


def copy_files_as_a_kill_leaves_them(source: Path, target: Path) -> None:
    """The lake's files at `source` copied to `target` while a run may still be writing them,
    as a process killed now would leave them: every Delta log first, then the rest. A commit
    copied finds its data files (written before it); files written meanwhile are left over,
    unreferenced, as a killed run leaves them. Modification times are kept (a landing file's
    version is read from them)."""

    def copy(folder: Path, into: Path, skip: tuple[str, ...] = ()) -> None:
        for current, dirs, names in os.walk(folder):
            dirs[:] = [d for d in dirs if d not in skip]
            copied = into / Path(current).relative_to(folder)
            copied.mkdir(parents=True, exist_ok=True)
            for name in names:
                with contextlib.suppress(FileNotFoundError):  # a temporary file renamed
                    shutil.copy2(Path(current) / name, copied / name)

    for log in sorted(source.rglob("_delta_log")):
        copy(log, target / log.relative_to(source))
    copy(source, target, skip=("_delta_log",))


def deliver(root: Path, files: list[str], source: Path = SAMPLE) -> None:
    for name in files:
        target = root / "landing" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)


def with_spark(settings, **update):
    """`settings` with these `spark` settings changed."""
    return settings.model_copy(update={"spark": settings.spark.model_copy(update=update)})


def new_lake(spark, settings, root: Path) -> Lake:
    for dataset in ("customer", "accelerometer", "step_trainer"):
        (root / "landing" / dataset).mkdir(parents=True, exist_ok=True)
    return Lake(spark, str(root), settings.catalog.database)


def snapshot(lake: Lake) -> dict[str, list[tuple]]:
    """Every data table's rows, sorted (a multiset: duplicates count). Read from the Delta
    logs with delta-rs, as notebooks read them: the same rows as Spark's without a Spark job
    per table (many tests compare lakes after every run)."""
    return {
        name: sorted(
            (tuple(r.values()) for r in open_table(lake.root, name).to_pyarrow_table().to_pylist()),
            key=repr,
        )
        for name in DATA_TABLES
    }


def versions(lake: Lake) -> dict[str, int]:
    return {name: len(lake.history(name)) for name in CATALOGUE if lake.exists(name)}


def subject_key(email: str) -> str:
    return hmac.new(KEY, email.encode(), hashlib.sha256).hexdigest()


def readable_text(path: Path) -> str:
    """A file's content as a reader could get it: raw bytes (as UTF-8, and as UTF-16 at either
    byte order and offset), and decoded Parquet."""
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    for codec, start in product(("utf-16-le", "utf-16-be"), (0, 1)):
        text += raw[start:].decode(codec, errors="replace")
    if raw[:4] == b"PAR1":
        text += json.dumps(pq.read_table(path).to_pylist(), default=str)
    return text.lower()


def files_naming(root: Path, *identifiers: str) -> list[str]:
    wanted = [i.lower() for i in identifiers]
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and any(w in readable_text(p) for w in wanted)
    )


def pick_person(lake: Lake) -> dict:
    """A curated person with pairs, a device of their own, and a quarantined line."""
    customers = lake.read("customer_landing")
    owners = customers.groupBy("serialNumber").agg(F.count_distinct("email").alias("n"))
    sole = {r[0] for r in owners.filter("n = 1").collect()}
    keys = {r[0] for r in lake.read("machine_learning_curated").select("subject_key").collect()}
    quarantined = " ".join(r[0] for r in lake.read("customer_quarantine").collect()).lower()
    candidates = []
    for row in lake.read("customer_curated").orderBy("email").collect():
        if subject_key(row["email"]) in keys and row["serialNumber"] in sole:
            candidates.append((row["email"].lower() not in quarantined, row["email"], row))
    assert candidates, "the sample has no such person"
    _, email, row = min(candidates)
    return {"email": email, "serial": row["serialNumber"]}


def withdrawal(lake: Lake, email: str) -> dict:
    """The person's latest customer record, updated later without research consent."""
    latest = (
        lake.read("customer_landing")
        .filter(F.lower("email") == email.lower())
        .orderBy(F.col("lastUpdateDate").desc())
        .first()
        .asDict()
    )
    latest.pop("source_file")
    return {
        **latest,
        "lastUpdateDate": latest["lastUpdateDate"] + 1000,
        "shareWithResearchAsOfDate": None,
    }


def assert_in_time_order_per_person(rows: pa.Table) -> None:
    keys, times = rows["subject_key"].to_pylist(), rows["reading_time_ms"].to_pylist()
    pairs = list(zip(keys, times, strict=True))
    assert pairs == sorted(pairs)


# -- hostile lines: each with the reason its quarantine row gives ------------------------------

FIELDS = b'"timestamp":1655564444103,"x":1,"y":1,"z":1'
HOSTILE = {
    "single quotes and a null": (
        b"{'user':null,'timestamp':1655564444103,'x':1,'y':1,'z':1}",
        "not a JSON object",
    ),
    "single quotes, all valid": (
        b"{'user':'a@test.com','timestamp':1655564444103,'x':1,'y':1,'z':1}",
        "not a JSON object",
    ),
    "NaN beside a null": (
        b'{"user":null,"timestamp":1655564444103,"x":NaN,"y":1,"z":1}',
        "'user' is null; 'x' must be a finite number, got 'NaN'",
    ),
    "NaN beside an object in a string field": (
        b'{"user":{"a":1},"timestamp":1655564444103,"x":NaN,"y":1,"z":1}',
        "'user' must be a string, got '{\"a\":1}'; 'x' must be a finite number, got 'NaN'",
    ),
    "a key twice, null": (
        b'{"user":null,"user":null,' + FIELDS + b"}",
        "'user' is named more than once",
    ),
    "a key twice, two addresses": (
        b'{"user":"a@test.com","us\\u0065r":"b@test.com",' + FIELDS + b"}",
        "'user' is named more than once",
    ),
    "unquoted key": (b'{user:"a@test.com",' + FIELDS + b"}", "not a JSON object"),
    "comment": (b'{"user":"a@test.com",/* hi */' + FIELDS + b"}", "not a JSON object"),
    "not UTF-8 in a field": (
        b'{"user":"a\xff\xfe@test.com",' + FIELDS + b"}",
        "'user' is not valid UTF-8",
    ),
    "not UTF-8, not JSON": (b"\xff\xfe{\x00", "not valid UTF-8"),
    "NUL byte": (b'{"user":"a@test.com",\x00' + FIELDS + b"}", "not a JSON object"),
    "raw control character in a string": (
        b'{"user":"a\x01@test.com",' + FIELDS + b"}",
        "not a JSON object",
    ),
    "terminal escape": (b"\x1b[31m red \x1b[0m", "not a JSON object"),
    "nested 5,000 deep": (
        b'{"user":"a@test.com",' + FIELDS + b',"w":' + b"[" * 5000 + b"]" * 5000 + b"}",
        "not a JSON object",
    ),
    "an address of 255 characters": (
        b'{"user":"' + b"a" * 246 + b'@test.com",' + FIELDS + b"}",
        "'user' must have at most 254 characters, got '" + "a" * 40 + "'",
    ),
    "a number of 5,000 digits": (
        b'{"user":"a@test.com","timestamp":' + b"9" * 5000 + b',"x":1,"y":1,"z":1}',
        "not a JSON object",
    ),
}


def cli_env(**extra: str) -> dict[str, str]:
    """The suite's environment for a `stedi-lake` process of its own: these sources on its path,
    its lake's own catalog."""
    env = {k: v for k, v in os.environ.items() if k != SHARED_METASTORE}
    path = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
    return env | {"PYTHONPATH": os.pathsep.join(p for p in path if p)} | extra


def run_through(server: str, root: Path, rules: Rules, *args: str) -> subprocess.CompletedProcess:
    """`stedi-lake run` on `root` as a thin client of the lake server at URL `server`."""
    command = [sys.executable, "-m", "stedi_lakehouse", "run", "--profile", "test", *args]
    command += ["--lake-root", str(root), "--rules", str(rules), "--remote", server]
    done = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # a command through a server holds the served writer's lock, never the lake's own
    assert (root / SERVER_DIR / WRITER_LOCK).is_file() and not (root / LOCK_FILE).exists()
    return done


def start_server(root: Path):
    """`stedi-lake server start` on `root` for the suite: the server keeps a metastore of its
    own (the suite's JVM holds the shared one). Its address."""
    import pytest

    from stedi_lakehouse.lake import server

    with pytest.MonkeyPatch.context() as env:
        env.delenv(SHARED_METASTORE, raising=False)
        return server.start(str(root), profile="test")
