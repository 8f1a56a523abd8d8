"""Independent plain-Python reference implementation of the STEDI rules.

Used by the tests to know what the Spark pipeline must produce for a landing
folder.  It imports nothing from ``stedi_lakehouse`` on purpose: it re-states
the data contract and the two rule presets ("privacy", "udacity") directly,
so a mistake in the pipeline cannot hide in shared code.

``expected_counts(landing_dir, rules)`` returns the row count of every table;
``expected_exclusions(landing_dir, rules)`` returns, per dataset, how many
valid records each rule excluded and why.  ``python tests/oracle.py DIR``
prints both for both presets.
"""

from __future__ import annotations

import json
import math
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATASETS = ("customer", "accelerometer", "step_trainer")
RULES = ("privacy", "udacity")
TABLES = (
    "customer_landing",
    "accelerometer_landing",
    "step_trainer_landing",
    "customer_quarantine",
    "accelerometer_quarantine",
    "step_trainer_quarantine",
    "customer_trusted",
    "accelerometer_trusted",
    "step_trainer_trusted",
    "customer_curated",
    "machine_learning_curated",
)

# exclusion reasons, in the order they are checked
SUPERSEDED = "superseded"
UNKNOWN_PERSON = "unknown person"
AMBIGUOUS_DEVICE = "ambiguous device"
NO_CONSENT = "no consent"
NO_ACCELEROMETER_DATA = "no accelerometer data"
BEFORE_CONSENT = "before consent"
REASONS = {
    "privacy": {
        "customer": (SUPERSEDED, NO_CONSENT),
        "accelerometer": (UNKNOWN_PERSON, NO_CONSENT, BEFORE_CONSENT),
        "step_trainer": (
            UNKNOWN_PERSON,
            AMBIGUOUS_DEVICE,
            NO_CONSENT,
            NO_ACCELEROMETER_DATA,
            BEFORE_CONSENT,
        ),
    },
    "udacity": {
        "customer": (SUPERSEDED, NO_CONSENT),
        "accelerometer": (UNKNOWN_PERSON, NO_CONSENT),
        "step_trainer": (UNKNOWN_PERSON, NO_CONSENT),
    },
}

EPOCH_MIN_MS = 946_684_800_000  # inclusive
EPOCH_END_MS = 4_102_444_800_000  # exclusive
INT64_MAX = 2**63 - 1  # epoch and distance ranges lie inside signed 64 bits
# no white space, nothing that wraps or lists addresses, no full-width form; a domain of
# labels between single dots
_NOT_IN_ADDRESS = r'@\s:;,<>()\[\]"\\\uff00-\uffef'
EMAIL = re.compile(
    rf"[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}.%/]+(?:\.[^{_NOT_IN_ADDRESS}.%/]+)*"
)
INVISIBLE = {"Cc", "Cf"}  # control and format characters, refused in an address
EMAIL_MAX = 254  # characters
BLANK = " \t\r\n"


class Invalid(Exception):
    """A value breaks the data contract; its record is quarantined."""


# --- field types ---------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _epoch(value: Any) -> int:
    if not _is_int(value) or not EPOCH_MIN_MS <= value < EPOCH_END_MS:
        raise Invalid(f"not an epoch-ms integer in range: {value!r}")
    return value


