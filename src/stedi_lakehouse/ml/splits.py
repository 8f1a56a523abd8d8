"""Splitting people between training, validation and test sets.

A person goes to a split by a seeded hash of their `subject_key` held against the cumulative
fractions, not by a random draw over a sorted list: the assignment depends on nothing but
(seed, key, fractions), so the same seed gives the same sets and people added later do not
move anyone already assigned.
"""

import hashlib
import math
from collections.abc import Iterable

from stedi_lakehouse.errors import StediError

SPLIT_NAMES = ("train", "validation", "test")
DEFAULT_SPLITS = "train=0.8,validation=0.1,test=0.1"
HASH_SPACE = 2**64


class SplitError(StediError):
    """A `--splits` specification that is not positive fractions of known names summing to 1."""


def parse_splits(spec: str) -> dict[str, float]:
    """`train=0.8,validation=0.1,test=0.1` as {name: fraction}, in the order given."""
    splits: dict[str, float] = {}
    for part in spec.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep:
            raise SplitError(f"--splits wants name=fraction pairs, got '{part.strip()}'")
        if name not in SPLIT_NAMES:
            raise SplitError(f"unknown split '{name}': one of {', '.join(SPLIT_NAMES)}")
        if name in splits:
            raise SplitError(f"split '{name}' is named twice")
        try:
            fraction = float(value)
        except ValueError:
            raise SplitError(f"split '{name}' wants a fraction, got '{value.strip()}'") from None
        if not (math.isfinite(fraction) and fraction > 0):
            raise SplitError(f"split '{name}' wants a positive fraction, got {value.strip()}")
        splits[name] = fraction
    total = sum(splits.values())
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise SplitError(f"the split fractions must sum to 1, they sum to {total:g}")
    return splits


def unit_hash(seed: int, subject_key: str) -> float:
    """A number in [0, 1) that depends only on the seed and the key."""
    digest = hashlib.sha256(f"{seed}:{subject_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / HASH_SPACE


def split_of(subject_key: str, *, seed: int, splits: dict[str, float]) -> str:
    """The split a person belongs to."""
    point, bound = unit_hash(seed, subject_key), 0.0
    for name, fraction in splits.items():
        bound += fraction
        if point < bound:
            return name
    return next(reversed(splits))  # rounding: fractions summing to 0.999... still cover [0, 1)


def assign(subject_keys: Iterable[str], *, seed: int, splits: dict[str, float]) -> dict[str, str]:
    """{subject_key: split} for every distinct key."""
    return {key: split_of(key, seed=seed, splits=splits) for key in set(subject_keys)}
