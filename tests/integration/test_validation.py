"""Each kind of bad input is quarantined with a readable reason; good rows pass untouched."""

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from stedi_lakehouse.contracts.landing import (
    AccelerometerReading,
    CustomerRecord,
    StepTrainerReading,
)
from stedi_lakehouse.contracts.spark import Check
from stedi_lakehouse.transforms.validation import RECORD, accepted, quarantined, validate
from tests.helpers import FIELDS, HOSTILE

GOOD = '{"user":"a@test.com","timestamp":1655564444103,"x":1.0,"y":-1,"z":-1.5}'
T0 = 1655564444103


def _lines(spark, *lines):
    return spark.createDataFrame(
        [(line, "f.json") for line in lines], "value string, source_file string"
    )


def _reasons(spark, contract, *lines):
    validated = validate(_lines(spark, *lines), contract=contract)
    return {r["raw_line"]: r["reason"] for r in quarantined(validated).collect()}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not a JSON object"),
        ('{"user":"a@test.com","timestamp":1', "not a JSON object"),
        ('[{"user":"a@test.com"}]', "not a JSON object"),
        ("42", "not a JSON object"),
        (
            '{"user":"a@test.com","timestamp":"abc","x":1,"y":1,"z":1}',
            "'timestamp' must be an integer, got 'abc'",
        ),
        (
            '{"user":"a@test.com","timestamp":1.5,"x":1,"y":1,"z":1}',
            "'timestamp' must be an integer, got '1.5'",
        ),
        (
            '{"user":"a@test.com","timestamp":1655564444103,"x":"high","y":1,"z":1}',
            "'x' must be a number, got 'high'",
        ),
        (
            '{"user":true,"timestamp":1655564444103,"x":1,"y":1,"z":1}',
            "'user' must be a string, got 'true'",
        ),
        ('{"timestamp":1655564444103,"x":1,"y":1,"z":1}', "'user' is missing"),
        ('{"user":null,"timestamp":1655564444103,"x":1,"y":1,"z":1}', "'user' is null"),
        (
            '{"user":"a@test.com","timestamp":0,"x":1,"y":1,"z":1}',
            "'timestamp' must be >= 946684800000, got '0'",
        ),
        (
            '{"user":"a@test.com","timestamp":7258118400000,"x":1,"y":1,"z":1}',
            "'timestamp' must be < 4102444800000, got '7258118400000'",
        ),
        (
            '{"user":"a@test.com","timestamp":1655564444103,"x":NaN,"y":1,"z":1}',
            "'x' must be a finite number, got 'NaN'",
        ),
        (
            '{"user":"nobody","timestamp":1655564444103,"x":1,"y":1,"z":1}',
            "'user' must be an e-mail address, got 'nobody'",
        ),
    ],
)
def test_bad_accelerometer_line_is_quarantined_with_its_reason(spark, line, reason):
    assert _reasons(spark, AccelerometerReading, GOOD, line) == {line: reason}


def test_every_broken_rule_is_listed(spark):
    line = '{"user":"nobody","timestamp":"soon","x":1,"y":1}'
    assert _reasons(spark, AccelerometerReading, line)[line] == (
        "'timestamp' must be an integer, got 'soon'; 'z' is missing; "
        "'user' must be an e-mail address, got 'nobody'"
    )


def test_step_trainer_distance_must_be_a_non_negative_integer(spark):
    base = '{"sensorReadingTime":1655564444103,"serialNumber":"s1","distanceFromObject":%s}'
    reasons = _reasons(spark, StepTrainerReading, base % "218", base % "-3", base % "1.5")
    assert reasons == {
        base % "-3": "'distanceFromObject' must be >= 0, got '-3'",
        base % "1.5": "'distanceFromObject' must be an integer, got '1.5'",
    }


