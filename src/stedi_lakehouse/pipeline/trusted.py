"""The trusted stage: new landing files -> landing and quarantine tables -> trusted tables,
recomputing only the rows the new files can change, each reading kept once."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.expectations import When
from stedi_lakehouse.contracts.tables import (
    CATALOGUE,
    Dataset,
    Table,
    Zone,
    landing_table,
    tables_in,
)
from stedi_lakehouse.erasure import suppression as sup
from stedi_lakehouse.parallel import together
from stedi_lakehouse.pipeline.ingest import (
    devices_of_the_erased,
    identifiers_in_lower_case,
    ingest,
    read_batch,
)
from stedi_lakehouse.pipeline.results import DatasetCounts, StageReport
from stedi_lakehouse.pipeline.scope import WHOLE, Scope
from stedi_lakehouse.transforms import curated as cur
from stedi_lakehouse.transforms import trusted as tr

if TYPE_CHECKING:
    from stedi_lakehouse.pipeline.context import Stages

TRUSTED_TABLES = tables_in(Zone.TRUSTED)


def trusted(stages: Stages) -> StageReport:
    """New landing files -> landing and quarantine tables -> trusted tables. Independent
    writes run side by side: on few cores a small job or a Delta commit leaves them idle."""
    report = StageReport()
    listed = _listed(stages, report)
    done = stages.bookmarks.versions("trusted")
    new = {
        d: [f for f, v in files.items() if not done.get(f, set()) & {v, None}]
        for d, files in listed.items()
    }
    report.changed = sorted(f for files in new.values() for f in files if f in done)
    if report.changed:
        stages.progress(f"{len(report.changed):,} file(s) changed since processed: rebuilding")
    # a file delivered again may drop records: whose, only its earlier content could say
    whole = not stages.built_with_rules(TRUSTED_TABLES) or bool(report.changed)
    if not whole and not any(new.values()):
        stages.progress("trusted: no new landing files")
        return report
    stages.check_key(stages.pseudonym_key)
    identifiers_in_lower_case(stages)
    report.datasets.update({d: DatasetCounts(d) for d in Dataset})
    batches = [b for b in together(*[partial(read_batch, stages, d, new[d]) for d in Dataset]) if b]
    try:
        landing = {b.dataset: b.new_counts for b in batches if new[b.dataset]}
        stages.expect(When.BEFORE_TRUSTED, landing=landing)
        devices_of_the_erased(stages, batches)
    except BaseException:
        for batch in batches:
            batch.release()
        raise
    with ThreadPoolExecutor(len(Dataset), thread_name_prefix="quarantine") as background:
        quarantines = together(*[partial(ingest, stages, b, report, background) for b in batches])
        _classify(stages, report, new, whole)
        for future in quarantines:
            if future is not None:
                future.result()
    for dataset, (files, erased) in stages.scrub.items():  # the raw lines too, once read
        listed[dataset].update(sup.scrub_landing(stages.lake, files, erased))
    processed: dict[Dataset, dict[str, set[str | None]]] = {
        d: {f: {listed[d][f]} for f in new[d]} for d in Dataset
    }
    stages.bookmarks.mark("trusted", processed, report)
    return report


def _listed(stages: Stages, report: StageReport) -> dict[Dataset, dict[str, str]]:
    """Per dataset, the landing files this run may read -> their version. The others are
    told in `report.skipped`: a name that is not a landing file's, or (settle_seconds) a
    file modified so recently that it may still be being written."""
    listed: dict[Dataset, dict[str, str]] = {}
    settled_before = (time.time() - stages.settle_seconds) * 1000
    for d in Dataset:
        files, skipped = stages.lake.landing.listing(d)
        report.skipped.update(skipped)
        listed[d] = {}
        for path, file in files.items():
            if file.modified_ms > settled_before:
                report.skipped[path] = (
                    f"modified in the last {stages.settle_seconds:g} s: read once it settles"
                )
            else:
                listed[d][path] = file.version
        stages.settled[d] = list(listed[d])
    return listed


def _classify(
    stages: Stages, report: StageReport, new: dict[Dataset, list[str]], whole: bool
) -> None:
    """The trusted tables, for the landing files `new` (all of them if `whole`)."""
    if whole:
        customer_scope = accelerometer_scope = WHOLE

        def step_scope() -> Scope:
            return WHOLE
    else:
        lookups = stages.lookups
        changed = lookups.new_rows(Dataset.CUSTOMER, new[Dataset.CUSTOMER], "email")
        readers = lookups.new_rows(Dataset.ACCELEROMETER, new[Dataset.ACCELEROMETER], "user")
        customer_scope = Scope.of(email=changed)
        accelerometer_scope = Scope.of(user=changed, source_file=new[Dataset.ACCELEROMETER])

        def step_scope() -> Scope:
            """A device's readings change status when any claimant changes or becomes
            curated (known once accelerometer_trusted has the new readings), or when an
            erased person is found to have claimed it too."""
            first = lookups.first_readers(readers, new[Dataset.ACCELEROMETER])
            return Scope.of(
                serialNumber=lookups.serials_of(changed | first) | stages.kept_ambiguous(),
                source_file=new[Dataset.STEP_TRAINER],
            )

    _trusted_tables(stages, report, customer_scope, accelerometer_scope, step_scope)


def _trusted_tables(
    stages: Stages,
    report: StageReport,
    customer_scope: Scope,
    accel_scope: Scope,
    step_scope: Callable[[], Scope],
) -> None:
    lake, rules, counts = stages.lake, stages.rules, report.datasets
    customer_landing = lake.read(landing_table(Dataset.CUSTOMER))
    customers = tr.classify_customers(customer_landing)
    persons = tr.people(customers).persist()
    accel_landing = lake.read(landing_table(Dataset.ACCELEROMETER))
    readings = _once(
        stages,
        tr.classify_accelerometer(accel_scope.rows(accel_landing), persons=persons, rules=rules),
        table=Table.ACCELEROMETER_TRUSTED,
        landing=accel_landing,
        scope=accel_scope,
    )
    together(
        partial(
            stages.write_usable,
            customer_scope.rows(customers),
            usable=tr.customer_trusted,
            table=Table.CUSTOMER_TRUSTED,
            counts=counts[Dataset.CUSTOMER],
            report=report,
            scope=customer_scope,
        ),
        partial(
            stages.write_usable,
            readings,
            usable=tr.accelerometer_trusted,
            table=Table.ACCELEROMETER_TRUSTED,
            counts=counts[Dataset.ACCELEROMETER],
            report=report,
            scope=accel_scope,
        ),
    )
    curated = cur.customer_curated(
        lake.read(Table.CUSTOMER_TRUSTED), trusted_readings=lake.read(Table.ACCELEROMETER_TRUSTED)
    )
    steps_in = step_scope()
    step_landing = lake.read(landing_table(Dataset.STEP_TRAINER))
    steps = _once(
        stages,
        tr.classify_step_trainer(
            steps_in.rows(step_landing),
            device_owners=tr.devices(
                persons,
                curated=curated,
                claims=customer_landing.select("email", "serialNumber"),
                shared=stages.kept_ambiguous(),
            ),
            rules=rules,
        ),
        table=Table.STEP_TRAINER_TRUSTED,
        landing=step_landing,
        scope=steps_in,
    )
    stages.write_usable(
        steps,
        usable=tr.step_trainer_trusted,
        table=Table.STEP_TRAINER_TRUSTED,
        counts=counts[Dataset.STEP_TRAINER],
        report=report,
        scope=steps_in,
    )
    persons.unpersist()


def _once(
    stages: Stages, classified: DataFrame, *, table: Table, landing: DataFrame, scope: Scope
) -> DataFrame:
    """`classified` (the landing rows of `scope`, classified) with each reading delivered
    before (by `table`'s natural key) marked `duplicate`: the copies outside `scope` were
    classified by earlier runs."""
    key = CATALOGUE[table].natural_key
    assert key is not None, f"{table} has no natural key"
    earlier = None
    if not scope.whole:
        earlier = _within_moments(scope.rows(landing, inside=False), scope.rows(landing), key[1])
    return tr.exclude_duplicates(
        classified,
        key=key,
        earlier=earlier,
        delivery_order=stages.bookmarks.delivery_order(),
    )


def _within_moments(earlier: DataFrame, new: DataFrame, moment: str) -> DataFrame:
    """The rows of `earlier` whose reading time (`moment`, in the natural key) lies within the
    range of `new`'s: only they can be copies of a new reading. A literal range lets Delta skip,
    by their statistics, the landing files outside it instead of reading every earlier row."""
    low, high = new.agg(F.min(moment), F.max(moment)).first() or (None, None)
    if low is None or high is None:  # no new reading has a time: none equals an earlier one
        return earlier.limit(0)
    return earlier.filter(F.col(moment).between(low, high))
