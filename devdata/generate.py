"""Landing data at scale: a realistic, deterministic landing set of any size.

``generate_landing(out_dir, customers=N)`` clears and rewrites ``out_dir/customer``,
``out_dir/accelerometer`` and ``out_dir/step_trainer`` with JSON-lines files in the lake's
landing layout (times in epoch ms). The same arguments always give byte-identical files.
``data/sample/`` is its small case (the Makefile's ``sample`` target), edge cases included.

What is in it (shares are of customers unless said otherwise):

* customers: about half consent to research (``shareWithResearchAsOfDate``); of the
  consenting customers with readings, a fifth consent part-way through their readings (a
  quarter of those exactly at a reading's millisecond). Non-consenting customers have the
  field explicitly ``null`` or absent. Phones arrive as JSON strings or numbers, a few
  birthdays are ``null``, a few phones absent, a few records carry an unknown extra field.
* later updates (5 %) in separate files, each with a later ``lastUpdateDate``: consent
  withdrawn, granted, moved later, or only the phone changed; plus stale records (1 %) that
  arrive late but are older and must lose.
* every customer's Step Trainer records a session of distance readings every 2-5 s (about
  ``readings_per_device`` of them) and the phone app records 2-5 accelerometer readings at
  each of those milliseconds (so same-person pairs exist) plus one in between; 8 % of customers
  have no readings, 2 % step readings but no phone readings. Sessions are spread over 2022, so
  different people also read at the same millisecond now and then.
* ``ambiguous_share``: that share of customers (rounded) gives its serial number to a second
  customer (the fulfilment-site defect); both use it.
* ``unknown_share``: that many extra app users who are no customers, and as many devices
  nobody owns, each with its own session (about that share of all readings).
* ``bad_share``: that share of each dataset's lines (at least one of each kind) are bad lines:
  not JSON, truncated, wrong types, missing / null / empty required fields, out-of-range
  values, NaN, plus blank lines. They are built from real consenting customers' records (bad
  customer lines are would-be later updates withdrawing consent), so accepting any of them
  changes the results.
* ``edge_cases``: adds the fixed, hand-built scenario set of ``devdata.edge_cases``
  (35 customers of its own, about 600 lines in files of its own) beside the population: each
  scenario exactly once, at exact instants, where the population has them only by chance.

Everything is built as numpy/Arrow columns and formatted in bulk; no Python loop runs per row.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devdata.edge_cases import (
    DATASETS,
    FIRST_NAMES,
    LAST_NAMES,
    EdgeCases,
    build_edge_cases,
    write_edge_cases,
)
from stedi_lakehouse.contracts.types import MAX_EPOCH_MS

EMAIL_DOMAIN = "test.com"

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
READINGS_START_MS = 1_640_995_200_000  # 2022-01-01T00:00:00Z: sessions start during 2022
READINGS_SPAN_MS = 365 * DAY_MS
REGISTRATION_LEAD_MS = (DAY_MS, 60 * DAY_MS)  # registration 1-60 days before the session
STEP_INTERVAL_MS = (2_000, 4_999)  # "every few seconds", with ms jitter
SAME_MS_READINGS = (2, 5)  # accelerometer readings at each step instant, inclusive
AXIS_MILLI = 1_500  # x, y, z in [-1.5, 1.5], three decimals
DISTANCE_CM = (150, 300)
UPDATE_DELAY_MS = (HOUR_MS, 30 * DAY_MS)
STALE_AGE_MS = (HOUR_MS, 10 * DAY_MS)
POISON_DELAY_MS = (HOUR_MS, 10 * DAY_MS)  # bad customer lines: after every valid record
MIDWAY_MAX_LEAD_MS = STEP_INTERVAL_MS[0] - 1  # consent up to this before a reading

CONSENT_SHARE = 0.5
MIDWAY_SHARE = 0.2  # of consenting customers with readings
AT_READING_SHARE = 0.25  # of those: consent exactly at a reading's millisecond
NO_READINGS_SHARE = 0.08
NO_ACCEL_SHARE = 0.02  # of customers with readings: no phone readings
NULL_CONSENT_SHARE = 0.5  # of non-consenting customers: explicit null, else absent
UPDATE_SHARE = 0.05
STALE_SHARE = 0.01
PHONE_AS_NUMBER_SHARE = 1 / 3
NO_PHONE_SHARE = 0.01
NULL_BIRTHDAY_SHARE = 0.01
EXTRA_FIELD_SHARE = 0.01

ROWS_PER_FILE = 400_000  # automatic files_per_dataset: about this many lines per file
MIN_FILES = 2
BATCH_ROWS = 1_000_000  # lines formatted at once (bounds memory; Arrow strings < 2 GiB)
TRUNCATE_AT = 40  # truncated bad lines keep this many characters (lines are longer)

EPOCH_END_MS = MAX_EPOCH_MS  # 2100-01-01, exclusive: the contracts' bound
YEAR_2200_MS = 7_258_118_400_000

# Kinds of lines. 0 is a good line; line-level kinds apply to the whole line, the others
# replace one field's JSON value (None: leave the field out).
GOOD, NOT_JSON, TRUNCATED, BLANK, WHITESPACE = 0, 1, 2, 3, 4
LINE_KINDS = (NOT_JSON, TRUNCATED, BLANK, WHITESPACE)
BLANK_KINDS = (BLANK, WHITESPACE)
INT64_MAX = 2**63 - 1

# dataset -> [(field, replacement)], kinds numbered from 5 in this order; a replacement is a
# JSON text, None (field absent) or a callable of the good JSON value.
FIELD_KINDS: dict[str, list[tuple[str, Any]]] = {
    "customer": [
        ("registrationDate", '"abc"'),
        ("lastUpdateDate", lambda v: pc.binary_join_element_wise(v, ".0", "")),
        ("registrationDate", "1.5"),
        ("email", "true"),
        ("serialNumber", lambda v: pc.binary_join_element_wise('{"id":', v, "}", "")),
        ("phone", "true"),
        ("serialNumber", None),
        ("email", "null"),
        ("serialNumber", '""'),
        ("email", lambda v: pc.replace_substring(v, "@", ".")),
        ("registrationDate", "0"),
        ("lastUpdateDate", str(YEAR_2200_MS)),
        ("lastUpdateDate", str(2**64)),
        ("shareWithResearchAsOfDate", '"2022-06-20"'),
        ("shareWithPublicAsOfDate", '"yesterday"'),
    ],
    "accelerometer": [
        ("timestamp", '"abc"'),
        ("timestamp", lambda v: pc.binary_join_element_wise(v, ".0", "")),
        ("x", '"high"'),
        ("y", "true"),
        ("z", None),
        ("user", "null"),
        ("user", '""'),
        ("user", lambda v: pc.replace_substring(v, "@", ".")),
        ("timestamp", "0"),
        ("timestamp", str(YEAR_2200_MS)),
        ("timestamp", str(EPOCH_END_MS)),
        ("timestamp", str(2**63)),
        ("x", "NaN"),
        ("y", "Infinity"),
    ],
    "step_trainer": [
        ("distanceFromObject", lambda v: pc.binary_join_element_wise(v, ".5", "")),
        ("distanceFromObject", lambda v: pc.binary_join_element_wise('"', v, '"', "")),
        ("sensorReadingTime", '"abc"'),
        ("sensorReadingTime", lambda v: pc.binary_join_element_wise(v, ".0", "")),
        ("serialNumber", "true"),
        ("serialNumber", None),
        ("sensorReadingTime", "null"),
        ("serialNumber", '""'),
        ("distanceFromObject", lambda v: pc.binary_join_element_wise("-", v, "")),
        ("sensorReadingTime", "0"),
        ("sensorReadingTime", str(YEAR_2200_MS)),
        ("distanceFromObject", str(2**63)),
    ],
}
FIRST_FIELD_KIND = 1 + max(LINE_KINDS)


def kinds_of(dataset: str) -> int:
    """Number of bad-line kinds of a dataset (line-level and field-level)."""
    return len(LINE_KINDS) + len(FIELD_KINDS[dataset])


def generate_landing(
    out_dir: Path,
    *,
    customers: int,
    seed: int = 42,
    ambiguous_share: float = 0.01,
    unknown_share: float = 0.01,
    bad_share: float = 0.001,
    readings_per_device: int = 25,
    files_per_dataset: int | None = None,
    edge_cases: bool = False,
) -> dict[str, Any]:
    """Rewrite the three landing datasets under ``out_dir``; return what was written:
    ``{"datasets": {dataset: {files, lines, records, bad_lines, blank_lines, bytes}},
    "people": {...scenario counts...}, "lines": N, "bytes": N}`` (edge cases included)."""
    if customers < 1:
        raise ValueError("customers must be >= 1")
    if readings_per_device < 2:
        raise ValueError("readings_per_device must be >= 2")
    if files_per_dataset is not None and files_per_dataset < 1:
        raise ValueError("files_per_dataset must be >= 1")
    for name, share in (
        ("ambiguous_share", ambiguous_share),
        ("unknown_share", unknown_share),
        ("bad_share", bad_share),
    ):
        if not 0 <= share < 1:
            raise ValueError(f"{name} must be in [0, 1), got {share}")
    if 2 * round(ambiguous_share * customers) > customers:
        raise ValueError("ambiguous_share must be at most 0.5")

    rng = np.random.default_rng(seed)
    world = _World(rng, customers, ambiguous_share, unknown_share, readings_per_device)
    cases = build_edge_cases(seed) if edge_cases else None
    if cases is not None:
        _keep_apart(world, cases)
    out_dir = Path(out_dir)
    for dataset in DATASETS:
        shutil.rmtree(out_dir / dataset, ignore_errors=True)
        (out_dir / dataset).mkdir(parents=True)

    datasets = {
        "customer": _write_customers(
            world, rng, out_dir / "customer", bad_share, files_per_dataset
        ),
        "accelerometer": _write_readings(
            _Accelerometer(world, rng), rng, out_dir / "accelerometer", bad_share, files_per_dataset
        ),
        "step_trainer": _write_readings(
            _StepTrainer(world, rng), rng, out_dir / "step_trainer", bad_share, files_per_dataset
        ),
    }
    people = world.summary()
    if cases is not None:
        for dataset, written in write_edge_cases(out_dir, cases).items():
            datasets[dataset] = {k: v + written[k] for k, v in datasets[dataset].items()}
        people["edge_case_customers"] = cases.customers
    return {
        "datasets": datasets,
        "people": people,
        "lines": sum(d["lines"] for d in datasets.values()),
        "records": sum(d["records"] for d in datasets.values()),
        "bytes": sum(d["bytes"] for d in datasets.values()),
    }


# --- people and sessions -------------------------------------------------------------------


class _World:
    """Everybody as columns: customers (0..n-1), then app users who are no customers, then
    devices nobody owns; each with one session of step instants."""

    def __init__(self, rng, customers: int, ambiguous_share, unknown_share, readings_per_device):
        n = customers
        ghosts = round(unknown_share * n)
        p = n + 2 * ghosts
        self.n, self.ghosts, self.p = n, ghosts, p
        index = np.arange(p)
        is_customer = index < n
        ghost_user = (index >= n) & (index < n + ghosts)
        ghost_device = index >= n + ghosts

        # identities (emails are unique: the person's number is part of them)
        firsts = pa.array(FIRST_NAMES).take(pa.array(rng.integers(0, len(FIRST_NAMES), p)))
        lasts = pa.array(LAST_NAMES).take(pa.array(rng.integers(0, len(LAST_NAMES), p)))
        self.name = pc.binary_join_element_wise(firsts, lasts, " ")
        email = pc.binary_join_element_wise(
            firsts, ".", lasts, _ints(index), "@" + EMAIL_DOMAIN, ""
        )
        self.email_json = _quoted(email)
        self.serial_json = _quoted(_uuids(rng, p))
        self.phone = 8_015_550_000 + rng.integers(0, 10_000, p)
        self.birthday = _dates(rng, p)

        # serials claimed by two customers: the second claimant's record names the first's
        self.shared_pairs = round(ambiguous_share * n)
        claimants = rng.permutation(n)[: 2 * self.shared_pairs]
        self.serial_of = np.arange(p)  # person -> whose serial string their device carries
        self.serial_of[claimants[self.shared_pairs :]] = claimants[: self.shared_pairs]

        # who reads what
        has_readings = is_customer & (rng.random(p) >= NO_READINGS_SHARE)
        no_accel = rng.random(p) < NO_ACCEL_SHARE
        self.has_steps = has_readings | ghost_device
        self.has_accel = (has_readings & ~no_accel) | ghost_user

        # one session each: step instants every 2-5 s
        low = max(2, readings_per_device // 2)
        counts = rng.integers(low, 2 * readings_per_device - low + 1, p)
        counts[~(self.has_steps | self.has_accel)] = 0
        self.step_counts = counts
        first_step = np.concatenate([[0], np.cumsum(counts)[:-1]])
        starts = READINGS_START_MS + rng.integers(0, READINGS_SPAN_MS, p)
        self.step_owner = np.repeat(index, counts)
        gaps = rng.integers(STEP_INTERVAL_MS[0], STEP_INTERVAL_MS[1] + 1, len(self.step_owner))
        in_session = counts > 0
        gaps[first_step[in_session]] = 0
        elapsed = np.cumsum(gaps)
        self.step_time = starts[self.step_owner] + elapsed - elapsed[first_step[self.step_owner]]
        self.next_gap = np.zeros(len(gaps), dtype=np.int64)  # to the same session's next step
        self.next_gap[:-1] = gaps[1:]
        self.next_gap[(first_step + counts - 1)[in_session]] = 0
        # an instant inside each session (a reading other than the first), for consent times
        inner = first_step + rng.integers(1, np.maximum(counts, 2))
        padded = np.concatenate([self.step_time, starts])  # people without a session: start
        self.midway_reading = np.where(
            in_session, padded[np.minimum(inner, len(padded) - 1)], starts
        )

        # consent
        self.registration = starts - rng.integers(*REGISTRATION_LEAD_MS, p)
        self.consenting = is_customer & (rng.random(p) < CONSENT_SHARE)
        self.midway = self.consenting & has_readings & (rng.random(p) < MIDWAY_SHARE)
        self.at_reading = self.midway & (rng.random(p) < AT_READING_SHARE)
        lead = np.where(self.at_reading, 0, rng.integers(1, MIDWAY_MAX_LEAD_MS + 1, p))
        self.consent = np.where(self.midway, self.midway_reading - lead, self.registration)
        self.null_consent = is_customer & ~self.consenting & (rng.random(p) < NULL_CONSENT_SHARE)
        self.first_update = np.where(self.consenting, self.consent, self.registration)
        self.phone_as_number = rng.random(p) < PHONE_AS_NUMBER_SHARE
        self.no_phone = rng.random(p) < NO_PHONE_SHARE
        self.null_birthday = rng.random(p) < NULL_BIRTHDAY_SHARE
        self.extra_field = rng.random(p) < EXTRA_FIELD_SHARE

    def summary(self) -> dict[str, int]:
        n = self.n
        return {
            "customers": n,
            "consenting": int(self.consenting[:n].sum()),
            "consent_mid_session": int(self.midway[:n].sum()),
            "consent_at_a_reading": int(self.at_reading[:n].sum()),
            "with_step_readings": int(self.has_steps[:n].sum()),
            "with_accelerometer_readings": int(self.has_accel[:n].sum()),
            "serials_claimed_twice": self.shared_pairs,
            "unknown_app_users": self.ghosts,
            "unknown_devices": self.ghosts,
        }


def _keep_apart(world: _World, cases: EdgeCases) -> None:
    """The edge cases' people are people of their own: no generated e-mail address or serial
    number may be one of theirs (an e-mail cannot be: the generator's have digits before the
    @; a random serial could, with odds of about 2**-122 a pair, and would merge two people)."""
    for generated, fields in (
        (world.email_json, ("email", "user")),
        (world.serial_json, ("serialNumber",)),
    ):
        theirs = sorted(set().union(*(cases.identifiers(name) for name in fields)))
        taken = pc.is_in(generated, value_set=pa.array([json.dumps(v) for v in theirs]))
        if pc.any(taken).as_py():
            raise ValueError(f"a generated {fields[0]} is one of the edge cases': use another seed")


def _quoted(strings: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', strings, '"', "")


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _uuids(rng, n: int) -> pa.Array:
    """n random version-4 UUIDs as strings, vectorised."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src in ((0, 0), (9, 8), (14, 12), (19, 16), (24, 20)):
        width = {0: 8, 20: 12}.get(src, 4)
        text[:, dst : dst + width] = digits[:, src : src + width]
    return pc.cast(pa.array(text.view("S36").ravel(), pa.binary(36)), pa.string())


