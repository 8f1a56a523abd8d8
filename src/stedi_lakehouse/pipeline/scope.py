"""Which rows of a table a stage recomputes (`Scope`) and which landing files it only adds
(`Added`)."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# Above this many keys a replaceWhere predicate gets slow to plan; the table is rebuilt whole
# instead (the same result).
KEY_LIMIT = 10_000


@dataclass(frozen=True)
class Scope:
    """The rows of a table a stage recomputes and replaces: all of them (`whole`), or those
    whose `column` value is in `keys[column]` for any column (none: nothing to do)."""

    keys: dict[str, frozenset[str]] = field(default_factory=dict)
    whole: bool = False

    @classmethod
    def of(cls, **keys: Iterable[str]) -> "Scope":
        sets = {column: frozenset(values) for column, values in keys.items()}
        if sum(map(len, sets.values())) > KEY_LIMIT:
            return cls(whole=True)
        return cls({column: values for column, values in sets.items() if values})

    @property
    def empty(self) -> bool:
        return not self.whole and not self.keys

    def predicate(self) -> str | None:
        """The SQL predicate selecting the scope's rows (None: the whole table)."""
        if self.whole:
            return None
        if not self.keys:
            return "false"
        return " OR ".join(
            f"{c} IN ({', '.join(map(sql_string, sorted(v)))})" for c, v in self.keys.items()
        )

    def rows(self, df: DataFrame, *, inside: bool = True, **renamed: str) -> DataFrame:
        """The rows of `df` in scope, or (inside=False) the others; `renamed`: scope column ->
        df column where the names differ."""
        if self.whole:
            return df if inside else df.limit(0)
        condition: Column = F.lit(False)
        for column, values in self.keys.items():
            condition = condition | F.col(renamed.get(column, column)).isin(sorted(values))
        return df.filter(condition if inside else ~condition)


WHOLE = Scope(whole=True)


@dataclass(frozen=True)
class Added:
    """Landing files whose rows a stage adds to a table, beside the scope it replaces."""

    accelerometer: list[str] = field(default_factory=list)
    step_trainer: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.accelerometer or self.step_trainer)


def sql_string(value: str) -> str:
    """`value` as a Spark SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
