"""An independent reference implementation of the `privacy` rules, in DuckDB.

It shares no code with `stedi_lakehouse` (nor with tests/oracle.py): it re-states the landing
contracts and the `privacy` rules of the README in SQL, reads the landing JSON lines as plain
text, validates them, builds every table and writes each one as a Delta table with the
`deltalake` package (Arrow batches straight from DuckDB):

    <out>/delta/{landing,quarantine,trusted,curated}/<table>/

Validation has two paths. The fast one reads every line of a feed in one multi-file scan and
matches it with one regular expression of the feed's plain shape; the few lines it does not
accept (any other shape, a broken rule) take the strict path, which parses each as JSON and
checks every field's JSON type and rule, giving the quarantine its reasons. The fast path
accepts only what the strict one accepts, with the same values.

It exists to measure the project's Spark pipeline against a single-node engine on the same
input, and to check that both give the same row count for every table.

    python bench/reference.py LANDING_DIR OUT_DIR [--pseudonym-key K] [--json-out FILE]

LANDING_DIR holds customer/, accelerometer/, step_trainer/ with *.json files (nested folders
allowed). Prints the row counts as JSON on stdout (and writes them to --json-out).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

DATASETS = ("customer", "accelerometer", "step_trainer")
EPOCH_MIN_MS = 946_684_800_000  # 2000-01-01, inclusive
EPOCH_END_MS = 4_102_444_800_000  # 2100-01-01, exclusive
# Unicode's White_Space (RE2's `\s` is ASCII's): stripped around serial numbers, refused in
# addresses; control and format characters are refused in both (contracts/types.py).
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# As contracts/types.py: nothing that wraps or lists addresses, no full-width form, and a
# domain of labels between single dots.
_NOT_IN_ADDRESS = f'@{WHITE_SPACE}\\p{{Cc}}\\p{{Cf}}:;,<>()\\[\\]"\\\\\\x{{FF00}}-\\x{{FFEF}}'
_LABEL = f"[^{_NOT_IN_ADDRESS}.%/]+"
EMAIL_PATTERN = f"^[^{_NOT_IN_ADDRESS}]+@{_LABEL}(\\.{_LABEL})*$"
EMAIL_MAX = 254  # characters
INVISIBLE = r"[\p{Cc}\p{Cf}]"
BLANK = " \t\r\n"
BATCH_ROWS = 1_000_000

# The landing contracts: (field, kind, required); kinds: string (a JSON string or finite
# number, as text), email (a string like a@b, kept lowered and composed), serial (a string
# kept stripped, lowered and composed), epoch (a JSON integer of ms in range), number (a
# finite JSON number), distance (a JSON integer 0..2^63-1).
CONTRACTS: dict[str, list[tuple[str, str, bool]]] = {
    "customer": [
        ("customerName", "string", False),
        ("email", "email", True),
        ("phone", "string", False),
        ("birthDay", "string", False),
        ("serialNumber", "serial", True),
        ("registrationDate", "epoch", True),
        ("lastUpdateDate", "epoch", True),
        ("shareWithResearchAsOfDate", "epoch", False),
        ("shareWithPublicAsOfDate", "epoch", False),
        ("shareWithFriendsAsOfDate", "epoch", False),
    ],
    "accelerometer": [
        ("user", "email", True),
        ("timestamp", "epoch", True),
        ("x", "number", True),
        ("y", "number", True),
        ("z", "number", True),
    ],
    "step_trainer": [
        ("sensorReadingTime", "epoch", True),
        ("serialNumber", "serial", True),
        ("distanceFromObject", "distance", True),
    ],
}
SQL_TYPES = {
    "string": "VARCHAR",
    "email": "VARCHAR",
    "serial": "VARCHAR",
    "epoch": "BIGINT",
    "number": "DOUBLE",
    "distance": "BIGINT",
}
ZONES = {
    "customer_landing": "landing",
    "accelerometer_landing": "landing",
    "step_trainer_landing": "landing",
    "customer_quarantine": "quarantine",
    "accelerometer_quarantine": "quarantine",
    "step_trainer_quarantine": "quarantine",
    "customer_trusted": "trusted",
    "accelerometer_trusted": "trusted",
    "step_trainer_trusted": "trusted",
    "customer_curated": "curated",
    "machine_learning_curated": "curated",
}
CUSTOMER_COLUMNS = [name for name, _, _ in CONTRACTS["customer"]]

# The fast path's shape of a line (see `_fast_sql`): the feeds' own field order, JSON's
# whitespace, strings without escapes or control characters, JSON's integer and number
# grammar. The customer feed is small and has optional fields: all of it takes the strict path.
_WS = r"[ \t\r]*"
_STRING = r'"[^"\\\x00-\x1f]+"'
_INTEGER = r"-?(?:0|[1-9][0-9]*)"
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_VALUE = {"email": _STRING, "string": _STRING, "serial": _STRING}
_VALUE |= {"epoch": _INTEGER, "number": _NUMBER}
_VALUE["distance"] = r"(?:0|[1-9][0-9]*)"
# what surrounds a value that is not a string, between the quotes of two field names
_AROUND = " \t\r:,}"


def _object_pattern(dataset: str) -> str:
    members = f"{_WS},{_WS}".join(
        f'"{name}"{_WS}:{_WS}{_VALUE[kind]}' for name, kind, _ in CONTRACTS[dataset]
    )
    return f"^{_WS}\\{{{_WS}{members}{_WS}\\}}{_WS}$"


FAST_PATTERNS = {dataset: _object_pattern(dataset) for dataset in ("accelerometer", "step_trainer")}


# --- validation ----------------------------------------------------------------------------


def _field_sql(name: str, kind: str, required: bool) -> tuple[str, str, str]:
    """(typed value, 'is valid' condition, reason) of one field, over `r` (a struct of JSON
    values, SQL NULL when the field is absent or JSON null)."""
    value = f'r."{name}"'
    json_kind = f"json_type({value})"
    integer = f"{json_kind} IN ('BIGINT', 'UBIGINT')"
    finite = (
        f"({json_kind} IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
        f"AND isfinite(TRY_CAST({value} AS DOUBLE)))"
    )
    if kind in ("string", "email", "serial"):
        text = f"json_extract_string({value}, '$')"
        ok = f"({json_kind} = 'VARCHAR' OR {finite})"
        if kind == "email":
            ok = f"({ok} AND {_email_holds(text)})"
        if kind == "serial":
            ok = f"({ok} AND {_serial_holds(text)})"
        elif required:
            ok = f"({ok} AND {text} <> '')"
        typed = _kept(kind, text)
    elif kind == "epoch":
        typed = f"TRY_CAST({value} AS BIGINT)"
        ok = f"({integer} AND {typed} >= {EPOCH_MIN_MS} AND {typed} < {EPOCH_END_MS})"
    elif kind == "distance":
        typed = f"TRY_CAST({value} AS BIGINT)"
        ok = f"({integer} AND {typed} >= 0)"  # a UBIGINT above 2^63-1 does not cast: NULL
    elif kind == "number":
        typed = f"TRY_CAST({value} AS DOUBLE)"
        ok = finite
    else:
        raise ValueError(kind)
    present = f"({value} IS NOT NULL AND {json_kind} <> 'NULL')"
    valid = f"coalesce({present} AND {ok}, false)"
    if not required:
        valid = f"(NOT coalesce({present}, false) OR {valid})"
    reason = (
        f"CASE WHEN NOT coalesce({present}, false) THEN '''{name}'' is missing or null' "
        f"WHEN NOT {valid} THEN '''{name}'' breaks its rule ({kind})' END"
        if required
        else f"CASE WHEN NOT {valid} THEN '''{name}'' breaks its rule ({kind})' END"
    )
    return typed, valid, reason


def _stripped(text: str) -> str:
    return f"trim({text}, {_literal(WHITE_SPACE)})"


def _email_holds(text: str) -> str:
    """An address matches the pattern and has at most `EMAIL_MAX` characters."""
    matches = f"regexp_full_match({text}, {_literal(EMAIL_PATTERN)})"
    return f"({matches} AND length({text}) <= {EMAIL_MAX})"


def _serial_holds(text: str) -> str:
    """A serial number is not empty once stripped, and holds no invisible character."""
    stripped = _stripped(text)
    return f"({stripped} <> '' AND NOT regexp_matches({stripped}, {_literal(INVISIBLE)}))"


def _kept(kind: str, text: str) -> str:
    """The value as the project keeps it: addresses lowered and composed (NFC), serial
    numbers stripped too."""
    if kind == "email":
        return f"nfc_normalize(lower({text}))"
    if kind == "serial":
        return f"nfc_normalize(lower({_stripped(text)}))"
    return text


def _strict_sql(dataset: str, lines: str) -> str:
    """The strict validation of the lines of `lines` (a relation of file_id, line) ->
    (file_id, ok, typed columns..., raw_line and reason if not ok)."""
    fields = CONTRACTS[dataset]
    shape = json.dumps({name: "JSON" for name, _, _ in fields})
    parts = [_field_sql(name, kind, required) for name, kind, required in fields]
    valid = " AND ".join(f"({v})" for _, v, _ in parts)
    typed = ",\n  ".join(
        f'CASE WHEN ok THEN CAST({t} AS {SQL_TYPES[kind]}) END AS "{name}"'
        for (t, _, _), (name, kind, _) in zip(parts, fields, strict=True)
    )
    reasons = ", ".join(r for _, _, r in parts)
    # a field named twice is ambiguous: quarantined whichever value comes last
    names = "[" + ", ".join(_literal(name) for name, _, _ in fields) + "]"
    named = f"list_filter(keys, lambda k: list_contains({names}, k))"
    valid = f"{valid} AND len({named}) = len(list_distinct({named}))"
    reasons += f", CASE WHEN len({named}) <> len(list_distinct({named})) THEN 'named twice' END"
    return f"""