def _dates(rng, n: int) -> pa.Array:
    year = rng.integers(1930, 2006, n)
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)

    def two(values):
        return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), 2, "0")

    return pc.binary_join_element_wise(
        pc.cast(pa.array(year), pa.string()), two(month), two(day), "-"
    )


# --- formatting ----------------------------------------------------------------------------


def _ints(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, pa.int64()), pa.string())


def _object_lines(fields: list[tuple[str, pa.Array]]) -> pa.Array:
    """JSON-object lines from (field, JSON text) columns; a null JSON text leaves the field
    out. Any number of rows, one Arrow kernel per field."""
    pieces = [
        pc.binary_join_element_wise(f'"{name}":', values, "", null_handling="emit_null")
        for name, values in fields
    ]
    body = pc.binary_join_element_wise(*pieces, ",", null_handling="skip")
    return pc.binary_join_element_wise("{", body, "}\n", "")


def _constant(text: str | None, n: int) -> pa.Array:
    return pa.nulls(n, pa.string()) if text is None else pa.repeat(pa.scalar(text), n)


def _bad_lines(dataset: str, fields: list[tuple[str, pa.Array]], kinds: np.ndarray) -> pa.Array:
    """Lines of the given bad kinds, made from good records' (field, JSON text) columns."""
    values = dict(fields)
    for offset, (name, replacement) in enumerate(FIELD_KINDS[dataset]):
        mask = kinds == FIRST_FIELD_KIND + offset
        if not mask.any():
            continue
        count = int(mask.sum())
        if callable(replacement):
            new = replacement(values[name].filter(pa.array(mask)))
        else:
            new = _constant(replacement, count)
        values[name] = pc.replace_with_mask(values[name], pa.array(mask), new)
    lines = _object_lines([(name, values[name]) for name, _ in fields])
    for kind in LINE_KINDS:
        mask = kinds == kind
        if not mask.any():
            continue
        chosen = lines.filter(pa.array(mask))
        if kind == NOT_JSON:
            new = pc.replace_substring(chosen, '"', "")
        elif kind == TRUNCATED:
            new = pc.binary_join_element_wise(
                pc.utf8_slice_codeunits(chosen, 0, TRUNCATE_AT), "\n", ""
            )
        else:
            new = _constant("\n" if kind == BLANK else " \t \n", len(chosen))
        lines = pc.replace_with_mask(lines, pa.array(mask), new)
    return lines


