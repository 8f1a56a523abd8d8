"""Splitting people between training sets, in plain Python: no person in two splits, every row
once, the same sets for the same seed, nobody moved by people added later, and one clear
error for a bad `--splits`."""

import pyarrow as pa
import pytest

from stedi_lakehouse.ml import split_rows
from stedi_lakehouse.ml.splits import DEFAULT_SPLITS, SplitError, assign, parse_splits
from tests.helpers import assert_in_time_order_per_person

FRACTIONS = parse_splits(DEFAULT_SPLITS)
PEOPLE = [f"key-{i:03d}" for i in range(300)]


def readings(people: list[str], per_person: int = 4) -> pa.Table:
    """Rows grouped by person, in time order, as `read_snapshot` sorts them."""
    rows = [
        {"subject_key": p, "reading_time_ms": 1_655_000_000_000 + t, "x": float(t)}
        for p in sorted(people)
        for t in range(per_person)
    ]
    return pa.Table.from_pylist(rows)


def test_no_person_in_two_splits_and_every_row_once():
    table = readings(PEOPLE)
    parts = split_rows(table, seed=3, splits=FRACTIONS)
    people = {name: set(rows.column("subject_key").to_pylist()) for name, rows in parts.items()}
    assert people["train"].isdisjoint(people["validation"])
    assert people["train"].isdisjoint(people["test"])
    assert people["validation"].isdisjoint(people["test"])
    assert sum(rows.num_rows for rows in parts.values()) == table.num_rows
    together = pa.concat_tables(parts.values()).sort_by([("subject_key", "ascending")])
    assert together.equals(table.sort_by([("subject_key", "ascending")]))


def test_the_shares_follow_the_fractions():
    counts = {name: 0 for name in FRACTIONS}
    for split in assign(PEOPLE, seed=3, splits=FRACTIONS).values():
        counts[split] += 1
    assert 0.7 < counts["train"] / len(PEOPLE) < 0.9
    assert counts["validation"] and counts["test"]


def test_rows_of_a_person_stay_in_time_order():
    parts = split_rows(readings(PEOPLE), seed=3, splits=FRACTIONS)
    for rows in parts.values():
        assert_in_time_order_per_person(rows)


def test_the_same_seed_gives_the_same_sets_and_another_seed_others():
    first = assign(PEOPLE, seed=3, splits=FRACTIONS)
    assert assign(list(reversed(PEOPLE)), seed=3, splits=FRACTIONS) == first
    assert assign(PEOPLE, seed=4, splits=FRACTIONS) != first


def test_people_added_later_move_nobody():
    before = assign(PEOPLE[:100], seed=3, splits=FRACTIONS)
    after = assign(PEOPLE, seed=3, splits=FRACTIONS)
    assert {key: after[key] for key in before} == before


@pytest.mark.parametrize(
    "spec, message",
    [
        ("train=0.8,validation=0.1", "must sum to 1, they sum to 0.9"),
        ("train=0.8,holdout=0.2", "unknown split 'holdout'"),
        ("train=1.2,test=-0.2", "split 'test' wants a positive fraction"),
        ("train=0.5,train=0.5", "split 'train' is named twice"),
        ("train=abc,test=1", "split 'train' wants a fraction, got 'abc'"),
        ("train", "name=fraction pairs"),
    ],
)
def test_a_bad_splits_spec_is_one_clear_error(spec, message):
    with pytest.raises(SplitError, match=message):
        parse_splits(spec)


def test_splits_keep_their_order():
    assert list(parse_splits("test=0.2, train=0.8")) == ["test", "train"]
