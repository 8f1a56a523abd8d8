"""Every table of the lake: its zone, its contract (columns and types) and its grain.

The README's table catalogue is generated from `CATALOGUE` (`stedi-lake tables --markdown`).
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from stedi_lakehouse.contracts.landing import (
    AccelerometerReading,
    CustomerRecord,
    StepTrainerReading,
)
from stedi_lakehouse.contracts.types import EpochMillis, FiniteFloat, NonNegativeInt
from stedi_lakehouse.presets import Rules


class Zone(StrEnum):
    LANDING = "landing"
    TRUSTED = "trusted"
    CURATED = "curated"
    QUARANTINE = "quarantine"
    SYSTEM = "system"  # the lake's own bookkeeping: processed files, runs, erasures


class Dataset(StrEnum):
    """The three feeds; each arrives under `<lake root>/landing/<dataset>/`."""

    CUSTOMER = "customer"
    ACCELEROMETER = "accelerometer"
    STEP_TRAINER = "step_trainer"


RECORD_CONTRACTS: dict[Dataset, type[BaseModel]] = {
    Dataset.CUSTOMER: CustomerRecord,
    Dataset.ACCELEROMETER: AccelerometerReading,
    Dataset.STEP_TRAINER: StepTrainerReading,
}


class Lineage(BaseModel):
    """Where a landing row came from (listed after the record's own fields)."""

    source_file: str = Field(
        description="The landing file the record came from, as a path under the lake root."
    )


class CustomerLanding(Lineage, CustomerRecord):
    """One row per valid customer record as delivered, address and serial in lower case and
    composed (the serial stripped; several per email when updated)."""


class AccelerometerLanding(Lineage, AccelerometerReading):
    """One row per valid accelerometer reading as delivered, its address in lower case and
    composed."""


class StepTrainerLanding(Lineage, StepTrainerReading):
    """One row per valid step-trainer reading as delivered, its serial stripped, in lower case
    and composed."""


class Quarantined(BaseModel):
    """One row per record that broke its contract, or per landing file that cannot be read."""

    raw_line: str = Field(
        description="The line as delivered (bytes that are not UTF-8 replaced, cut at 64 KiB); "
        "empty for a file that cannot be read."
    )
    reason: str = Field(description="Every rule the record broke, separated by '; '.")
    source_file: str = Field(description="The landing file it came from, under the lake root.")


class CustomerTrusted(CustomerRecord):
    """One row per customer (latest record per email) who consented to research."""


class AccelerometerTrusted(Lineage, AccelerometerReading):
    """One row per accelerometer reading (user, timestamp, x, y, z) that may be used under the
    rules preset; a reading delivered again is kept once, from its first delivery."""


class StepTrainerTrusted(Lineage, StepTrainerReading):
    """One row per step-trainer reading (serialNumber, sensorReadingTime, distanceFromObject)
    that may be used under the rules preset; a reading delivered again is kept once, from its
    first delivery."""


class CustomerCurated(CustomerRecord):
    """One row per trusted customer with at least one trusted accelerometer reading."""


class MachineLearningCurated(BaseModel):
    """`privacy`: one row per (step-trainer reading, accelerometer reading of the same person at
    the same millisecond). No direct identifier: people appear only as `subject_key`."""

    subject_key: str = Field(
        description="HMAC-SHA256 of the person's email in lower case, composed (hex), keyed."
    )
    reading_time_ms: EpochMillis = Field(description="When both readings were taken, epoch ms.")
    distance_from_object: NonNegativeInt = Field(description="Step-trainer distance reading.")
    x: FiniteFloat = Field(description="Accelerometer x at that moment.")
    y: FiniteFloat = Field(description="Accelerometer y at that moment.")
    z: FiniteFloat = Field(description="Accelerometer z at that moment.")


class MachineLearningCuratedUdacity(AccelerometerReading, StepTrainerReading):
    """`udacity`: one row per (step-trainer reading, accelerometer reading) with
    `sensorReadingTime = timestamp`, whoever took them, as the reference project defines it."""


class ProcessedFile(BaseModel):
    """One row per (landing file, stage) the stage has processed: what incremental runs skip.
    Written after the stage's last table, so a run that dies before it is redone in full."""

    path: str = Field(description="The landing file, as in the tables' `source_file`.")
    dataset: str = Field(description="Its feed: customer, accelerometer or step_trainer.")
    stage: str = Field(description="`trusted` (landing, quarantine, trusted) or `curated`.")
    run_id: str = Field(description="The run that processed it (see `runs`).")
    version: str | None = Field(
        None,
        description="What the file was when processed: `<bytes>:<modified, epoch ms>`, on S3 "
        "its ETag. A file whose version changes is a new delivery of it, processed again.",
    )
    processed_at: datetime | None = Field(
        None,
        description="When the run that processed it started (UTC): the order of deliveries. "
        "Of two copies of a reading, the one delivered first is kept.",
    )


class TableRun(BaseModel):
    table: str
    rows_written: int
    rows_removed: int
    version: int


class TableCompaction(BaseModel):
    table: str
    files_removed: int
    files_added: int
    version: int


class DatasetRun(BaseModel):
    dataset: str
    files: int
    read: int
    accepted: int
    quarantined: int
    trusted: int
    excluded: dict[str, int]


class RunRecord(BaseModel):
    """One row per run that had work to do (a run that finds nothing new writes nothing):
    what it read, quarantined, excluded, wrote and compacted, the Delta versions, and how it
    ended."""

    run_id: str = Field(description="Random id of the run.")
    command: str = Field(description="What ran: trusted, curated or all.")
    rules: str = Field(description="The rules preset.")
    started_at: datetime = Field(description="Start (UTC).")
    ended_at: datetime = Field(description="End (UTC).")
    outcome: str = Field(description="`succeeded` or `failed`.")
    error: str | None = Field(None, description="The failure, for a failed run.")
    datasets: list[DatasetRun] = Field(
        description="Per feed: new files, records read, accepted, quarantined; rows evaluated"
        " for trusted, by outcome (trusted, excluded by reason)."
    )
    writes: list[TableRun] = Field(
        description="Per table written: rows written and removed, Delta version."
    )
    compactions: list[TableCompaction] = Field(
        default_factory=list,
        description="Per table compacted (OPTIMIZE, after the writes): small files replaced, "
        "files written, Delta version.",
    )


class Erasure(BaseModel):
    """One row per erasure (`stedi-lake forget`, or a run erasing the readings of a device an
    erased person claims later): when, and how much it removed where. Never who: no e-mail,
    serial number or pseudonym is recorded."""

    erased_at: datetime = Field(description="When (UTC).")
    rows_removed: dict[str, int] = Field(description="Rows removed, per table.")
    landing_files_rewritten: int = Field(description="Raw landing files rewritten.")


class Suppression(BaseModel):
    """One row per identifier of an erased person (their e-mail address, a device only they
    claimed), as a keyed hash: later deliveries naming it are not ingested. A device they
    claimed with others is listed too: it stays ambiguous, its readings nobody's."""

    identifier_hash: str = Field(description="Keyed hash of the identifier (never the value).")
    kind: str = Field(description="`email`, `serial`, or `shared serial` (kept ambiguous).")
    erased_at: datetime = Field(description="When the erasure started (UTC).")


class PendingErasure(BaseModel):
    """An erasure under way (`<lake root>/_erasures/<person>.json`): what a rerun of `forget`
    needs to finish it, as keyed hashes and pseudonyms only, and the counts so far."""

    person: str = Field(description="Keyed hash of the e-mail address.")
    devices: list[str] = Field(description="Keyed hashes of the devices only they claimed.")
    shared_devices: list[str] = Field(
        default_factory=list, description="Keyed hashes of the devices they claimed with others."
    )
    subject_keys: list[str] = Field(description="Their pseudonyms in machine_learning_curated.")
    key_fingerprint: str = Field(description="Fingerprint of the key the hashes were made with.")
    started_at: datetime = Field(description="When the erasure started (UTC).")
    rows_removed: dict[str, int] = Field(default_factory=dict)
    landing_files_rewritten: int = 0
    runs_redacted: int = 0


class QualityOutcome(BaseModel):
    """One row per expectation checked by a run (`contracts/expectations.py`): what was
    observed against its threshold, at its level, and whether it passed."""

    run_id: str = Field(description="The run that checked it (see `runs`).")
    checked_at: datetime = Field(description="When (UTC).")
    checked: str = Field(description="before trusted, before curated or after curated.")
    table: str = Field(description="The table the expectation is about.")
    expectation: str = Field(description="What is expected, in words.")
    level: str = Field(description="`warn`, `drop` or `fail`.")
    observed: float = Field(description="Rows (or share of lines) that break it.")
    threshold: float | None = Field(None, description="Passed: observed <= threshold.")
    passed: bool = Field(description="False: a warning, or the failure that stopped the run.")


class Table(StrEnum):
    """Every table of the lake, by name: code names tables only through this."""

    CUSTOMER_LANDING = "customer_landing"
    ACCELEROMETER_LANDING = "accelerometer_landing"
    STEP_TRAINER_LANDING = "step_trainer_landing"
    CUSTOMER_TRUSTED = "customer_trusted"
    ACCELEROMETER_TRUSTED = "accelerometer_trusted"
    STEP_TRAINER_TRUSTED = "step_trainer_trusted"
    CUSTOMER_CURATED = "customer_curated"
    MACHINE_LEARNING_CURATED = "machine_learning_curated"
    CUSTOMER_QUARANTINE = "customer_quarantine"
    ACCELEROMETER_QUARANTINE = "accelerometer_quarantine"
    STEP_TRAINER_QUARANTINE = "step_trainer_quarantine"
    PROCESSED_FILES = "processed_files"
    RUNS = "runs"
    ERASURES = "erasures"
    SUPPRESSIONS = "suppressions"
    QUALITY = "quality"


@dataclass(frozen=True)
class TableSpec:
    name: Table
    zone: Zone
    contract: type[BaseModel]
    udacity_contract: type[BaseModel] | None = None
    # The columns Delta keeps per-file min/max statistics for (data skipping): those the
    # incremental runs select rows by, in every contract of the table. None: Delta's default
    # for the lake (the first two columns: a table whose contract differs by rules).
    statistics: tuple[str, ...] | None = None
    # The columns that identify a row: a landing row equal on them to an earlier one is a
    # `duplicate` (a file sent twice, overlapping files). None: the table has no such key. The
    # second is the reading's time, a statistics column: runs narrow the search for copies by it.
    natural_key: tuple[str, ...] | None = None

    def contract_for(self, rules: Rules | None) -> type[BaseModel]:
        if rules is Rules.UDACITY and self.udacity_contract is not None:
            return self.udacity_contract
        return self.contract

    @property
    def grain(self) -> str:
        return " ".join((self.contract.__doc__ or "").split())


def _spec(name: Table, zone: Zone, contract: type[BaseModel], **kw) -> tuple[Table, TableSpec]:
    return name, TableSpec(name, zone, contract, **kw)


# Statistics columns: the time of a reading and the landing file (new files' rows are found,
# and replaced on a re-run, by `source_file`: its statistics let Delta skip every file written
# from other landing files). The sensor tables keep none on the person or device (`user`,
# `serialNumber`), although runs look rows up by them: every file holds readings of nearly
# everybody, so their min/max skip no file, and keeping them costs a string copy per row.
# The customer tables (one or two files) keep theirs.
LINEAGE = ("source_file",)
CUSTOMER_KEYS = ("email", "serialNumber")
ACCEL_STATISTICS = ("timestamp", *LINEAGE)
STEP_STATISTICS = ("sensorReadingTime", *LINEAGE)

CATALOGUE: dict[Table, TableSpec] = dict(
    [
        _spec(
            Table.CUSTOMER_LANDING,
            Zone.LANDING,
            CustomerLanding,
            statistics=(*CUSTOMER_KEYS, *LINEAGE),
        ),
        _spec(
            Table.ACCELEROMETER_LANDING,
            Zone.LANDING,
            AccelerometerLanding,
            statistics=ACCEL_STATISTICS,
        ),
        _spec(
            Table.STEP_TRAINER_LANDING, Zone.LANDING, StepTrainerLanding, statistics=STEP_STATISTICS
        ),
        _spec(Table.CUSTOMER_TRUSTED, Zone.TRUSTED, CustomerTrusted, statistics=CUSTOMER_KEYS),
        _spec(
            Table.ACCELEROMETER_TRUSTED,
            Zone.TRUSTED,
            AccelerometerTrusted,
            statistics=ACCEL_STATISTICS,
            natural_key=("user", "timestamp", "x", "y", "z"),
        ),
        _spec(
            Table.STEP_TRAINER_TRUSTED,
            Zone.TRUSTED,
            StepTrainerTrusted,
            statistics=STEP_STATISTICS,
            natural_key=("serialNumber", "sensorReadingTime", "distanceFromObject"),
        ),
        _spec(Table.CUSTOMER_CURATED, Zone.CURATED, CustomerCurated, statistics=CUSTOMER_KEYS),
        _spec(
            Table.MACHINE_LEARNING_CURATED,
            Zone.CURATED,
            MachineLearningCurated,
            udacity_contract=MachineLearningCuratedUdacity,
        ),
        _spec(Table.CUSTOMER_QUARANTINE, Zone.QUARANTINE, Quarantined, statistics=LINEAGE),
        _spec(Table.ACCELEROMETER_QUARANTINE, Zone.QUARANTINE, Quarantined, statistics=LINEAGE),
        _spec(Table.STEP_TRAINER_QUARANTINE, Zone.QUARANTINE, Quarantined, statistics=LINEAGE),
        _spec(Table.PROCESSED_FILES, Zone.SYSTEM, ProcessedFile),
        _spec(Table.RUNS, Zone.SYSTEM, RunRecord),
        _spec(Table.ERASURES, Zone.SYSTEM, Erasure),
        _spec(Table.SUPPRESSIONS, Zone.SYSTEM, Suppression),
        _spec(Table.QUALITY, Zone.SYSTEM, QualityOutcome),
    ]
)


def tables_in(zone: Zone) -> tuple[Table, ...]:
    """The tables of `zone`, in catalogue order."""
    return tuple(name for name, spec in CATALOGUE.items() if spec.zone is zone)


def landing_table(dataset: Dataset) -> Table:
    return Table(f"{dataset}_landing")


def quarantine_table(dataset: Dataset) -> Table:
    return Table(f"{dataset}_quarantine")
