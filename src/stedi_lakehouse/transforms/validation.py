"""Validate raw JSON lines against a record contract, inside Spark.

Each line is parsed once with the typed schema derived from the contract. Only when a field
came out null (absent, null, wrong type) is the line parsed again as a map of raw values to
say why, so valid records pay for one parse. No line can fail the run: every parse here turns
malformed input into null (a reason), never into an exception. A record naming a field twice is
ambiguous (parsers differ on which value wins): quarantined, whatever either value says. So is
a line with text after its object (a second record), which the parser would drop unread.
"""

import operator
from dataclasses import replace
from functools import reduce

from pydantic import BaseModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_lakehouse.contracts.spark import (
    Check,
    FieldRule,
    columns,
    field_rules,
    kept,
    spark_schema,
    stripped,
)

RECORD = "_record"
REASON = "reason"
NOT_AN_OBJECT = "not a JSON object"
NOT_UTF8 = "not valid UTF-8"
NAMED_TWICE = "is named more than once"
TEXT_AFTER = "text after the JSON object (a line holds one record)"
NAMES = "_names"  # the contract's names a record gives, where they are listed (`names_given`)
SHOWN_CHARS = 40  # how much of an offending value a reason quotes
KEPT_CHARS = 64 * 1024  # how much of a quarantined line the quarantine keeps
BOM = "\ufeff"
REPLACEMENT = "\ufffd"  # what the JSON parser reads bytes that are not UTF-8 as
# Strict JSON, as the oracle's json.loads reads it: no single quotes. NaN and Infinity tokens
# are read, so that the reason can say the number is not finite.
JSON_OPTIONS = {"allowSingleQuotes": "false"}


def non_blank(lines: DataFrame) -> DataFrame:
    """Blank lines (nothing but whitespace) are not records. A line that starts with "{" (nearly
    every line) is not blank: the regular expression, a twentieth of the ingest's work when run
    on every line, runs only on the others."""
    value = F.col("value")
    return lines.filter(value.startswith("{") | ~value.rlike(r"^\s*$"))


def _without_bom(value: Column) -> Column:
    """A file saved with a byte-order mark starts its first line with it: not part of the
    record."""
    return F.when(value.startswith(BOM), F.substring(value, 2, 1 << 30)).otherwise(value)


def _shown(value: Column) -> Column:
    return F.concat(F.lit("'"), F.substring(value, 1, SHOWN_CHARS), F.lit("'"))


def _looks_like_no_text(typed: Column) -> Column:
    return typed.isin("true", "false") | typed.startswith("{") | typed.startswith("[")


def _not_text(rule: FieldRule, typed: Column) -> Column:
    """Spark reads any JSON value into a string field as its text; a contract string takes only
    a JSON string or number. Values that look like a boolean, object or array are checked
    against the line's real JSON kind (rare, so the extra parse is cheap)."""
    looks_wrong = _looks_like_no_text(typed)
    parsed = F.variant_get(F.try_parse_json("value"), f"$.{rule.name}", "variant")
    # a line the strict parser refuses (NaN tokens) cannot show the kind: taken as not text
    kind = F.coalesce(F.schema_of_variant(parsed), F.lit("unknown"))
    return F.when(
        looks_wrong & (kind != "STRING"),
        F.concat(F.lit(f"'{rule.name}' must be {rule.type_word}, got "), _shown(typed)),
    )


def _value_reasons(rule: FieldRule, typed: Column) -> list[Column]:
    """Broken value rules of a field that parsed to its type (a string field of the wrong JSON
    kind reports only that)."""
    broken = [
        F.when(
            typed.isNotNull() & ~check.holds(typed),
            F.concat(F.lit(f"'{rule.name}' {check.says}, got "), _shown(typed.cast("string"))),
        )
        for check in rule.checks
    ]
    if rule.data_type == T.StringType():
        broken.append(F.when(typed.contains(REPLACEMENT), F.lit(f"'{rule.name}' is {NOT_UTF8}")))
        return [F.coalesce(_not_text(rule, typed), _joined(broken))]
    return broken


