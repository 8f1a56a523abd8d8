"""The lookups of one run in the landing and trusted tables: whose status new files may
change. Each is made once per run; landing tables do not change between a run's stages, so a
lookup the trusted stage made is not made again by the curated stage."""

from collections.abc import Callable, Hashable, Iterable

from pyspark.sql import functions as F

from stedi_lakehouse.contracts.tables import Dataset, Table, landing_table
from stedi_lakehouse.lake.tables import Lake, distinct_values


class Lookups:
    """The lookups of one run, each made once."""

    def __init__(self, lake: Lake):
        self.lake = lake
        self._looked_up: dict[Hashable, set[str]] = {}

    def new_rows(self, dataset: Dataset, files: Iterable[str], column: str) -> set[str]:
        """Distinct `column` values of the landing rows that came from `files`."""
        return self.landing_values(dataset, column, where="source_file", isin=files)

    def serials_of(self, emails: set[str]) -> set[str]:
        """Every serial number any record of these customers ever claimed."""
        return self.landing_values(Dataset.CUSTOMER, "serialNumber", where="email", isin=emails)

    def claimants_of(self, serials: set[str]) -> set[str]:
        """Every customer any of whose records claims one of these serial numbers."""
        return self.landing_values(Dataset.CUSTOMER, "email", where="serialNumber", isin=serials)

    def landing_values(
        self, dataset: Dataset, column: str, *, where: str, isin: Iterable[str]
    ) -> set[str]:
        """Distinct `column` values of <dataset>_landing rows whose `where` is in `isin`."""
        values = tuple(sorted(isin))
        if not values:
            return set()
        table = landing_table(dataset)

        def look_up() -> set[str]:
            rows = self.lake.read(table).filter(F.col(where).isin(list(values)))
            return distinct_values(rows, column)

        key = (dataset, column, where, values)
        return self._once(key, f"{column} by {where} in {table}", look_up)

    def first_readers(self, users: set[str], files: list[str]) -> set[str]:
        """Those of `users` whose trusted accelerometer readings all come from the landing
        files `files` (read once `accelerometer_trusted` holds their rows). A customer is curated
        once they have a trusted reading, so a customer whose own record has not changed
        becomes curated by `files` only if these are their first trusted readings: for everybody
        else (curated before, or readings that are not trusted: unknown users, no consent) new
        readings add rows but change no status."""
        if not users:
            return set()

        def look_up() -> set[str]:
            from_files = F.col("source_file").isin(sorted(files)).cast("int")
            readings = self.lake.read(Table.ACCELEROMETER_TRUSTED).filter(
                F.col("user").isin(sorted(users))
            )
            only_files = readings.groupBy("user").agg(F.min(from_files).alias("only"))
            return distinct_values(only_files.filter(F.col("only") == 1), "user")

        key = ("first readers", tuple(sorted(users)), tuple(sorted(files)))
        return self._once(key, "first readers in accelerometer_trusted", look_up)

    def _once(self, key: Hashable, what: str, look_up: Callable[[], set[str]]) -> set[str]:
        """A lookup's result, made once per run (its jobs named `look up <what>`)."""
        if key not in self._looked_up:
            with self.lake.described(f"look up {what}"):
                self._looked_up[key] = look_up()
        return self._looked_up[key]