def _distance(value: Any) -> int:
    if not _is_int(value) or not 0 <= value <= INT64_MAX:
        raise Invalid(f"not a distance: {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"not a number: {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise Invalid(f"number too large: {value!r}") from None
    if not math.isfinite(number):  # NaN / Infinity tokens
        raise Invalid(f"not finite: {value!r}")
    return number


def _string(value: Any) -> str:
    """A JSON string, or a JSON number taken as its text."""
    if isinstance(value, str):
        return value
    try:
        _number(value)  # rejects objects, arrays, booleans, NaN / Infinity
    except Invalid:
        raise Invalid(f"not a string or number: {value!r}") from None
    return str(value)


def _email(value: Any) -> str:
    text = _string(value)
    invisible = any(unicodedata.category(c) in INVISIBLE for c in text)
    if not EMAIL.fullmatch(text) or invisible or len(text) > EMAIL_MAX:
        raise Invalid(f"not an email: {text!r}")
    return unicodedata.normalize("NFC", text.lower())  # one person's in any case or form


# Unicode's White_Space: what Python's `\s` matches, less U+001C to U+001F
_AROUND = re.compile(r"^[^\S\x1c-\x1f]+|[^\S\x1c-\x1f]+$")


def _serial(value: Any) -> str:
    text = _AROUND.sub("", _string(value))
    if not text:
        raise Invalid("empty serial number")
    if any(unicodedata.category(c) in INVISIBLE for c in text):
        raise Invalid(f"a control or format character in {text!r}")
    # one device's in any letter case or Unicode form, white space around it or not
    return unicodedata.normalize("NFC", text.lower())


# field name -> (parser, required)
Schema = dict[str, tuple[Callable[[Any], Any], bool]]
SCHEMAS: dict[str, Schema] = {
    "customer": {
        "customerName": (_string, False),
        "email": (_email, True),
        "phone": (_string, False),
        "birthDay": (_string, False),
        "serialNumber": (_serial, True),
        "registrationDate": (_epoch, True),
        "lastUpdateDate": (_epoch, True),
        "shareWithResearchAsOfDate": (_epoch, False),
        "shareWithPublicAsOfDate": (_epoch, False),
        "shareWithFriendsAsOfDate": (_epoch, False),
    },
    "accelerometer": {
        "user": (_email, True),
        "timestamp": (_epoch, True),
        "x": (_number, True),
        "y": (_number, True),
        "z": (_number, True),
    },
    "step_trainer": {
        "sensorReadingTime": (_epoch, True),
        "serialNumber": (_serial, True),
        "distanceFromObject": (_distance, True),
    },
}


# --- landing -------------------------------------------------------------


@dataclass
class Landing:
    valid: list[dict[str, Any]]
    quarantined: int


def _lines(folder: Path) -> list[str]:
    """Non-blank lines of every *.json file under folder, in path order."""
    lines = []
    for path in sorted(folder.rglob("*.json")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            lines += [line for line in text.split("\n") if line.strip(BLANK)]
    return lines


class _Object(dict):
    """A JSON object that remembers every name it was given, repeated ones too."""

    def __init__(self, pairs: list[tuple[str, Any]]):
        super().__init__(pairs)
        self.names = Counter(name for name, _ in pairs)


def _parse(line: str, schema: Schema) -> dict[str, Any]:
    try:
        raw = json.loads(line, object_pairs_hook=_Object)
    except (ValueError, RecursionError) as error:
        raise Invalid(f"not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise Invalid("not a JSON object")
    if repeated := [name for name in schema if raw.names[name] > 1]:
        raise Invalid(f"named more than once: {repeated}")
    record = {}
    for name, (parse, required) in schema.items():
        value = raw.get(name)
        if value is None:
            if required:
                raise Invalid(f"{name} is missing or null")
            record[name] = None
            continue
        record[name] = parse(value)
        if required and record[name] == "":
            raise Invalid(f"{name} is empty")
    return record


def load(landing_dir: Path, dataset: str) -> Landing:
    valid, quarantined = [], 0
    for line in _lines(Path(landing_dir) / dataset):
        try:
            valid.append(_parse(line, SCHEMAS[dataset]))
        except Invalid:
            quarantined += 1
    return Landing(valid, quarantined)


# --- shared rules --------------------------------------------------------


@dataclass
class World:
    customers: Landing
    accelerometer: Landing
    step_trainer: Landing
    latest: dict[str, dict[str, Any]]  # email -> latest customer record
    trusted: dict[str, int]  # email -> shareWithResearchAsOfDate
    owners: dict[str, set[str]]  # serialNumber -> emails of latest records
    claimants: dict[str, set[str]]  # serialNumber -> emails of any record


def _latest(customers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """email -> the record with the greatest lastUpdateDate (a tie there is an error)."""
    by_email: dict[str, list[dict[str, Any]]] = {}
    for record in customers:
        by_email.setdefault(record["email"], []).append(record)
    latest = {}
    for email, records in by_email.items():
        newest = max(record["lastUpdateDate"] for record in records)
        winners = [record for record in records if record["lastUpdateDate"] == newest]
        if len(winners) > 1:
            raise ValueError(f"lastUpdateDate tie for {email}: the winner is undefined")
        latest[email] = winners[0]
    return latest


def _world(landing_dir: Path) -> World:
    customers, accelerometer, steps = (load(landing_dir, dataset) for dataset in DATASETS)
    latest = _latest(customers.valid)
    trusted = {
        email: record["shareWithResearchAsOfDate"]
        for email, record in latest.items()
        if record["shareWithResearchAsOfDate"] is not None
    }
    owners: dict[str, set[str]] = {}
    for email, record in latest.items():
        owners.setdefault(record["serialNumber"], set()).add(email)
    claimants: dict[str, set[str]] = {}
    for record in customers.valid:
        claimants.setdefault(record["serialNumber"], set()).add(record["email"])
    return World(customers, accelerometer, steps, latest, trusted, owners, claimants)


@dataclass
class Outcome:
    accelerometer_trusted: list[dict[str, Any]]
    curated: set[str]  # emails
    step_trainer_trusted: list[dict[str, Any]]
    machine_learning_curated: int
    exclusions: dict[str, Counter]


def _split(records: list[dict], reason_of: Callable[[dict], str | None]) -> tuple[list, Counter]:
    kept, excluded = [], Counter()
    for record in records:
        reason = reason_of(record)
        if reason is None:
            kept.append(record)
        else:
            excluded[reason] += 1
    return kept, excluded


def _customer_exclusions(world: World) -> Counter:
    return Counter(
        {
            SUPERSEDED: len(world.customers.valid) - len(world.latest),
            NO_CONSENT: len(world.latest) - len(world.trusted),
        }
    )


# --- privacy preset ------------------------------------------------------


def _privacy(world: World) -> Outcome:
    def accelerometer_reason(reading: dict) -> str | None:
        user = reading["user"]
        if user not in world.latest:
            return UNKNOWN_PERSON
        if user not in world.trusted:
            return NO_CONSENT
        return BEFORE_CONSENT if reading["timestamp"] < world.trusted[user] else None

    readings, accelerometer_excluded = _split(world.accelerometer.valid, accelerometer_reason)
    curated = {reading["user"] for reading in readings}

    def step_reason(step: dict) -> str | None:
        owners = world.owners.get(step["serialNumber"], set())
        if not owners:
            return UNKNOWN_PERSON
        if len(world.claimants[step["serialNumber"]]) > 1:  # now, or ever: whose, unknown
            return AMBIGUOUS_DEVICE
        (owner,) = owners
        if owner not in world.trusted:
            return NO_CONSENT
        if owner not in curated:
            return NO_ACCELEROMETER_DATA
        return BEFORE_CONSENT if step["sensorReadingTime"] < world.trusted[owner] else None

    steps, step_excluded = _split(world.step_trainer.valid, step_reason)
    per_person_instant = Counter((reading["user"], reading["timestamp"]) for reading in readings)
    pairs = 0
    for step in steps:
        (owner,) = world.owners[step["serialNumber"]]
        pairs += per_person_instant[(owner, step["sensorReadingTime"])]
    return Outcome(
        readings,
        curated,
        steps,
        pairs,
        {"accelerometer": accelerometer_excluded, "step_trainer": step_excluded},
    )


# --- udacity preset ------------------------------------------------------


def _udacity(world: World) -> Outcome:
    def accelerometer_reason(reading: dict) -> str | None:
        if reading["user"] not in world.latest:
            return UNKNOWN_PERSON
        return None if reading["user"] in world.trusted else NO_CONSENT

    readings, accelerometer_excluded = _split(world.accelerometer.valid, accelerometer_reason)
    curated = {reading["user"] for reading in readings}
    curated_serials = {world.latest[email]["serialNumber"] for email in curated}

    def step_reason(step: dict) -> str | None:
        if step["serialNumber"] in curated_serials:
            return None
        return NO_CONSENT if step["serialNumber"] in world.owners else UNKNOWN_PERSON

    steps, step_excluded = _split(world.step_trainer.valid, step_reason)
    per_instant = Counter(reading["timestamp"] for reading in readings)
    pairs = sum(per_instant[step["sensorReadingTime"]] for step in steps)
    return Outcome(
        readings,
        curated,
        steps,
        pairs,
        {"accelerometer": accelerometer_excluded, "step_trainer": step_excluded},
    )


# --- public API ----------------------------------------------------------


def _evaluate(landing_dir: Path, rules: str) -> tuple[World, Outcome]:
    if rules not in RULES:
        raise ValueError(f"unknown rules {rules!r}; expected one of {RULES}")
    world = _world(Path(landing_dir))
    outcome = _privacy(world) if rules == "privacy" else _udacity(world)
    return world, outcome


def expected_counts(landing_dir: Path, rules: str) -> dict[str, int]:
    """Row count of every table for the given rules preset."""
    world, outcome = _evaluate(landing_dir, rules)
    counts = {
        "customer_landing": len(world.customers.valid),
        "accelerometer_landing": len(world.accelerometer.valid),
        "step_trainer_landing": len(world.step_trainer.valid),
        "customer_quarantine": world.customers.quarantined,
        "accelerometer_quarantine": world.accelerometer.quarantined,
        "step_trainer_quarantine": world.step_trainer.quarantined,
        "customer_trusted": len(world.trusted),
        "accelerometer_trusted": len(outcome.accelerometer_trusted),
        "step_trainer_trusted": len(outcome.step_trainer_trusted),
        "customer_curated": len(outcome.curated),
        "machine_learning_curated": outcome.machine_learning_curated,
    }
    assert tuple(counts) == TABLES
    return counts


def expected_exclusions(landing_dir: Path, rules: str) -> dict[str, dict[str, int]]:
    """dataset -> reason -> number of valid records excluded for that reason."""
    world, outcome = _evaluate(landing_dir, rules)
    excluded = {"customer": _customer_exclusions(world), **outcome.exclusions}
    return {
        dataset: {reason: excluded[dataset][reason] for reason in REASONS[rules][dataset]}
        for dataset in DATASETS
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/oracle.py LANDING_DIR")
    report = {
        rules: {
            "counts": expected_counts(Path(sys.argv[1]), rules),
            "exclusions": expected_exclusions(Path(sys.argv[1]), rules),
        }
        for rules in RULES
    }
    print(json.dumps(report, indent=2))
