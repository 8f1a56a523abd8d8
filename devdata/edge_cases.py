"""The fixed, hand-built scenario set that ``generate_landing(..., edge_cases=True)`` (CLI
``stedi-lake generate --edge-cases``) writes beside the generated population.

The generator makes realistic people in bulk, with scenario shares; this module makes the
cases a test wants to name one by one, each exactly once, at exact instants (consent at a
reading's very millisecond, distance 2**63-1, every kind of bad line in every dataset). They
are people of their own: their e-mail addresses have no digits before the ``@`` (the
generator's always do), and ``generate_landing`` checks that no serial number is shared, so
nobody of one set is taken for somebody of the other. ``data/sample/`` is the small case of
the generator with this set added (see the Makefile's ``sample`` target).

``build_edge_cases(seed)`` makes the set in memory; ``write_edge_cases(out_dir, cases)`` adds
its own files, some in nested folders, to ``out_dir/customer``, ``out_dir/accelerometer`` and
``out_dir/step_trainer`` (refusing to overwrite a file). The same seed always gives
byte-identical files; the seed only changes names, serials and values, never which scenarios
exist or how many lines each one has.

Scenarios covered
-----------------
Customers (35 people, 39 valid records):

* consenting customers (shareWithResearchAsOfDate = registrationDate) with a
  step-trainer session and accelerometer readings; three consenting customers
  with no readings at all;
* non-consenting customers, consent field absent for some and explicit null
  for others (the null ones do share with public/friends), with and without
  readings;
* consent given part-way through a session: one exactly at a reading's
  millisecond (that reading counts), one 1 ms before a reading;
* later updates in a nested file: one withdraws consent, one grants it, one
  moves the consent time later (into its session); plus a stale, older record
  of a consenting customer that arrives late and must lose;
* two consenting customers claiming the same device serialNumber;
* a consenting customer with step-trainer readings but no accelerometer data;
* phone as a JSON number for some customers, a null birthDay, an absent phone,
  one record with an unknown extra field.

Readings:

* step-trainer readings every 2-5 s per device (8 per session) and an
  accelerometer reading of the device owner at the same millisecond, plus
  in-between accelerometer readings that match no step reading;
* three accelerometer readings of one person at one millisecond;
* two consenting people with readings at one shared millisecond (one starts
  its session at the instant the other one ends);
* readings of unknown users and of unknown serial numbers;
* boundary-valid values: timestamp 946684800000, distance 0 and 2**63-1,
  an integer x.

Bad lines, in every dataset and spread over its files: not JSON, truncated
JSON, a JSON array, scalars/null, wrong types, missing / null / empty required
fields, out-of-range values (0, year 2200, 4102444800000, 2**63, negative
distance, NaN / Infinity tokens).  Customer bad lines also include an
optional consent field holding a string.  Bad records are built from real,
consenting customers (their email or serial, their in-session instants) and
bad customer records are would-be later updates withdrawing consent, so
accepting any of them changes the results.  Blank and whitespace-only lines appear in every
dataset.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stedi_lakehouse.contracts.tables import Dataset

DATASETS = tuple(str(d) for d in Dataset)
CUSTOMER_FILES = (
    "customer-1.json",
    "customer-2.json",
    "updates/2022/06/customer-updates.json",
)
ACCELEROMETER_FILES = ("accelerometer-1.json", "accelerometer-2.json", "2022/06/part-3.json")
STEP_TRAINER_FILES = ("step_trainer-1.json", "2022/06/18/part-2.json", "2022/06/19/part-3.json")
BLANK_LINES = ("", "   ", "\t", " \t ")
EMAIL_DOMAIN = "test.com"

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
SESSION_START_MS = 1_655_564_376_361  # 2022-06-18T14:59:36.361Z
REGISTRATION_WINDOW_MS = 14 * DAY_MS  # registrations in the 2 weeks before
UPDATES_AT_MS = SESSION_START_MS + 2 * DAY_MS  # after every session
POISON_AT_MS = UPDATES_AT_MS + HOUR_MS  # later than every valid record
SESSION_SLOT_MS = 120_000  # each session gets its own 2-minute slot
READINGS_PER_SESSION = 8
STEP_INTERVAL_MS = (2_000, 4_999)  # "every few seconds", with ms jitter
EXTRA_ACCEL_EVERY = 2  # an in-between reading after every 2nd step reading
EXTRA_ACCEL_OFFSET_MS = 997  # < min interval: strictly between two readings
AXIS_LIMIT = 1.5
DISTANCE_CM = (150, 300)

EPOCH_MIN_MS = 946_684_800_000  # 2000-01-01, inclusive
EPOCH_END_MS = 4_102_444_800_000  # 2100-01-01, exclusive
YEAR_2200_MS = 7_258_118_400_000
INT64_MAX = 2**63 - 1

# Roles: (consent of the first record, readings)
CONSENTING = "consenting"
IDLE = "consenting, no readings"
ABSENT = "consent absent"
ABSENT_IDLE = "consent absent, no readings"
NULL = "consent null"
NULL_IDLE = "consent null, no readings"
MIDWAY = "consent mid-session"
WITHDRAWS = "update withdraws consent"
GRANTS = "update grants consent"
DELAYS = "update moves consent later"
SHARED = "shares a serial"
NO_ACCEL = "consenting, no accelerometer"
ROLE_PLAN = (
    (CONSENTING, 10),
    (IDLE, 3),
    (ABSENT, 3),
    (ABSENT_IDLE, 4),
    (NULL, 3),
    (NULL_IDLE, 4),
    (MIDWAY, 2),
    (WITHDRAWS, 1),
    (GRANTS, 1),
    (DELAYS, 1),
    (SHARED, 2),
    (NO_ACCEL, 1),
)
ROLES_WITHOUT_READINGS = frozenset({IDLE, ABSENT_IDLE, NULL_IDLE})
ROLES_WITHOUT_CONSENT_FIELD = frozenset({ABSENT, ABSENT_IDLE, GRANTS})
ROLES_WITH_NULL_CONSENT = frozenset({NULL, NULL_IDLE})

# Scenario owners, as (role, rank within the role)
MULTI_READING = (CONSENTING, 0)  # 3 accelerometer readings at reading 4
MULTI_READING_INDEX, MULTI_READING_EXTRA = 4, 2
CROSS_PERSON = ((CONSENTING, 1), (CONSENTING, 2))  # 2nd starts as 1st ends
STALE_RECORD = (CONSENTING, 3)  # an older record arrives in the update file
EXTRA_FIELD = (CONSENTING, 4)
EDGE_VALUES = (CONSENTING, 5)  # distance 2**63-1 and 0, integer x
BAD_LINE_TARGETS = tuple((CONSENTING, rank) for rank in (6, 7, 8, 9))
NULL_BIRTHDAY, ABSENT_PHONE = (IDLE, 0), (IDLE, 1)
MIDWAY_CONSENT = ((3, 0), (5, -1))  # per rank: (reading index, offset ms)
DELAYED_CONSENT_INDEX = 5
GRANT_DELAY_MS = HOUR_MS
STALE_GAP_MS = HOUR_MS
PHONE_AS_NUMBER_EVERY = 3
UNKNOWN_USERS, UNKNOWN_USER_READINGS = 2, 6
UNKNOWN_SERIALS, UNKNOWN_SERIAL_READINGS = 2, 5

FIRST_NAMES = (
    "Santosh", "Sarah", "Frank", "Jerry", "Spencer", "Lyn", "Trevor", "Ben",
    "Danny", "Chris", "Larry", "Jacob", "Rick", "Senthil", "Liz", "Bobby",
    "Sean", "Gail", "Steph", "Eric", "John", "Jeff", "Raghu", "Lani",
    "Dana", "Edward", "Neeraj", "Angie", "Manoj", "Paula", "Olga", "Kofi",
    "Mei", "Ingrid", "Tomas", "Amara", "Yusuf", "Hana", "Pedro", "Ruth",
)  # fmt: skip
LAST_NAMES = (
    "Clayton", "Lincoln", "Jackson", "Spencer", "Mitra", "Davis", "Anandh",
    "Stark", "Khan", "Hansen", "Lewis", "Aristotle", "Staples", "Abram",
    "Fibonacci", "Huey", "Habschied", "Gonzalez", "Alexander", "Kahn",
    "Miller", "Wu", "Okafor", "Novak", "Silva", "Tanaka", "Berg", "Moreau",
    "Haddad", "Quinn", "Park", "Russo", "Ortiz", "Fischer", "Mensah",
    "Kowalski", "Nguyen", "Dubois", "Ibrahim", "Larsen",
)  # fmt: skip

_ABSENT: Any = object()  # a field that is left out of the record


@dataclass
class Person:
    role: str
    rank: int
    name: str
    serial: str
    phone: str | int
    birthday: str | None
    registration: int
    times: list[int] = field(default_factory=list)  # step-reading instants

    @property
    def key(self) -> tuple[str, int]:
        return (self.role, self.rank)

    @property
    def email(self) -> str:
        return f"{self.name.replace(' ', '.')}@{EMAIL_DOMAIN}"


@dataclass(frozen=True)
class EdgeCases:
    """The scenario set as lines (dataset -> file name -> lines), how many of each dataset's
    lines are bad, and how many customers it has."""

    files: dict[str, dict[str, list[str]]]
    bad_lines: dict[str, int]
    customers: int

    def identifiers(self, name: str) -> set[str]:
        """Every string value of the field `name` (e.g. "serialNumber") in any line that is a
        JSON object, bad lines included: what the generated population must not use."""
        values = set()
        for files in self.files.values():
            for line in (line for lines in files.values() for line in lines):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get(name), str):
                    values.add(record[name])
        return values


def build_edge_cases(seed: int) -> EdgeCases:
    """The whole scenario set for a seed, in memory (a few hundred lines)."""
    rng = random.Random(seed)
    people, unknown_names = _build_people(rng)
    next_slot = _schedule_sessions(people, rng)
    # in this order: each consumes the seeded random stream
    built = {
        "customer": _customer_files(people, rng),
        "accelerometer": _accelerometer_files(people, unknown_names, next_slot, rng),
        "step_trainer": _step_trainer_files(people, next_slot + UNKNOWN_USERS, rng),
    }
    return EdgeCases(
        files={dataset: files for dataset, (files, _) in built.items()},
        bad_lines={dataset: bad for dataset, (_, bad) in built.items()},
        customers=len(people),
    )


def write_edge_cases(out_dir: Path, cases: EdgeCases) -> dict[str, dict[str, int]]:
    """Add the scenario set's files under ``out_dir/<dataset>/``; return per dataset what
    ``generate_landing`` reports: files, lines, records, bad_lines, blank_lines, bytes."""
    return {
        dataset: _write_dataset(Path(out_dir) / dataset, files, cases.bad_lines[dataset])
        for dataset, files in cases.files.items()
    }


# --- people and sessions -------------------------------------------------


def _build_people(rng: random.Random) -> tuple[list[Person], list[str]]:
    """Everybody in ROLE_PLAN, plus names of readers who are no customers."""
    firsts, lasts = list(FIRST_NAMES), list(LAST_NAMES)
    rng.shuffle(firsts)
    rng.shuffle(lasts)
    names = [f"{first} {last}" for first, last in zip(firsts, lasts, strict=True)]
    people: list[Person] = []
    for role, count in ROLE_PLAN:
        for rank in range(count):
            people.append(_new_person(rng, role, rank, names[len(people)], len(people)))
    first_shared, second_shared = _find(people, (SHARED, 0)), _find(people, (SHARED, 1))
    second_shared.serial = first_shared.serial
    return people, names[len(people) : len(people) + UNKNOWN_USERS]


def _new_person(rng: random.Random, role: str, rank: int, name: str, index: int) -> Person:
    phone = f"801555{rng.randrange(10_000):04d}"
    birthday = f"{rng.randint(1930, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    person = Person(
        role=role,
        rank=rank,
        name=name,
        serial=_serial(rng),
        phone=int(phone) if index % PHONE_AS_NUMBER_EVERY == 0 else phone,
        birthday=birthday,
        registration=SESSION_START_MS - DAY_MS - rng.randrange(REGISTRATION_WINDOW_MS),
    )
    if person.key == NULL_BIRTHDAY:
        person.birthday = None
    if person.key == ABSENT_PHONE:
        person.phone = _ABSENT
    return person


def _serial(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _find(people: list[Person], key: tuple[str, int]) -> Person:
    return next(person for person in people if person.key == key)


def _schedule_sessions(people: list[Person], rng: random.Random) -> int:
    """Give everyone with readings a session in its own slot; return next free slot."""
    slot = 0
    for person in people:
        if person.role in ROLES_WITHOUT_READINGS:
            continue
        start = SESSION_START_MS + slot * SESSION_SLOT_MS
        if person.key == CROSS_PERSON[1]:  # shares exactly one millisecond
            start = _find(people, CROSS_PERSON[0]).times[-1]
        person.times = _session_times(rng, start, READINGS_PER_SESSION)
        slot += 1
    return slot


def _session_times(rng: random.Random, start: int, count: int) -> list[int]:
    times = [start]
    while len(times) < count:
        times.append(times[-1] + rng.randint(*STEP_INTERVAL_MS))
    return times


def _slot_start(slot: int) -> int:
    return SESSION_START_MS + slot * SESSION_SLOT_MS


# --- customer ------------------------------------------------------------


def _customer_record(person: Person, last_update: int, research: Any) -> dict[str, Any]:
    shared = _ABSENT if person.role in ROLES_WITHOUT_CONSENT_FIELD else person.registration
    record = {
        "customerName": person.name,
        "email": person.email,
        "phone": person.phone,
        "birthDay": person.birthday,
        "serialNumber": person.serial,
        "registrationDate": person.registration,
        "lastUpdateDate": last_update,
        "shareWithResearchAsOfDate": research,
        "shareWithPublicAsOfDate": shared,
        "shareWithFriendsAsOfDate": shared,
    }
    return {key: value for key, value in record.items() if value is not _ABSENT}


def _first_consent(person: Person) -> Any:
    if person.role in ROLES_WITHOUT_CONSENT_FIELD:
        return _ABSENT
    if person.role in ROLES_WITH_NULL_CONSENT:
        return None
    if person.role == MIDWAY:
        index, offset = MIDWAY_CONSENT[person.rank]
        return person.times[index] + offset
    return person.registration


def _first_record(person: Person) -> dict[str, Any]:
    last_update = person.registration
    if person.key == STALE_RECORD:
        last_update += STALE_GAP_MS
    record = _customer_record(person, last_update, _first_consent(person))
    if person.key == EXTRA_FIELD:
        record["deviceNickname"] = "hallway trainer"
    return record


def _update_records(people: list[Person]) -> list[dict[str, Any]]:
    withdraws, grants = _find(people, (WITHDRAWS, 0)), _find(people, (GRANTS, 0))
    delays, stale = _find(people, (DELAYS, 0)), _find(people, STALE_RECORD)
    granted_at = grants.registration + GRANT_DELAY_MS
    return [
        _customer_record(withdraws, UPDATES_AT_MS, None),
        _customer_record(grants, granted_at, granted_at),
        _customer_record(delays, UPDATES_AT_MS, delays.times[DELAYED_CONSENT_INDEX]),
        _customer_record(stale, stale.registration, _ABSENT),  # older: loses
    ]


def _customer_files(people: list[Person], rng: random.Random) -> tuple[dict[str, list[str]], int]:
    first = [_first_record(person) for person in people]
    rng.shuffle(first)
    updates = _update_records(people)
    _check_no_ties(first + updates)
    half = len(first) // 2
    files = {
        CUSTOMER_FILES[0]: [_dump(record) for record in first[:half]],
        CUSTOMER_FILES[1]: [_dump(record) for record in first[half:]],
        CUSTOMER_FILES[2]: [_dump(record) for record in updates],
    }
    bad = _bad_customer_lines(people)
    _spread(files, bad + list(BLANK_LINES), rng)
    return files, len(bad)


def _check_no_ties(records: list[dict[str, Any]]) -> None:
    seen = {(record["email"], record["lastUpdateDate"]) for record in records}
    if len(seen) != len(records):
        raise AssertionError("two records of one email share a lastUpdateDate")


def _bad_customer_lines(people: list[Person]) -> list[str]:
    """Would-be updates of consenting customers (withdrawing consent), all invalid."""
    targets = [_find(people, key) for key in BAD_LINE_TARGETS]

    def poison(index: int, **changes: Any) -> str:
        record = _customer_record(targets[index % len(targets)], POISON_AT_MS, None)
        record.update(changes)
        return _dump({key: value for key, value in record.items() if value is not _ABSENT})

    return [
        "this is not json",
        poison(0)[:70],  # truncated
        f"[{poison(1)}]",  # an array
        "42",
        "null",
        poison(2, registrationDate="abc"),
        poison(3, lastUpdateDate=float(POISON_AT_MS)),
        poison(0, registrationDate=1.5),
        poison(1, email=True),
        poison(2, serialNumber={"id": targets[2].serial}),
        poison(3, phone=True),
        poison(0, serialNumber=_ABSENT),  # missing required field
        poison(1, email=None),
        poison(2, serialNumber=""),
        poison(3, email=targets[3].email.replace("@", ".")),
        poison(0, registrationDate=0),
        poison(1, lastUpdateDate=YEAR_2200_MS),
        poison(2, lastUpdateDate=2**64),  # outside signed 64-bit
        poison(3, shareWithResearchAsOfDate="2022-06-20"),
        poison(0, shareWithPublicAsOfDate="yesterday"),
    ]


# --- accelerometer -------------------------------------------------------


def _reading(user: str, timestamp: int, rng: random.Random) -> dict[str, Any]:
    axes = [round(rng.uniform(-AXIS_LIMIT, AXIS_LIMIT), 3) for _ in range(3)]
    return {"user": user, "timestamp": timestamp, "x": axes[0], "y": axes[1], "z": axes[2]}


def _session_readings(person: Person, rng: random.Random) -> list[dict[str, Any]]:
    readings = []
    last = len(person.times) - 1
    for index, instant in enumerate(person.times):
        readings.append(_reading(person.email, instant, rng))
        if person.key == MULTI_READING and index == MULTI_READING_INDEX:
            readings += [_reading(person.email, instant, rng) for _ in range(MULTI_READING_EXTRA)]
        if index % EXTRA_ACCEL_EVERY == 0 and index < last:
            readings.append(_reading(person.email, instant + EXTRA_ACCEL_OFFSET_MS, rng))
    if person.key == EDGE_VALUES:
        readings[0]["x"] = 1  # a JSON integer is a valid number
    return readings


def _unknown_user_readings(names: list[str], first_slot: int, rng: random.Random) -> list[dict]:
    readings = []
    for offset, name in enumerate(names):
        email = f"{name.replace(' ', '.')}@{EMAIL_DOMAIN}"
        times = _session_times(rng, _slot_start(first_slot + offset), UNKNOWN_USER_READINGS)
        readings += [_reading(email, instant, rng) for instant in times]
    readings.append(_reading(readings[0]["user"], EPOCH_MIN_MS, rng))  # boundary, valid
    return readings


def _accelerometer_files(
    people: list[Person], unknown_names: list[str], first_free_slot: int, rng: random.Random
) -> tuple[dict[str, list[str]], int]:
    readings = []
    for person in people:
        if person.times and person.role != NO_ACCEL:
            readings += _session_readings(person, rng)
    readings += _unknown_user_readings(unknown_names, first_free_slot, rng)
    readings.sort(key=lambda reading: reading["timestamp"])
    files = _chunk(ACCELEROMETER_FILES, [_dump(reading) for reading in readings])
    bad = _bad_accelerometer_lines(people, rng)
    _spread(files, bad + list(BLANK_LINES), rng)
    return files, len(bad)


def _bad_line_maker(
    people: list[Person], record: Callable[[Person, int], dict[str, Any]]
) -> tuple[list[Person], Callable[..., str]]:
    """The customers the bad lines are about, and `bad(index, **changes)`: the line of the
    record `record(person, instant)` makes for target `index` at one of its session's instants,
    with `changes` (a value `_ABSENT` drops the key)."""
    targets = [_find(people, key) for key in BAD_LINE_TARGETS]

    def bad(index: int, **changes: Any) -> str:
        person = targets[index % len(targets)]
        line = record(person, person.times[index % READINGS_PER_SESSION]) | changes
        return _dump({key: value for key, value in line.items() if value is not _ABSENT})

    return targets, bad


def _bad_accelerometer_lines(people: list[Person], rng: random.Random) -> list[str]:
    """Readings of consenting customers at their step-reading instants, all invalid."""
    targets, bad = _bad_line_maker(people, lambda person, at: _reading(person.email, at, rng))
    return [
        "{user: Santosh.Clayton@test.com, timestamp: 1655564444103}",  # not JSON
        bad(0)[:40],  # truncated
        f"[{bad(1)}]",
        '"just a string"',
        "null",
        bad(2, timestamp="abc"),
        bad(3, x="high"),
        bad(4, timestamp=float(targets[0].times[4])),
        bad(5, timestamp=1.5),
        bad(6, y=True),
        bad(7, z=_ABSENT),
        bad(0, user=None),
        bad(1, user=""),
        bad(2, user="not-an-email"),
        bad(3, timestamp=0),
        bad(4, timestamp=YEAR_2200_MS),
        bad(5, timestamp=EPOCH_END_MS),
        bad(6, timestamp=2**63),
        bad(7, x=float("nan")),  # written as the NaN token
        bad(0, y=float("inf")),  # Infinity
        bad(1, z=float("-inf")),  # -Infinity
    ]


# --- step trainer --------------------------------------------------------


def _step(serial: str, instant: int, rng: random.Random) -> dict[str, Any]:
    distance = rng.randint(*DISTANCE_CM)
    return {"sensorReadingTime": instant, "serialNumber": serial, "distanceFromObject": distance}


def _step_trainer_files(
    people: list[Person], first_free_slot: int, rng: random.Random
) -> tuple[dict[str, list[str]], int]:
    steps = []
    for person in people:
        session = [_step(person.serial, instant, rng) for instant in person.times]
        if person.key == EDGE_VALUES:
            session[0]["distanceFromObject"] = INT64_MAX
            session[1]["distanceFromObject"] = 0
        steps += session
    for offset in range(UNKNOWN_SERIALS):
        serial, start = _serial(rng), _slot_start(first_free_slot + offset)
        instants = _session_times(rng, start, UNKNOWN_SERIAL_READINGS)
        steps += [_step(serial, instant, rng) for instant in instants]
    steps.sort(key=lambda step: step["sensorReadingTime"])
    files = _chunk(STEP_TRAINER_FILES, [_dump(step) for step in steps])
    bad = _bad_step_trainer_lines(people, rng)
    _spread(files, bad + list(BLANK_LINES), rng)
    return files, len(bad)


def _bad_step_trainer_lines(people: list[Person], rng: random.Random) -> list[str]:
    """Readings of consenting customers' devices in their sessions, all invalid."""
    targets, bad = _bad_line_maker(people, lambda person, at: _step(person.serial, at, rng))
    return [
        "sensorReadingTime=1655564444103;distanceFromObject=218",  # not JSON
        bad(0)[:50],  # truncated
        f"[{bad(1)}]",
        "218",
        "null",
        bad(2, distanceFromObject=1.5),
        bad(3, distanceFromObject="218"),
        bad(4, sensorReadingTime="abc"),
        bad(5, sensorReadingTime=float(targets[1].times[5])),
        bad(6, serialNumber=True),
        bad(7, serialNumber=_ABSENT),
        bad(0, sensorReadingTime=None),
        bad(1, distanceFromObject=None),
        bad(2, serialNumber=""),
        bad(3, distanceFromObject=-3),
        bad(4, sensorReadingTime=0),
        bad(5, sensorReadingTime=YEAR_2200_MS),
        bad(6, distanceFromObject=2**63),  # outside signed 64-bit
    ]


# --- writing -------------------------------------------------------------


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _chunk(names: tuple[str, ...], lines: list[str]) -> dict[str, list[str]]:
    """Split lines into consecutive, nearly equal parts, one per file name."""
    size = -(-len(lines) // len(names))
    return {name: lines[i * size : (i + 1) * size] for i, name in enumerate(names)}


def _spread(files: dict[str, list[str]], extra: list[str], rng: random.Random) -> None:
    """Insert extra lines round-robin over the files, at seeded positions."""
    names = list(files)
    for index, line in enumerate(extra):
        target = files[names[index % len(names)]]
        target.insert(rng.randrange(len(target) + 1), line)


def _write_dataset(folder: Path, files: dict[str, list[str]], bad_lines: int) -> dict[str, int]:
    written = 0
    for name, lines in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = ("\n".join(lines) + "\n").encode("utf-8")
        with path.open("xb") as handle:  # never over a generated file of the same name
            handle.write(data)
        written += len(data)
    lines = [line for lines in files.values() for line in lines]
    blank = sum(1 for line in lines if not line.strip())
    return {
        "files": len(files),
        "lines": len(lines),
        "records": len(lines) - blank,
        "bad_lines": bad_lines,
        "blank_lines": blank,
        "bytes": written,
    }