WITH objects AS (
  -- JSON that is not an object (a number, an array...) comes out with every field NULL,
  -- so it breaks the required fields every contract has
  SELECT file_id, line,
    CASE WHEN json_valid(line) THEN json_transform(line, {_literal(shape)}) END AS r
  FROM {lines}
), named AS (
  SELECT *, CASE WHEN r IS NOT NULL AND json_type(line) = 'OBJECT' THEN json_keys(line)
    ELSE [] END AS keys
  FROM objects
), checked AS (
  SELECT file_id, line, r, keys, r IS NOT NULL AND {valid} AS ok FROM named
)
SELECT file_id::INTEGER AS file_id, ok,
  {typed},
  CASE WHEN NOT ok THEN line END AS raw_line,
  CASE WHEN NOT ok THEN CASE WHEN r IS NULL THEN 'not a JSON object'
    WHEN json_type(line) <> 'OBJECT' THEN 'not a JSON object'
    ELSE concat_ws('; ', {reasons}) END END AS reason
FROM checked"""


def _lines_sql(paths: list[str]) -> str:
    """Every non-blank line of the files, with its file's id (from `source_files`)."""
    files = "[" + ", ".join(_literal(p) for p in paths) + "]"
    return f"""
  SELECT f.file_id, t.line
  FROM read_csv({files}, columns = {{'line': 'VARCHAR'}}, delim = '\\x01', quote = '',
    escape = '', header = false, auto_detect = false, new_line = '\\n', filename = true) t
  JOIN source_files f ON f.path = t.filename
  WHERE t.line IS NOT NULL AND trim(t.line, {_literal(BLANK)}) <> ''"""