def _write_lines(handle, lines: pa.Array) -> int:
    """Write a string array whose elements end with a newline as one block; return bytes."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if len(lines) == 0:
        return 0
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
    )
    start, end = int(offsets[0]), int(offsets[-1])
    handle.write(memoryview(lines.buffers()[2])[start:end])
    return end - start


def _bad_plan(rng, rows: int, candidates: np.ndarray, share: float, dataset: str):
    """Which good rows get a bad copy right after them, and of which kind."""
    kinds_n = kinds_of(dataset)
    if share <= 0 or rows == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int8)
    count = max(kinds_n, round(share * rows))
    pool = candidates if len(candidates) else np.arange(rows)
    sources = np.sort(rng.choice(pool, count, replace=count > len(pool)))
    kinds = np.concatenate(
        [np.arange(1, kinds_n + 1), rng.integers(1, kinds_n + 1, count - kinds_n)]
    )
    return sources, rng.permutation(kinds).astype(np.int8)


def _layout(rows: int, sources: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Final line order: every good row, each bad copy right after its source row.
    Returns (source row of each line, kind of each line)."""
    total = rows + len(sources)
    positions = sources + np.arange(len(sources)) + 1
    line_kind = np.zeros(total, dtype=np.int8)
    line_kind[positions] = kinds
    line_source = np.empty(total, dtype=np.int64)
    line_source[line_kind == GOOD] = np.arange(rows)
    line_source[positions] = sources
    return line_source, line_kind