def _null_reason(rule: FieldRule, typed: Column, raw: Column) -> Column:
    """Why a field parsed to null: wrong type, or (if required) absent or null."""
    value = raw[rule.name]
    wrong_type = F.concat(F.lit(f"'{rule.name}' must be {rule.type_word}, got "), _shown(value))
    reason = F.when(typed.isNull() & value.isNotNull(), wrong_type)
    if rule.required:
        absent = ~F.map_contains_key(raw, F.lit(rule.name))
        reason = reason.when(typed.isNull() & absent, F.lit(f"'{rule.name}' is missing"))
        reason = reason.when(typed.isNull(), F.lit(f"'{rule.name}' is null"))
    return reason


def _may_repeat(rules: list[FieldRule]) -> Column:
    """A cheap test that no field is named twice, for records with every field given (the
    others take the full path anyway): each name is followed by a colon, so such a record
    naming one twice has more colons than the contract has fields. One pass, no parse."""
    value = F.col("value")
    colons = F.octet_length(value) - F.octet_length(F.replace(value, F.lit(":"), F.lit("")))
    return colons > len(rules)


def _typed(rules: list[FieldRule]) -> dict[str, Column]:
    return {rule.name: stripped(rule, F.col(RECORD)[rule.name]) for rule in rules}


def _any_null(typed: dict[str, Column]) -> Column:
    return reduce(operator.or_, [column.isNull() for column in typed.values()])


def names_given(rules: list[FieldRule]) -> Column:
    """The contract's names a record's top-level object gives, a repeated one as often as it
    is given; listed (names only, once per line) for the records that take the full path or
    may name a field twice, null for the others."""
    names = F.json_object_keys(F.col("value"))
    listed = F.filter(names, lambda k: k.isin([r.name for r in rules]))
    return F.when(_any_null(_typed(rules)) | _may_repeat(rules), listed)


def _repeated(name: str) -> Column:
    """Whether the record names the field more than once (see `names_given`)."""
    given = F.filter(F.col(NAMES), lambda k: k == F.lit(name))
    return F.coalesce(F.size(given) > 1, F.lit(False))


def _any_repeated() -> Column:
    names = F.col(NAMES)
    return F.coalesce(F.size(names) > F.size(F.array_distinct(names)), F.lit(False))


def _joined(reasons: list[Column]) -> Column:
    return F.nullif(F.concat_ws("; ", *reasons), F.lit(""))


def _may_hold(rule: FieldRule, typed: Column) -> Column:
    """A cheap test that every value rule of a field holds (null passes: checked elsewhere).
    True for almost every record, so the reason text is built only for the others."""
    conditions = [typed.isNull() | check.holds(typed) for check in rule.checks]
    if rule.data_type == T.StringType():
        conditions.append(typed.isNull() | ~_looks_like_no_text(typed))
        conditions.append(typed.isNull() | ~typed.contains(REPLACEMENT))
    return reduce(operator.and_, conditions, F.lit(True))


def _text_after_the_object() -> Column:
    """Whether the line holds more than its JSON object (a second record, or anything else),
    which the parser would drop unread. Looked at only where it may be: a line that ends with
    something other than "}", or whose names were listed (`names_given`: more colons than the
    contract has fields, as a second record gives); those are read again as the elements of a
    JSON array, which must be exactly one."""
    value = F.col("value")
    may = F.col(NAMES).isNotNull() | ~F.rtrim(value).endswith("}")
    elements = F.from_json(F.concat(F.lit("["), value, F.lit("]")), "array<string>", JSON_OPTIONS)
    return may & F.coalesce(F.size(elements) != 1, F.lit(True))