def _fast_sql(dataset: str, lines: str) -> str:
    """The fast path: a line whose whole text has the feed's plain shape (one regular
    expression without captures: the contract's fields in the feeds' order, strings without
    escapes, JSON integers and numbers) is cut at its quotes into its values; if these pass
    the rules the line is `fast`, its columns typed. Every other line keeps its text for
    `_strict_sql`. So the fast path accepts only what the strict one accepts, with the same
    values."""
    fields = CONTRACTS[dataset]
    pattern = FAST_PATTERNS.get(dataset)
    if pattern is None:
        typed = ", ".join(f'NULL::{SQL_TYPES[kind]} AS "{name}"' for name, kind, _ in fields)
        return f"SELECT file_id, false AS fast, {typed}, line FROM ({lines})"
    # cut at '"': [1] is '{', [2] the first name; a string value is two parts on, the next
    # name two more; any other value is the next part, with ':' and ',' around it
    values, part = {}, 2
    for name, kind, _ in fields:
        if kind in ("string", "email", "serial"):
            values[name], part = f"p[{part + 2}]", part + 4
        else:
            text = f"trim(p[{part + 1}], {_literal(_AROUND)})"
            values[name], part = f"TRY_CAST({text} AS {SQL_TYPES[kind]})", part + 2
    checks = {
        "email": _email_holds,
        "serial": _serial_holds,
        "epoch": lambda v: f"coalesce({v} >= {EPOCH_MIN_MS} AND {v} < {EPOCH_END_MS}, false)",
        "number": lambda v: f"coalesce(isfinite({v}), false)",
        "distance": lambda v: f"{v} IS NOT NULL",
        "string": lambda v: "true",
    }
    fast = " AND ".join(["shaped", *(checks[kind](f'"{name}"') for name, kind, _ in fields)])
    cut = ", ".join(f'{values[name]} AS "{name}"' for name, _, _ in fields)
    quoted = {name: f'"{name}"' for name, _, _ in fields}
    typed = ", ".join(
        f"CASE WHEN fast THEN {_kept(kind, quoted[name])} END AS {quoted[name]}"
        for name, kind, _ in fields
    )
    return f"""
WITH shaped AS (
  SELECT file_id, line, regexp_full_match(line, {_literal(pattern)}) AS shaped FROM ({lines})
), cut AS (
  SELECT file_id, line, shaped, {cut}
  FROM (SELECT *, CASE WHEN shaped THEN string_split(line, '"') END AS p FROM shaped)
), judged AS (SELECT *, coalesce({fast}, false) AS fast FROM cut)
SELECT file_id, fast, {typed}, CASE WHEN NOT fast THEN line END AS line FROM judged"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- the rules -----------------------------------------------------------------------------

RULES_SQL = f"""
-- the latest record per email is the person; ties: later source file, then the values
CREATE TABLE customer_ranked AS
SELECT c.*, row_number() OVER (
    PARTITION BY email ORDER BY lastUpdateDate DESC, file_id DESC,
    {", ".join(f'"{c}" DESC NULLS LAST' for c in CUSTOMER_COLUMNS)}) AS rank