def _file_count(lines: int, files_per_dataset: int | None) -> int:
    if files_per_dataset is not None:
        return files_per_dataset
    return max(MIN_FILES, math.ceil(lines / ROWS_PER_FILE))


def _summary(files: int, line_kind: np.ndarray, written: int) -> dict[str, int]:
    blank = int(np.isin(line_kind, BLANK_KINDS).sum())
    lines = len(line_kind)
    return {
        "files": files,
        "lines": lines,
        "records": lines - blank,
        "bad_lines": int((line_kind != GOOD).sum()) - blank,
        "blank_lines": blank,
        "bytes": written,
    }


def _write_files(folder: Path, prefix: str, files: int, start: int, stop: int, format_lines) -> int:
    """Write lines [start, stop) into `files` consecutive, nearly equal files, formatting at
    most BATCH_ROWS lines at once (format_lines(start, stop) -> Arrow strings); return bytes."""
    bounds = np.linspace(start, stop, files + 1).round().astype(np.int64)
    written = 0
    for number in range(files):
        with (folder / f"{prefix}-{number:03d}.json").open("wb") as handle:
            first, last = int(bounds[number]), int(bounds[number + 1])
            for batch in range(first, last, BATCH_ROWS):
                written += _write_lines(handle, format_lines(batch, min(batch + BATCH_ROWS, last)))
    return written


