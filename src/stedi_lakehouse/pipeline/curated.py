"""The curated stage: trusted tables -> customer_curated and machine_learning_curated, for the
landing files the trusted stage has processed since, replacing only the rows they can change."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.expectations import When
from stedi_lakehouse.contracts.tables import Dataset, Table, Zone, tables_in
from stedi_lakehouse.errors import ConfigError, RulesMismatchError
from stedi_lakehouse.keys import FINGERPRINT_PROPERTY, fingerprint, fingerprint_record
from stedi_lakehouse.parallel import together
from stedi_lakehouse.pipeline.bookmarks import ADDS_KEY
from stedi_lakehouse.pipeline.results import StageReport
from stedi_lakehouse.pipeline.scope import WHOLE, Added, Scope
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.transforms import curated as cur
from stedi_lakehouse.transforms.pseudonym import subject_keys

if TYPE_CHECKING:
    from stedi_lakehouse.pipeline.context import Stages

CURATED_TABLES = tables_in(Zone.CURATED)
ML = Table.MACHINE_LEARNING_CURATED


@dataclass(frozen=True)
class _Plan:
    """What the stage recomputes: the customers whose curated status may change (`people`),
    the pairs it replaces (`pairs`, or by `subjects` under privacy) and the files it adds."""

    people: Scope = WHOLE
    pairs: Scope = field(default_factory=Scope)
    subjects: frozenset[str] = frozenset()
    added: Added = field(default_factory=Added)


def curated(stages: Stages, *, pseudonym_key: bytes | None) -> StageReport:
    """Trusted tables -> customer_curated and machine_learning_curated, for the landing
    files the trusted stage has processed since."""
    lake, rules = stages.lake, stages.rules
    report = StageReport()
    customers = lake.read(Table.CUSTOMER_TRUSTED, rules=rules)
    readings = lake.read(Table.ACCELEROMETER_TRUSTED, rules=rules)
    steps = lake.read(Table.STEP_TRAINER_TRUSTED, rules=rules)
    if not all(stages.lower_case(t) for t in tables_in(Zone.TRUSTED)):
        raise RulesMismatchError(
            "the trusted tables were made before 0.3, with identifiers as delivered: "
            f"run `stedi-lake promote trusted --rules {rules}` first"
        )
    if rules is Rules.PRIVACY and not pseudonym_key:
        raise ConfigError("no pseudonym key: set STEDI_PSEUDONYM_KEY (see README)")
    done, versions = stages.bookmarks.versions("curated"), stages.bookmarks.versions("trusted")
    pending: dict[Dataset, list[str]] = {d: [] for d in Dataset}
    for path, dataset in sorted(stages.bookmarks.processed("trusted").items()):
        if not versions[path] <= done.get(path, set()) and None not in done.get(path, ()):
            pending[Dataset(dataset)].append(path)
    changed = any(path in done for paths in pending.values() for path in paths)
    whole = not stages.built_with_rules(CURATED_TABLES) or changed
    if not whole and not any(pending.values()):
        stages.progress("curated: nothing new since the last run")
        return report
    stages.check_key(pseudonym_key)
    stages.expect(When.BEFORE_CURATED)

    plan = _Plan(pairs=WHOLE) if whole else _plan(stages, pending)
    people_rows = cur.customer_curated(
        plan.people.rows(customers), trusted_readings=plan.people.rows(readings, email="user")
    )
    write_people = partial(
        stages.write, people_rows, Table.CUSTOMER_CURATED, report=report, scope=plan.people
    )
    if whole:  # the table will be these rows: the pairs need not wait for it
        curated_customers = people_rows
    else:
        if not plan.people.empty:  # else no customer's status can change
            write_people()
        curated_customers = lake.read(Table.CUSTOMER_CURATED)
    if rules is Rules.UDACITY:
        pairs, scope = _pairs_same_time(steps, readings, plan.pairs)
    else:
        assert pseudonym_key is not None  # refused above under privacy
        pairs, scope = _pairs_same_person(
            steps,
            readings,
            curated_customers,
            set(plan.subjects),
            whole=whole,
            pseudonym_key=pseudonym_key,
            added=plan.added,
        )
    # the key's fingerprint is in the pairs' commit: a process stopped before it is set as
    # the table's property leaves it recorded all the same
    keyed = fingerprint_record(pseudonym_key) if rules is Rules.PRIVACY and pseudonym_key else None
    write_pairs = partial(
        stages.write, pairs, ML, report=report, scope=scope, adds=bool(plan.added), recorded=keyed
    )
    if whole:
        together(write_people, write_pairs)
    elif not scope.empty or plan.added:
        write_pairs()
    if rules is Rules.PRIVACY and pseudonym_key:
        _record_key(stages, ML, pseudonym_key)
    processed = {d: {p: versions[p] for p in paths} for d, paths in pending.items()}
    # the curated tables' own checks come after their commits and can only warn: they need
    # not wait for the bookmark
    together(
        partial(stages.bookmarks.mark, "curated", processed, report),
        partial(stages.expect, When.AFTER_CURATED, pseudonym_key=pseudonym_key),
    )
    return report


def _plan(stages: Stages, pending: dict[Dataset, list[str]]) -> _Plan:
    """The rows the `pending` files can change: the customers whose status a newer record or
    first readings may change, and the pairs of every person and device they touch."""
    lookups = stages.lookups
    changed = lookups.new_rows(Dataset.CUSTOMER, pending[Dataset.CUSTOMER], "email")
    readers = lookups.new_rows(Dataset.ACCELEROMETER, pending[Dataset.ACCELEROMETER], "user")
    people = changed | lookups.first_readers(readers, pending[Dataset.ACCELEROMETER])
    people_scope = Scope.of(email=people)
    if stages.rules is Rules.PRIVACY and _may_add_to(stages, ML, "curated"):
        # the pairs of people and devices whose status may change are replaced; the pairs
        # the new readings make for everybody else are added
        return _Plan(
            people=people_scope,
            subjects=frozenset(
                people | lookups.claimants_of(lookups.serials_of(people) | stages.kept_ambiguous())
            ),
            added=Added(pending[Dataset.ACCELEROMETER], pending[Dataset.STEP_TRAINER]),
        )
    # every pair of anybody the new files touch is replaced
    people = changed | readers
    devices = lookups.new_rows(Dataset.STEP_TRAINER, pending[Dataset.STEP_TRAINER], "serialNumber")
    devices |= lookups.serials_of(people)
    return _Plan(
        people=people_scope,
        pairs=Scope.of(user=people, serialNumber=devices),
        subjects=frozenset(people | lookups.claimants_of(devices)),
    )


def _may_add_to(stages: Stages, table: str, stage: str) -> bool:
    """Whether this run may add rows to `table` for its new files, rather than replace
    every row they touch. Not when the table's last write added rows in a run whose stage
    did not finish (no bookmark of that run): the rows it added must not be added twice,
    so this run replaces them."""
    if stages.lake.table_metadata(table).get(ADDS_KEY) != "true":
        return True
    return stages.bookmarks.written_by_finished_run(table, stage)


def _record_key(stages: Stages, table: str, key: bytes) -> None:
    """The table records the fingerprint of the key its subject keys were made with."""
    if stages.lake.table_property(table, FINGERPRINT_PROPERTY) != fingerprint(key):
        stages.lake.set_table_property(table, FINGERPRINT_PROPERTY, fingerprint(key))


def _pairs_same_time(
    steps: DataFrame, readings: DataFrame, scope: Scope
) -> tuple[DataFrame, Scope]:
    """udacity: a pair changes when its reading's user or its device is affected."""
    if scope.whole:
        return cur.pair_same_time(steps, accelerometer_readings=readings), scope
    users = Scope.of(user=scope.keys.get("user", ()))
    devices = Scope.of(serialNumber=scope.keys.get("serialNumber", ()))
    # the pairs of affected users, and the others' pairs with affected devices: disjoint
    of_users = cur.pair_same_time(steps, accelerometer_readings=users.rows(readings))
    others = users.rows(readings, inside=False)
    of_devices = cur.pair_same_time(devices.rows(steps), accelerometer_readings=others)
    return of_users.unionByName(of_devices), scope