FROM customer_landing c;

CREATE TABLE persons AS
SELECT {", ".join(f'"{c}"' for c in CUSTOMER_COLUMNS)} FROM customer_ranked WHERE rank = 1;

CREATE VIEW customer_trusted AS
SELECT * FROM persons WHERE shareWithResearchAsOfDate IS NOT NULL;

CREATE TABLE accelerometer_classified AS
SELECT a.user, a.timestamp, a.x, a.y, a.z,
  CASE WHEN p.email IS NULL THEN 'unknown person'
       WHEN p.shareWithResearchAsOfDate IS NULL THEN 'no consent'
       WHEN a.timestamp < p.shareWithResearchAsOfDate THEN 'before consent' END AS exclusion
FROM accelerometer_landing a LEFT JOIN persons p ON a.user = p.email;

CREATE TABLE accelerometer_trusted AS
SELECT user, timestamp, x, y, z FROM accelerometer_classified WHERE exclusion IS NULL;

CREATE TABLE customer_curated AS
SELECT * FROM customer_trusted
WHERE email IN (SELECT DISTINCT user FROM accelerometer_trusted);

-- a serial number's owners: the persons whose latest record names it, or more: every
-- customer any record of whom ever claimed it (a device handed on is ambiguous)
CREATE TABLE claimants AS
SELECT serialNumber, count(DISTINCT email) AS claimants FROM customer_landing GROUP BY 1;

CREATE TABLE devices AS
SELECT p.serialNumber,
  greatest(count(DISTINCT p.email), max(cl.claimants)) AS owners,
  min(p.email) AS owner_email,
  min(p.shareWithResearchAsOfDate) AS owner_consent_ms,
  count(DISTINCT c.email) AS curated_owners