def _masked(values: pa.Array, absent: np.ndarray) -> pa.Array:
    """Null (field left out) where `absent`."""
    return pc.if_else(pa.array(absent), pa.nulls(len(values), pa.string()), values)


def _stated(values: pa.Array, state: np.ndarray) -> pa.Array:
    """state 0: the value, 1: JSON null, 2: field absent."""
    with_null = pc.if_else(pa.array(state == 1), pa.scalar("null"), values)
    return _masked(with_null, state == 2)


# --- customer ------------------------------------------------------------------------------


def _write_customers(world: _World, rng, folder: Path, bad_share, files_per_dataset):
    n = world.n
    consenting, null_consent = world.consenting[:n], world.null_consent[:n]
    # value states: 0 = the value, 1 = JSON null, 2 = field absent
    research_state = np.where(consenting, 0, np.where(null_consent, 1, 2))
    sharing_state = np.where(~consenting & ~null_consent, 2, 0)

    # later updates, each strictly later than the customer's first record
    updated = np.sort(rng.permutation(n)[: round(UPDATE_SHARE * n)])
    update_at = world.first_update[updated] + rng.integers(*UPDATE_DELAY_MS, len(updated))
    was_consenting = consenting[updated]
    choice = rng.integers(0, 3, len(updated))
    withdraw = was_consenting & (choice == 0)  # consent withdrawn
    move = was_consenting & (choice == 1) & (world.step_counts[updated] > 0)  # into the session
    grant = ~was_consenting & (choice < 2)  # consent from the update on
    moved_to = np.maximum(world.midway_reading[updated], world.consent[updated])
    update_at = np.where(move, np.maximum(update_at, moved_to), update_at)
    update_consent = np.select([move, grant], [moved_to, update_at], world.consent[updated])
    update_research = np.where(
        withdraw, 1, np.where(was_consenting | grant, 0, research_state[updated])
    )
    update_sharing = np.where(grant, 0, sharing_state[updated])
    phone_only = ~withdraw & ~move & ~grant
    new_phone = 8_015_550_000 + rng.integers(0, 10_000, len(updated))

    # stale records: older than the first record but arriving late, consent flipped
    stale = np.sort(rng.permutation(n)[: round(STALE_SHARE * n)])
    stale_at = world.first_update[stale] - rng.integers(*STALE_AGE_MS, len(stale))
    stale_research = np.where(consenting[stale], 1, 0)
    stale_sharing = np.where(consenting[stale], sharing_state[stale], 0)

    people = np.arange(n)
    columns = {
        "person": np.concatenate([people, updated, stale]),
        "last_update": np.concatenate([world.first_update[:n], update_at, stale_at]),
        "research": np.concatenate([world.consent[:n], update_consent, world.registration[stale]]),
        "research_state": np.concatenate([research_state, update_research, stale_research]),
        "sharing_state": np.concatenate([sharing_state, update_sharing, stale_sharing]),
        "phone": np.concatenate(
            [
                world.phone[:n],
                np.where(phone_only, new_phone, world.phone[updated]),
                world.phone[stale],
            ]
        ),
    }
    later = len(updated) + len(stale)
    order = np.concatenate([rng.permutation(n), n + rng.permutation(later)])
    columns = {key: values[order] for key, values in columns.items()}
    rows = n + later

    # bad lines: would-be updates of consenting customers withdrawing consent, later than any
    # valid record; copies of first records, so they land in the first-record files
    candidates = np.flatnonzero(world.consenting[columns["person"][:n]])
    sources, kinds = _bad_plan(rng, rows, candidates, bad_share, "customer")
    poison_at = int(columns["last_update"].max()) + rng.integers(*POISON_DELAY_MS, len(sources))
    line_source, line_kind = _layout(rows, sources, kinds)
    line_time = np.zeros(len(line_source), dtype=np.int64)
    line_time[line_kind != GOOD] = poison_at

    def fields(records: np.ndarray, poison_time: np.ndarray | None) -> list[tuple[str, pa.Array]]:
        person = columns["person"][records]
        at = pa.array(person)
        phone_digits = _ints(columns["phone"][records])
        phone = pc.if_else(
            pa.array(world.phone_as_number[person]), phone_digits, _quoted(phone_digits)
        )
        birthday = pc.if_else(
            pa.array(world.null_birthday[person]),
            pa.scalar("null"),
            _quoted(world.birthday.take(at)),
        )
        registration = _ints(world.registration[person])
        research_state = columns["research_state"][records]
        sharing_state = columns["sharing_state"][records]
        last_update = columns["last_update"][records]
        if poison_time is not None:
            research_state = np.ones(len(records), dtype=np.int64)
            sharing_state = np.zeros(len(records), dtype=np.int64)
            last_update = poison_time
        result = [
            ("customerName", _quoted(world.name.take(at))),
            ("email", world.email_json.take(at)),
            ("phone", _masked(phone, world.no_phone[person])),
            ("birthDay", birthday),
            ("serialNumber", world.serial_json.take(pa.array(world.serial_of[person]))),
            ("registrationDate", registration),
            ("lastUpdateDate", _ints(last_update)),
            (
                "shareWithResearchAsOfDate",
                _stated(_ints(columns["research"][records]), research_state),
            ),
            ("shareWithPublicAsOfDate", _stated(registration, sharing_state)),
            ("shareWithFriendsAsOfDate", _stated(registration, sharing_state)),
        ]
        if poison_time is None:
            nickname = _constant('"hallway trainer"', len(records))
            result.append(("deviceNickname", _masked(nickname, ~world.extra_field[person])))
        return result

    def format_lines(start: int, stop: int) -> pa.Array:
        records, kinds = line_source[start:stop], line_kind[start:stop]
        lines = _object_lines(fields(records, None))
        bad = kinds != GOOD
        if bad.any():
            poison = line_time[start:stop][bad]
            bad_lines = _bad_lines("customer", fields(records[bad], poison), kinds[bad])
            lines = pc.replace_with_mask(lines, pa.array(bad), bad_lines)
        return lines

    # the first records (with the bad lines), then the updates in files of their own
    files = _file_count(len(line_source), files_per_dataset)
    update_files = 1 if files > 1 and later else 0
    split = n + int((sources < n).sum()) if update_files else len(line_source)
    written = _write_files(folder, "customer", files - update_files, 0, split, format_lines)
    if update_files:
        written += _write_files(
            folder, "customer-updates", update_files, split, len(line_source), format_lines
        )
    return _summary(files, line_kind, written)


