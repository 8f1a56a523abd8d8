"""The stages: landing -> trusted -> curated. Each reads, transforms (pure functions), writes.

A stage returns what it wrote and what it counted, so every run can show that nothing was lost:
per dataset, records read = accepted + quarantined, and accepted = trusted + excluded (by reason).
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation

from stedi_lakehouse.contracts.tables import (
    RECORD_CONTRACTS,
    Dataset,
    landing_table,
    quarantine_table,
)
from stedi_lakehouse.errors import ConfigError
from stedi_lakehouse.io import Lake, TableWrite
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.transforms import curated as cur
from stedi_lakehouse.transforms import trusted as tr
from stedi_lakehouse.transforms import validation as val

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class DatasetCounts:
    """What happened to one feed's records in a run."""

    dataset: str
    accepted: int = 0
    quarantined: int = 0
    trusted: int = 0
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def read(self) -> int:
        return self.accepted + self.quarantined


@dataclass
class StageReport:
    writes: list[TableWrite] = field(default_factory=list)
    datasets: dict[str, DatasetCounts] = field(default_factory=dict)

    def merge(self, other: "StageReport") -> "StageReport":
        return StageReport([*self.writes, *other.writes], {**self.datasets, **other.datasets})


def _together(*tasks: Callable[[], object]) -> None:
    """Run independent Spark work from several threads (Spark schedules their jobs side by
    side); the first failure is raised."""
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="stage") as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()


class Stages:
    """The stages of one lake under one rules preset."""

    def __init__(self, lake: Lake, *, rules: Rules, progress: Progress = _quiet):
        self.lake, self.rules, self.progress = lake, rules, progress

    def _write(self, df: DataFrame, table: str, report: StageReport) -> TableWrite:
        self.progress(f"writing {table}")
        started = time.monotonic()
        written = replace(
            self.lake.write(df, table, rules=self.rules), seconds=time.monotonic() - started
        )
        report.writes.append(written)
        self.progress(f"wrote {table}: {written.rows:,} rows (version {written.version})")
        return written

    def _write_usable(
        self, classified: DataFrame, usable_rows, table: str, counts: DatasetCounts, report
    ) -> None:
        """Write the usable rows of a classified frame; count every reason in the same job."""
        observation = Observation(f"{table}-exclusions")
        self._write(
            usable_rows(classified.observe(observation, *tr.exclusion_metrics())), table, report
        )
        metrics = observation.get
        counts.trusted = metrics.pop(tr.USABLE)
        counts.excluded = {reason: n for reason, n in metrics.items() if n}

    def ingest(self, dataset: Dataset, report: StageReport) -> None:
        """Validate landing/<dataset>/ into <dataset>_landing and <dataset>_quarantine."""
        self.progress(f"reading landing/{dataset}")
        contract = RECORD_CONTRACTS[dataset]
        lines = self.lake.read_landing(dataset)
        validated = val.without_good_lines(val.validate(lines, contract=contract)).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        try:
            good = self._write(
                val.accepted(validated, contract=contract), landing_table(dataset), report
            )
            bad = self._write(val.quarantined(validated), quarantine_table(dataset), report)
        finally:
            validated.unpersist()
        report.datasets[dataset] = DatasetCounts(dataset, accepted=good.rows, quarantined=bad.rows)

    def trusted(self) -> StageReport:
        """landing files -> landing and quarantine tables -> trusted tables. Independent writes
        run side by side: on few cores a small job or a Delta commit leaves them idle."""
        report = StageReport()
        _together(*[partial(self.ingest, dataset, report) for dataset in Dataset])
        counts = report.datasets

        customers = tr.classify_customers(self.lake.read(landing_table(Dataset.CUSTOMER)))
        persons = tr.people(customers).persist()
        readings = tr.classify_accelerometer(
            self.lake.read(landing_table(Dataset.ACCELEROMETER)), persons=persons, rules=self.rules
        )
        _together(
            partial(
                self._write_usable,
                customers,
                tr.customer_trusted,
                "customer_trusted",
                counts[Dataset.CUSTOMER],
                report,
            ),
            partial(
                self._write_usable,
                readings,
                tr.accelerometer_trusted,
                "accelerometer_trusted",
                counts[Dataset.ACCELEROMETER],
                report,
            ),
        )

        curated = tr.customer_curated(
            self.lake.read("customer_trusted"),
            trusted_readings=self.lake.read("accelerometer_trusted"),
        )
        steps = tr.classify_step_trainer(
            self.lake.read(landing_table(Dataset.STEP_TRAINER)),
            device_owners=tr.devices(persons, curated=curated),
            rules=self.rules,
        )
        self._write_usable(
            steps,
            tr.step_trainer_trusted,
            "step_trainer_trusted",
            counts[Dataset.STEP_TRAINER],
            report,
        )
        persons.unpersist()
        self.lake.registered()
        return report

    def curated(self, *, pseudonym_key: bytes | None) -> StageReport:
        """trusted tables -> customer_curated and machine_learning_curated."""
        report = StageReport()
        customers = self.lake.read("customer_trusted", rules=self.rules)
        readings = self.lake.read("accelerometer_trusted", rules=self.rules)
        steps = self.lake.read("step_trainer_trusted", rules=self.rules)
        self._write(
            tr.customer_curated(customers, trusted_readings=readings), "customer_curated", report
        )
        if self.rules is Rules.UDACITY:
            pairs = cur.pair_same_time(steps, accelerometer_readings=readings)
        else:
            if not pseudonym_key:
                raise ConfigError("no pseudonym key: set STEDI_PSEUDONYM_KEY (see README)")
            pairs = cur.pair_same_person(
                steps,
                accelerometer_readings=readings,
                curated_customers=self.lake.read("customer_curated"),
                pseudonym_key=pseudonym_key,
            )
        self._write(pairs, "machine_learning_curated", report)
        self.lake.registered()
        return report