FROM persons p LEFT JOIN customer_curated c ON p.email = c.email
LEFT JOIN claimants cl ON p.serialNumber = cl.serialNumber
GROUP BY p.serialNumber;

CREATE TABLE step_trainer_classified AS
SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject, d.owner_email,
  CASE WHEN d.owners IS NULL THEN 'unknown person'
       WHEN d.owners > 1 THEN 'ambiguous device'
       WHEN d.owner_consent_ms IS NULL THEN 'no consent'
       WHEN d.curated_owners = 0 THEN 'no accelerometer data'
       WHEN s.sensorReadingTime < d.owner_consent_ms THEN 'before consent' END AS exclusion
FROM step_trainer_landing s LEFT JOIN devices d ON s.serialNumber = d.serialNumber;

CREATE TABLE step_trainer_trusted_owned AS
SELECT sensorReadingTime, serialNumber, distanceFromObject, owner_email
FROM step_trainer_classified WHERE exclusion IS NULL;

CREATE VIEW step_trainer_trusted AS
SELECT sensorReadingTime, serialNumber, distanceFromObject FROM step_trainer_trusted_owned;
"""

# each trusted step reading with the same person's trusted accelerometer readings at that ms
MACHINE_LEARNING_SQL = """
SELECT k.subject_key, s.sensorReadingTime AS reading_time_ms,
  s.distanceFromObject AS distance_from_object, a.x, a.y, a.z
FROM step_trainer_trusted_owned s
JOIN accelerometer_trusted a ON a.user = s.owner_email AND a.timestamp = s.sensorReadingTime
JOIN subject_keys k ON k.email = s.owner_email
"""


def _subject_keys(con: duckdb.DuckDBPyConnection, key: bytes) -> pa.Table:
    """HMAC-SHA256 (hex) of each curated customer's email: one Python call per person."""
    emails = con.sql("SELECT email FROM customer_curated").fetchnumpy()["email"]
    keys = [hmac.new(key, str(e).encode(), hashlib.sha256).hexdigest() for e in emails]
    return pa.table({"email": pa.array(emails, pa.string()), "subject_key": keys})


# --- running -------------------------------------------------------------------------------


def _files(landing: Path, dataset: str) -> list[str]:
    folder = landing / dataset
    if not folder.is_dir():
        raise SystemExit(f"error: no landing folder {folder}")
    return sorted(str(p) for p in folder.rglob("*.json") if p.is_file())


def _write_delta(con, sql: str, path: Path) -> int:
    """Stream a query's result into a new Delta table; return the rows the table holds."""
    relation = con.sql(sql)
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    reader = to_reader(BATCH_ROWS)
    write_deltalake(str(path), reader, mode="overwrite")
    actions = DeltaTable(str(path)).get_add_actions(flatten=True)
    return sum(v or 0 for v in pa.table(actions).column("num_records").to_pylist())