# --- readings ------------------------------------------------------------------------------


def _table(values: range, label: str, suffix: str = "") -> pa.Array:
    """Lookup table of JSON texts for small integer codes (offset by values.start)."""
    return pa.array([f"{label}{code / 1000!r}{suffix}" for code in values], pa.string())


AXIS_CODES = range(-AXIS_MILLI, AXIS_MILLI + 1)


class _Accelerometer:
    dataset, prefix = "accelerometer", "accelerometer"

    def __init__(self, world: _World, rng):
        self.world = world
        steps = np.flatnonzero(world.has_accel[world.step_owner])
        same_ms = rng.integers(SAME_MS_READINGS[0], SAME_MS_READINGS[1] + 1, len(steps))
        at_steps = np.repeat(steps, same_ms)
        between = steps[world.next_gap[steps] > 0]
        between_time = world.step_time[between] + rng.integers(1, world.next_gap[between])
        time = np.concatenate([world.step_time[at_steps], between_time])
        person = np.concatenate([world.step_owner[at_steps], world.step_owner[between]])
        order = np.argsort(time, kind="stable")
        self.time, self.person = time[order], person[order].astype(np.int32)
        self.rows = len(self.time)
        self.axes = (rng.integers(-AXIS_MILLI, AXIS_MILLI + 1, (3, self.rows)) + AXIS_MILLI).astype(
            np.int16
        )
        self.candidates = np.flatnonzero(world.consenting[self.person])
        self.user_piece = pc.binary_join_element_wise('{"user":', world.email_json, "")
        self.axis_values = _table(AXIS_CODES, "")
        self.axis_pieces = [
            _table(AXIS_CODES, f',"{a}":', "}\n" if a == "z" else "") for a in "xyz"
        ]

    def good_lines(self, rows: np.ndarray) -> pa.Array:
        x, y, z = (pa.array(axis[rows]) for axis in self.axes)
        return pc.binary_join_element_wise(
            self.user_piece.take(pa.array(self.person[rows])),
            ',"timestamp":',
            _ints(self.time[rows]),
            self.axis_pieces[0].take(x),
            self.axis_pieces[1].take(y),
            self.axis_pieces[2].take(z),
            "",
        )

    def fields(self, rows: np.ndarray) -> list[tuple[str, pa.Array]]:
        return [
            ("user", self.world.email_json.take(pa.array(self.person[rows]))),
            ("timestamp", _ints(self.time[rows])),
            *[
                (a, self.axis_values.take(pa.array(axis[rows])))
                for a, axis in zip("xyz", self.axes, strict=True)
            ],
        ]