def reason_column(rules: list[FieldRule]) -> Column:
    """Every rule a record breaks, '; '-separated; null for a valid record. The record's names
    are listed in column NAMES (`names_given`)."""
    typed = _typed(rules)
    by_field = {rule.name: _value_reasons(rule, typed[rule.name]) for rule in rules}
    value_reasons = [r for reasons in by_field.values() for r in reasons]
    raw = F.from_json(F.col("value"), "map<string,string>", JSON_OPTIONS)
    repeated = {rule.name: _repeated(rule.name) for rule in rules}

    def unless_repeated(name: str, reason: Column) -> Column:
        return F.when(~repeated[name], reason)  # a repeated field's values are not read

    full = (
        F.when(~F.is_valid_utf8("value"), F.lit(NOT_UTF8))
        .when(raw.isNull(), F.lit(NOT_AN_OBJECT))
        .otherwise(
            _joined(
                [unless_repeated(r.name, _null_reason(r, typed[r.name], raw)) for r in rules]
                + [unless_repeated(n, reason) for n, rs in by_field.items() for reason in rs]
                + [F.when(repeated[n], F.lit(f"'{n}' {NAMED_TWICE}")) for n in by_field]
            )
        )
    )
    all_hold = reduce(operator.and_, [_may_hold(rule, typed[rule.name]) for rule in rules])
    broken = F.when(_any_null(typed) | _any_repeated(), full).when(
        ~all_hold, _joined(value_reasons)
    )
    return F.coalesce(broken, F.when(_text_after_the_object(), F.lit(TEXT_AFTER)))


def validate(
    lines: DataFrame, *, contract: type[BaseModel], run_checks: dict[str, Check] | None = None
) -> DataFrame:
    """(value, source_file) -> (value, source_file, _record, reason); reason null = valid.
    `run_checks`: field -> a rule of this run beside the contract's (a time the record cannot
    have been made after); its `holds` may read the record's other fields in `RECORD`."""
    rules = [
        replace(rule, checks=(*rule.checks, check))
        if (check := (run_checks or {}).get(rule.name)) is not None
        else rule
        for rule in field_rules(contract)
    ]
    return (
        non_blank(lines.withColumn("value", _without_bom(F.col("value"))))
        .withColumn(RECORD, F.from_json(F.col("value"), spark_schema(contract), JSON_OPTIONS))
        .withColumn(NAMES, names_given(rules))
        .withColumn(REASON, reason_column(rules))
        .drop(NAMES)
    )


def without_good_lines(validated: DataFrame) -> DataFrame:
    """Drop the raw text of valid records (kept for quarantined ones only): what is cached
    between the landing and quarantine writes shrinks by the size of the input."""
    return validated.withColumn("value", F.when(F.col(REASON).isNotNull(), F.col("value")))


def accepted(
    validated: DataFrame, *, contract: type[BaseModel], as_delivered: bool = False
) -> DataFrame:
    """The valid records, typed by the contract (values it keeps stripped or in lower case
    so, unless `as_delivered`), with their source file."""
    rules = {rule.name: rule for rule in field_rules(contract)}
    fields = {name: F.col(RECORD)[name] for name in columns(contract)}
    return validated.filter(F.col(REASON).isNull()).select(
        *[(c if as_delivered else kept(rules[name], c)).alias(name) for name, c in fields.items()],
        "source_file",
    )


def quarantined(validated: DataFrame) -> DataFrame:
    """The records that broke the contract: raw line (made valid UTF-8, and cut to its first
    KEPT_CHARS characters, which the reason then says), reason, source file."""
    line = F.make_valid_utf8(F.col("value"))
    cut = F.length(line) > KEPT_CHARS
    said = F.format_string(
        f"; raw line cut to its first {KEPT_CHARS:,} of %,d characters", F.length(line)
    )
    return validated.filter(F.col(REASON).isNotNull()).select(
        F.when(cut, F.substring(line, 1, KEPT_CHARS)).otherwise(line).alias("raw_line"),
        F.when(cut, F.concat(F.col(REASON), said)).otherwise(F.col(REASON)).alias(REASON),
        "source_file",
    )
