"""Turn a Pydantic contract into what Spark needs: a schema and per-field rules as Columns.

The contract is the single source of truth: the JSON reader's schema, the validation rules and
the output columns of every table all come from here, so they cannot drift apart.
"""

import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_lakehouse.contracts.types import EMAIL_PATTERN, SERIAL_PATTERN, WHITE_SPACE, composed

_SPARK_TYPES: dict[type, T.DataType] = {
    str: T.StringType(),
    int: T.LongType(),
    float: T.DoubleType(),
    bool: T.BooleanType(),
    datetime: T.TimestampType(),
}
_TYPE_WORDS: dict[T.DataType, str] = {
    T.StringType(): "a string",
    T.LongType(): "an integer",
    T.DoubleType(): "a number",
}
_PATTERN_WORDS = {
    EMAIL_PATTERN: "an e-mail address",
    SERIAL_PATTERN: "free of control and invisible characters",
}


def _unwrap(annotation: Any) -> tuple[type, list[Any]]:
    """The Python type under Optional/Annotated, and the constraints found on the way down
    (`EpochMillis | None` keeps its bounds inside the union)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extras = get_args(annotation)
        base, metadata = _unwrap(inner)
        for extra in extras:
            metadata.extend(extra.metadata if isinstance(extra, FieldInfo) else [extra])
        return base, metadata
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"only Optional[X] unions are supported, found {annotation}")
        return _unwrap(args[0])
    nested = get_origin(annotation) in (list, dict) or _is_contract(annotation)
    if annotation not in _SPARK_TYPES and not nested:
        raise TypeError(f"no Spark type for {annotation!r}")
    return annotation, []


def _is_contract(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def spark_type(annotation: Any) -> T.DataType:
    """Scalars as in `_SPARK_TYPES`; `list[X]` an array, `dict[str, X]` a map, a nested
    contract a struct (the bookkeeping tables use them)."""
    base = _unwrap(annotation)[0]
    if get_origin(base) is list:
        return T.ArrayType(spark_type(get_args(base)[0]))
    if get_origin(base) is dict:
        key, value = get_args(base)
        return T.MapType(spark_type(key), spark_type(value))
    if _is_contract(base):
        return spark_schema(base)
    return _SPARK_TYPES[base]


def spark_schema(contract: type[BaseModel]) -> T.StructType:
    """The Spark schema of a contract, fields in declaration order."""
    return T.StructType(
        [
            T.StructField(name, spark_type(field.annotation), nullable=not field.is_required())
            for name, field in contract.model_fields.items()
        ]
    )


def columns(contract: type[BaseModel]) -> list[str]:
    """Column names of a contract, for the final `select` of a transform."""
    return list(contract.model_fields)


@dataclass(frozen=True)
class Check:
    """One value rule: `holds(value)` is a boolean Column; `says` describes the rule."""

    holds: Callable[[Column], Column]
    says: str


@dataclass(frozen=True)
class FieldRule:
    name: str
    data_type: T.DataType
    required: bool
    checks: tuple[Check, ...]
    lower: bool = False  # a value kept in lower case (checked as delivered)
    strip: bool = False  # a value kept without white space around it (checked so)
    compose: bool = False  # a value kept in Unicode's composed form (NFC)

    @property
    def type_word(self) -> str:
        return _TYPE_WORDS.get(self.data_type, self.data_type.simpleString())


def _check(meta: Any) -> Check | None:
    match meta:
        case at.Ge(ge=v):
            return Check(lambda c: c >= F.lit(v), f"must be >= {v}")
        case at.Gt(gt=v):
            return Check(lambda c: c > F.lit(v), f"must be > {v}")
        case at.Le(le=v):
            return Check(lambda c: c <= F.lit(v), f"must be <= {v}")
        case at.Lt(lt=v):
            return Check(lambda c: c < F.lit(v), f"must be < {v}")
        case at.MinLen(min_length=1):
            # not `length(c) >= 1`: that counts every character of every value (e-mails, serials)
            return Check(lambda c: c != F.lit(""), "must not be empty")
        case at.MinLen(min_length=n):
            return Check(lambda c: F.length(c) >= n, f"must have at least {n} characters")
        case at.MaxLen(max_length=n):
            return Check(lambda c: F.length(c) <= n, f"must have at most {n} characters")
    if getattr(meta, "allow_inf_nan", True) is False:
        return Check(
            lambda c: ~F.isnan(c) & (F.abs(c) != F.lit(float("inf"))), "must be a finite number"
        )
    if pattern := getattr(meta, "pattern", None):
        word = _PATTERN_WORDS.get(pattern, f"matching {pattern}")
        # Unicode classes, as Pydantic's patterns have: Java's `\s` is ASCII's otherwise
        return Check(lambda c: c.rlike(f"(?U){pattern}"), f"must be {word}")
    return None


def lowered(contract: type[BaseModel]) -> list[str]:
    """The fields of a contract whose values are kept in lower case."""
    return [rule.name for rule in field_rules(contract) if rule.lower]


def _without_white_space(value: Column) -> Column:
    return F.btrim(value, F.lit(WHITE_SPACE))


def stripped(rule: FieldRule, value: Column) -> Column:
    """The value as its rules are checked: without white space around it, if kept so."""
    return _without_white_space(value) if rule.strip else value


def kept(rule: FieldRule, value: Column) -> Column:
    """The value as the lake keeps it: stripped, lowered and composed, as its contract says."""
    value = F.lower(stripped(rule, value)) if rule.lower else stripped(rule, value)
    return in_composed_form(value) if rule.compose else value


# Spark has no NFC function; the ICU4J it ships (for collations) has, called by reflection.
_NORMALIZER = "com.ibm.icu.text.Normalizer"


def in_composed_form(value: Column) -> Column:
    """`contracts.types.composed` in Spark. Reflection is nondeterministic to Spark: select
    it into a column before a join or a MERGE condition compares it."""
    ascii_or_null = value.isNull() | (F.octet_length(value) == F.length(value))
    nfc = F.reflect(F.lit(_NORMALIZER), F.lit("compose"), value, F.lit(False))
    return F.when(ascii_or_null, value).otherwise(nfc)


def composed_sql(column: str) -> str:
    """`in_composed_form` in SQL text, for `column` (where Spark allows it: a MERGE's SET)."""
    return f"reflect('{_NORMALIZER}', 'compose', {column}, false)"


def identifier(value: Column) -> Column:
    """An address or serial number as it is matched (`erasure.identifiers.normalised`):
    stripped, lowered and composed, whatever a lake made before kept. Nondeterministic to
    Spark, as `in_composed_form`."""
    return in_composed_form(F.lower(_without_white_space(value)))


def with_identifiers(df: DataFrame, *columns: str) -> DataFrame:
    """`df` with `<column>_id`, each column's `identifier`: selected into columns, since Spark
    refuses the composing in a join condition."""
    return df.withColumns({f"{c}_id": identifier(F.col(c)) for c in columns})


def identifier_sql(column: str) -> str:
    """`identifier` in SQL text, for `column`, less the composing (which SQL conditions of
    Delta commands refuse)."""
    escaped = "".join(f"\\u{ord(c):04x}" for c in WHITE_SPACE)
    return f"lower(btrim({column}, '{escaped}'))"


def field_rules(contract: type[BaseModel]) -> list[FieldRule]:
    """The rules of each field, read from the contract's type annotations and constraints."""
    rules = []
    for name, field in contract.model_fields.items():
        metadata = [*field.metadata, *_unwrap(field.annotation)[1]]
        checks = tuple(c for c in map(_check, metadata) if c is not None)
        lower = any(getattr(meta, "to_lower", False) for meta in metadata)
        strip = any(getattr(meta, "strip_whitespace", False) for meta in metadata)
        compose = any(getattr(meta, "func", None) is composed for meta in metadata)
        data_type = spark_type(field.annotation)
        rules.append(FieldRule(name, data_type, field.is_required(), checks, lower, strip, compose))
    return rules
