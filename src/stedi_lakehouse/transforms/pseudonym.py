"""A stable pseudonymous subject key: HMAC-SHA256 of an identifier, computed inside Spark.

Spark has SHA-256 but no HMAC; HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)) (RFC 2104) is
built from it. The padded keys are prepared once on the driver, so no Python UDF runs per row.
Without the key, a subject key cannot be linked back to an email (unlike a plain hash, which a
dictionary of known emails reverses). The few keys a run needs on the driver (to scope its
writes) are the same HMAC from Python's standard library.
"""

import hashlib
import hmac

from pyspark.sql import Column
from pyspark.sql import functions as F

BLOCK_SIZE = 64  # bytes, SHA-256's block
IPAD, OPAD = 0x36, 0x5C


def _padded_keys(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK_SIZE, b"\0")
    return bytes(b ^ IPAD for b in key), bytes(b ^ OPAD for b in key)


def hmac_sha256_hex(value: Column, *, key: bytes) -> Column:
    """Lower-case hex HMAC-SHA256 of the UTF-8 string `value` under `key`."""
    inner_key, outer_key = _padded_keys(key)
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_key), F.encode(value, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(outer_key), inner), 256)


def subject_keys(values: set[str], *, key: bytes) -> set[str]:
    """The subject keys of a few identifiers the driver holds (a run's affected people, a
    person to forget), computed on the driver: the HMAC the tables hold (`hmac_sha256_hex`,
    a test checks that both agree) without a Spark job."""
    return {hmac.new(key, value.encode(), hashlib.sha256).hexdigest() for value in values}
