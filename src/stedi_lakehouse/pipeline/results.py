"""What a stage reports: the tables it wrote and, per feed, what happened to the records.

Plain data (no Spark), so a report can be shown, merged and recorded anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stedi_lakehouse.contracts.tables import TableCompaction
    from stedi_lakehouse.lake.tables import TableWrite


@dataclass
class DatasetCounts:
    """What happened to one feed's records in a run: new records read (accepted +
    quarantined), and rows evaluated for the trusted zone (trusted + excluded by reason)."""

    dataset: str
    files: int = 0
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
    skipped: dict[str, str] = field(default_factory=dict)  # landing file not read -> why
    changed: list[str] = field(default_factory=list)  # processed files delivered again
    compactions: list[TableCompaction] = field(default_factory=list)  # after the writes

    def merge(self, other: StageReport) -> StageReport:
        return StageReport(
            [*self.writes, *other.writes],
            {**self.datasets, **other.datasets},
            {**self.skipped, **other.skipped},
            sorted({*self.changed, *other.changed}),
            [*self.compactions, *other.compactions],
        )