class _StepTrainer:
    dataset, prefix = "step_trainer", "step_trainer"

    def __init__(self, world: _World, rng):
        self.world = world
        steps = np.flatnonzero(world.has_steps[world.step_owner])
        time = world.step_time[steps]
        order = np.argsort(time, kind="stable")
        self.time = time[order]
        self.person = world.step_owner[steps][order].astype(np.int32)
        self.rows = len(self.time)
        self.distance = rng.integers(DISTANCE_CM[0], DISTANCE_CM[1] + 1, self.rows).astype(np.int16)
        owner = world.serial_of[self.person]
        self.candidates = np.flatnonzero(world.consenting[owner])
        self.serial_piece = pc.binary_join_element_wise(
            ',"serialNumber":', world.serial_json, ',"distanceFromObject":', ""
        )

    def good_lines(self, rows: np.ndarray) -> pa.Array:
        return pc.binary_join_element_wise(
            '{"sensorReadingTime":',
            _ints(self.time[rows]),
            self.serial_piece.take(pa.array(self.world.serial_of[self.person[rows]])),
            _ints(self.distance[rows]),
            "}\n",
            "",
        )

    def fields(self, rows: np.ndarray) -> list[tuple[str, pa.Array]]:
        serial_of = self.world.serial_of[self.person[rows]]
        return [
            ("sensorReadingTime", _ints(self.time[rows])),
            ("serialNumber", self.world.serial_json.take(pa.array(serial_of))),
            ("distanceFromObject", _ints(self.distance[rows])),
        ]


def _write_readings(source, rng, folder: Path, bad_share, files_per_dataset):
    sources, kinds = _bad_plan(rng, source.rows, source.candidates, bad_share, source.dataset)
    line_source, line_kind = _layout(source.rows, sources, kinds)

    def format_lines(start: int, stop: int) -> pa.Array:
        records, kinds = line_source[start:stop], line_kind[start:stop]
        lines = source.good_lines(records)
        bad = kinds != GOOD
        if bad.any():
            bad_lines = _bad_lines(source.dataset, source.fields(records[bad]), kinds[bad])
            lines = pc.replace_with_mask(lines, pa.array(bad), bad_lines)
        return lines

    files = _file_count(len(line_source), files_per_dataset)
    written = _write_files(folder, source.prefix, files, 0, len(line_source), format_lines)
    return _summary(files, line_kind, written)