def test_serial_number_must_not_be_empty(spark):
    """Nor white space only: a serial number is kept without the white space around it."""
    base = '{"sensorReadingTime":1655564444103,"serialNumber":%s,"distanceFromObject":218}'
    reasons = _reasons(spark, StepTrainerReading, base % '"s1"', base % '""', base % '" \\t"')
    empty = "'serialNumber' must not be empty, got ''"
    assert reasons == {base % '""': empty, base % '" \\t"': empty}


def test_optional_field_of_the_wrong_type_is_not_silently_nulled(spark):
    """A consent date that cannot be read must not turn into 'no consent' unnoticed."""
    line = (
        '{"email":"a@test.com","serialNumber":"s1","registrationDate":1655564444103,'
        '"lastUpdateDate":1655564444103,"shareWithResearchAsOfDate":"yesterday"}'
    )
    assert _reasons(spark, CustomerRecord, line) == {
        line: "'shareWithResearchAsOfDate' must be an integer, got 'yesterday'"
    }


def test_a_field_named_twice_is_quarantined_whichever_value_comes_last(spark):
    """Parsers differ on which value of a repeated name wins: such a record is ambiguous (a
    consent given and withheld; two addresses), whatever its values say."""
    consent = "shareWithResearchAsOfDate"
    base = (  # every field given: a record with none null is checked by the quick path
        '{"customerName":"A","email":"a@test.com","phone":"1","birthDay":"1990-01-01",'
        '"serialNumber":"s1","registrationDate":1655564444103,"lastUpdateDate":1655564444103,'
        '"shareWithPublicAsOfDate":1655564444103,"shareWithFriendsAsOfDate":1655564444103,%s}'
    )
    given, twice = f'"{consent}":1655564444103,', f"'{consent}' is named more than once"
    lines = {
        base % f'"{consent}":1655564444103,"{consent}":null': twice,
        base % f'"{consent}":null,"{consent}":1655564444103': twice,
        base % (given + '"email":"b@test.com"'): "'email' is named more than once",
        base % (given + '"em\\u0061il":"b@test.com","registrationDate":"soon"'): (
            "'email' is named more than once; 'registrationDate' is named more than once"
        ),
    }
    ignored = [  # an unknown field twice; a name inside a nested object or a value
        base % (given + '"note":1,"note":2'),
        base % (given + '"note":{"email":"b@test.com"},"more":"\\"email\\" \\\\u"'),
    ]
    validated = validate(_lines(spark, *lines, *ignored), contract=CustomerRecord)
    assert {r["raw_line"]: r["reason"] for r in quarantined(validated).collect()} == lines
    assert accepted(validated, contract=CustomerRecord).count() == len(ignored)


def test_text_after_the_object_is_quarantined_not_dropped(spark):
    second = GOOD.replace("a@test.com", "b@test.com")
    reason = "text after the JSON object (a line holds one record)"
    lines = {
        GOOD + second: reason,  # two records on one line: the second would be dropped unread
        GOOD + " " + second: reason,
        GOOD + " trailing words": reason,
        GOOD + "\x00": reason,
        GOOD + "[1]": reason,
    }
    quarantine = _reasons(spark, AccelerometerReading, *lines, GOOD + "   ", GOOD)
    assert quarantine == lines


def test_blank_lines_are_not_records(spark):
    lines = _lines(spark, GOOD, "", "   ", "\t ", " {", "x")
    validated = validate(lines, contract=AccelerometerReading)
    assert sorted(row.value for row in validated.collect()) == sorted([GOOD, " {", "x"])