def run(
    landing: Path,
    out: Path,
    *,
    pseudonym_key: bytes,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> dict:
    """Build every table of the `privacy` rules from `landing` into `out`; return counts."""
    started = time.monotonic()
    phases: dict[str, float] = {}
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    con = duckdb.connect(config={"temp_directory": str(out / "_duckdb_tmp")})
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {_literal(memory_limit)}")

    # landing: validate every line of every file
    files: list[tuple[int, str, str]] = []
    for dataset in DATASETS:
        for path in _files(landing, dataset):
            files.append((len(files), dataset, path))
    con.execute("CREATE TABLE source_files (file_id INTEGER, dataset VARCHAR, path VARCHAR)")
    con.executemany("INSERT INTO source_files VALUES (?, ?, ?)", files)
    for dataset in DATASETS:
        mine = [p for _, d, p in files if d == dataset] or ["/dev/null"]
        fast, strict = f"{dataset}_fast", f"{dataset}_strict"
        con.execute(f"CREATE TABLE {fast} AS {_fast_sql(dataset, _lines_sql(mine))}")
        lines = f"(SELECT file_id, line FROM {fast} WHERE NOT fast)"
        con.execute(f"CREATE TABLE {strict} AS {_strict_sql(dataset, lines)}")
        columns = ", ".join(f'"{name}"' for name, _, _ in CONTRACTS[dataset])
        con.execute(
            f"""CREATE VIEW {dataset}_parsed AS
            SELECT file_id, true AS ok, {columns}, NULL::VARCHAR AS raw_line,
              NULL::VARCHAR AS reason
            FROM {fast} WHERE fast
            UNION ALL SELECT * FROM {strict}"""
        )
        con.execute(
            f"CREATE VIEW {dataset}_landing AS SELECT {columns}, file_id FROM {dataset}_parsed "
            "WHERE ok"
        )
    phases["validate"] = time.monotonic() - started

    mark = time.monotonic()
    con.execute(RULES_SQL)
    con.register("subject_keys_arrow", _subject_keys(con, pseudonym_key))
    con.execute("CREATE TABLE subject_keys AS SELECT * FROM subject_keys_arrow")
    phases["rules"] = time.monotonic() - mark

    mark = time.monotonic()
    outputs = {}
    for dataset in DATASETS:
        columns = ", ".join(f'p."{name}"' for name, _, _ in CONTRACTS[dataset])
        outputs[f"{dataset}_landing"] = (
            f"SELECT {columns}, f.path AS source_file FROM {dataset}_parsed p "
            f"JOIN source_files f USING (file_id) WHERE p.ok"
        )
        outputs[f"{dataset}_quarantine"] = (
            f"SELECT p.raw_line, p.reason, f.path AS source_file FROM {dataset}_parsed p "
            f"JOIN source_files f USING (file_id) WHERE NOT p.ok"
        )
    outputs["customer_trusted"] = "SELECT * FROM customer_trusted"
    outputs["accelerometer_trusted"] = "SELECT * FROM accelerometer_trusted"
    outputs["step_trainer_trusted"] = "SELECT * FROM step_trainer_trusted"
    outputs["customer_curated"] = "SELECT * FROM customer_curated"
    outputs["machine_learning_curated"] = MACHINE_LEARNING_SQL
    tables = {}
    for name, zone in ZONES.items():
        path = out / "delta" / zone / name
        rows = _write_delta(con, outputs[name], path)
        tables[name] = {"rows": rows, "path": str(path)}
    phases["write"] = time.monotonic() - mark

    exclusions = {}
    for dataset, table in (
        ("accelerometer", "accelerometer_classified"),
        ("step_trainer", "step_trainer_classified"),
    ):
        exclusions[dataset] = dict(
            con.sql(
                f"SELECT exclusion, count(*) FROM {table} WHERE exclusion IS NOT NULL "
                "GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
    exclusions["customer"] = dict(
        con.sql("""SELECT 'superseded', count(*) FILTER (WHERE rank > 1) FROM customer_ranked
                   UNION ALL SELECT 'no consent', count(*) FROM persons
                   WHERE shareWithResearchAsOfDate IS NULL""").fetchall()
    )
    con.close()
    shutil.rmtree(out / "_duckdb_tmp", ignore_errors=True)
    return {
        "tables": tables,
        "exclusions": exclusions,
        "phases_s": {k: round(v, 3) for k, v in phases.items()},
        "seconds": round(time.monotonic() - started, 3),
        "duckdb": duckdb.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("landing", type=Path, help="folder with customer/, accelerometer/, ...")
    parser.add_argument("out", type=Path, help="output folder (replaced)")
    parser.add_argument(
        "--pseudonym-key",
        default=os.environ.get("STEDI_PSEUDONYM_KEY", "local-development-key-not-secret"),
        help="HMAC key of subject_key",
    )
    parser.add_argument("--threads", type=int, help="DuckDB threads [default: all cores]")
    parser.add_argument("--memory-limit", help="DuckDB memory limit, e.g. 4GB")
    parser.add_argument("--json-out", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = run(
        args.landing,
        args.out,
        pseudonym_key=args.pseudonym_key.encode(),
        threads=args.threads,
        memory_limit=args.memory_limit,
    )
    text = json.dumps(result, indent=2)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