def _pairs_same_person(
    steps: DataFrame,
    readings: DataFrame,
    curated_customers: DataFrame,
    subjects: set[str],
    *,
    whole: bool,
    pseudonym_key: bytes,
    added: Added,
) -> tuple[DataFrame, Scope]:
    """privacy: the pairs of the affected people, replaced by their subject keys, and the
    pairs the `added` files' readings make for everybody else."""
    pair = partial(cur.pair_same_person, pseudonym_key=pseudonym_key)
    people = Scope.of(email=subjects)
    if whole or people.whole:
        return pair(
            steps, accelerometer_readings=readings, curated_customers=curated_customers
        ), WHOLE
    keys = subject_keys(subjects, key=pseudonym_key)
    pairs = pair(
        steps,
        accelerometer_readings=people.rows(readings, email="user"),
        curated_customers=people.rows(curated_customers),
    )
    others = people.rows(curated_customers, inside=False)
    # plain filters, not scopes: a scope of too many files is "whole", and adding every pair
    # again would duplicate them
    new_step = F.col("source_file").isin(added.step_trainer)
    new_reading = F.col("source_file").isin(added.accelerometer)
    if added.step_trainer:  # new steps with any reading
        pairs = pairs.unionByName(
            pair(steps.filter(new_step), accelerometer_readings=readings, curated_customers=others)
        )
    if added.accelerometer:  # earlier steps with new readings
        pairs = pairs.unionByName(
            pair(
                steps.filter(~new_step),
                accelerometer_readings=readings.filter(new_reading),
                curated_customers=others,
            )
        )
    return pairs, Scope.of(subject_key=keys)