def test_good_rows_are_typed_and_keep_their_source_file(spark):
    lines = _lines(
        spark,
        GOOD,
        "not json",
        '{"user":"b@test.com","timestamp":1655564444104,'
        '"x":2,"y":0.5,"z":0,"unknown_extra":"ignored"}',
    )
    got = accepted(validate(lines, contract=AccelerometerReading), contract=AccelerometerReading)
    expected = spark.createDataFrame(
        [
            ("a@test.com", T0, 1.0, -1.0, -1.5, "f.json"),
            ("b@test.com", T0 + 1, 2.0, 0.5, 0.0, "f.json"),
        ],
        "user string, timestamp long, x double, y double, z double, source_file string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_phone_may_be_a_number_or_a_string(spark):
    base = (
        '{"email":"a@test.com","serialNumber":"s1","registrationDate":1655564444103,'
        '"lastUpdateDate":1655564444103,"phone":%s}'
    )
    validated = validate(
        _lines(spark, base % "8015551212", base % '"801-555"'), contract=CustomerRecord
    )
    phones = {r["phone"] for r in accepted(validated, contract=CustomerRecord).collect()}
    assert phones == {"8015551212", "801-555"}


def _byte_lines(spark, *lines: bytes):
    """Lines as raw bytes (not necessarily UTF-8), as Spark's text reader hands them over."""
    rows = [(bytearray(line), "f.json") for line in lines]
    frame = spark.createDataFrame(rows, "b binary, source_file string")
    return frame.selectExpr("cast(b AS string) AS value", "source_file")


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_line_is_quarantined_with_a_reason_never_an_exception(spark, kind):
    line, reason = HOSTILE[kind]
    validated = validate(_byte_lines(spark, line), contract=AccelerometerReading)
    assert [r["reason"] for r in quarantined(validated).collect()] == [reason]
    assert accepted(validated, contract=AccelerometerReading).count() == 0


def test_a_byte_order_mark_is_not_part_of_the_record(spark):
    validated = validate(
        _byte_lines(spark, b'\xef\xbb\xbf{"user":"a@test.com",' + FIELDS + b"}"),
        contract=AccelerometerReading,
    )
    assert [r["user"] for r in accepted(validated, contract=AccelerometerReading).collect()] == [
        "a@test.com"
    ]


def test_the_quarantine_keeps_64_kib_of_a_huge_line_and_says_so(spark):
    line = b'{"user":null,' + FIELDS + b',"big":"' + b"a" * (21 * 2**20) + b'"}'
    validated = validate(_byte_lines(spark, line), contract=AccelerometerReading)
    [row] = quarantined(validated).collect()
    assert len(row["raw_line"]) == 65536 and line.decode().startswith(row["raw_line"])
    assert row["reason"].endswith(f"raw line cut to its first 65,536 of {len(line):,} characters")


def test_the_quarantine_holds_valid_utf8(spark):
    validated = validate(_byte_lines(spark, b"\xff\xfe{"), contract=AccelerometerReading)
    kept = quarantined(validated).select(F.is_valid_utf8("raw_line").alias("valid"), "raw_line")
    assert [tuple(r) for r in kept.collect()] == [(True, "\ufffd\ufffd{")]


def test_a_run_check_quarantines_what_it_finds_and_may_read_other_fields(spark):
    """A rule of the run beside the contract's: here a record dated after a limit, where it
    gives consent (as the trusted stage applies to customer records)."""
    base = (
        '{"email":"a@test.com","serialNumber":"s1","registrationDate":1655564444103,'
        '"lastUpdateDate":%d,"shareWithResearchAsOfDate":%s}'
    )
    limit, consent = 1700000000000, "1655564444103"
    withdraws = F.col(RECORD)["shareWithResearchAsOfDate"].isNull()
    late = Check(lambda c: (c <= F.lit(limit)) | withdraws, "must not be late")
    given, late_grant, late_withdrawal = (limit, consent), (limit + 1, consent), (limit + 1, "null")
    lines = _lines(spark, base % given, base % late_grant, base % late_withdrawal)
    validated = validate(lines, contract=CustomerRecord, run_checks={"lastUpdateDate": late})
    assert {r["raw_line"]: r["reason"] for r in quarantined(validated).collect()} == {
        base % late_grant: f"'lastUpdateDate' must not be late, got '{limit + 1}'"
    }
    assert accepted(validated, contract=CustomerRecord).count() == 2
