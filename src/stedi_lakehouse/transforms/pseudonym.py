"""A stable pseudonymous subject key: HMAC-SHA256 of an identifier under a secret key.

Without the key, a subject key cannot be linked back to an email (unlike a plain hash, which a
dictionary of known emails reverses). The key must never appear in a query plan (Spark UI,
event logs): a column expression would carry it as a literal, so the HMAC runs in a Python
function whose closure holds the key. It runs once per person (curated customers), not per
reading. The few keys a run needs on the driver (to scope its writes) are the same HMAC.
"""

import hashlib
import hmac

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T


def _hmac_of(key: bytes):
    def of(value: str | None) -> str | None:
        if value is None:
            return None
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    of.__name__ = "subject_key"  # what query plans show
    return of


def hmac_sha256_hex(value: Column, *, key: bytes) -> Column:
    """Lower-case hex HMAC-SHA256 of the UTF-8 string `value` under `key` (the plan shows
    only the function's name)."""
    return F.udf(_hmac_of(key), T.StringType())(value)


def subject_keys(values: set[str], *, key: bytes) -> set[str]:
    """The subject keys of a few identifiers the driver holds (a run's affected people, a
    person to forget): the HMAC the tables hold (`hmac_sha256_hex`, a test checks both agree)."""
    of = _hmac_of(key)
    return {of(value) for value in values}
