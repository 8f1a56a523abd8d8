"""Field types shared by the contracts: each carries the rule a value must meet."""

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt, StringConstraints

# Plausible epoch milliseconds (UTC): from 2000-01-01 up to (not including) 2100-01-01.
MIN_EPOCH_MS = 946_684_800_000
MAX_EPOCH_MS = 4_102_444_800_000
# No control or invisible format character (U+200B, U+202E, ...): a value that looks like
# another but is not. An address holds no white space, none of the punctuation that wraps or
# lists addresses (`Kim <kim@x.io>`, `mailto:kim@x.io`, `a@x.io, b@x.io`), and no full-width
# form of a letter (`ａ`); its domain is labels between single dots, with no `%` or `/`.
_NOT_IN_ADDRESS = r'@\s\p{Cc}\p{Cf}:;,<>()\[\]"\\\x{FF00}-\x{FFEF}'
_LABEL = "[^" + _NOT_IN_ADDRESS + ".%/]+"
EMAIL_PATTERN = "^[^" + _NOT_IN_ADDRESS + "]+@" + _LABEL + "(\\." + _LABEL + ")*$"
SERIAL_PATTERN = r"^[^\p{Cc}\p{Cf}]*$"
MAX_INT64 = 2**63 - 1  # integers are stored as Spark LongType

EpochMillis = Annotated[StrictInt, Field(ge=MIN_EPOCH_MS, lt=MAX_EPOCH_MS)]
"""A JSON integer of milliseconds since 1970-01-01 UTC, within the plausible window."""

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A JSON number (integer or decimal), not NaN or Infinity."""

NonNegativeInt = Annotated[StrictInt, Field(ge=0, le=MAX_INT64)]
"""A JSON integer >= 0 that fits in 64 bits."""

Text = Annotated[str, Field(min_length=1)]
"""A non-empty JSON string (a JSON number is taken as its text)."""

# Unicode's White_Space characters: what Pydantic strips, and so what Spark (`btrim`) and
# `forget` (Python, whose `str.strip` would also take U+001C to U+001F) strip too.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def composed(value: str) -> str:
    """Unicode's composed form (NFC): "e" and a combining acute accent become one "é"."""
    return unicodedata.normalize("NFC", value)


# Text that looks the same may be spelt with combining marks or without: kept composed.
Composed = AfterValidator(composed)

Serial = Annotated[
    str,
    Field(min_length=1, pattern=SERIAL_PATTERN),
    StringConstraints(strip_whitespace=True, to_lower=True),
    Composed,
]
"""A device's serial number (a UUID): one device's in any letter case, with white space around
it or spelt with combining marks, so kept stripped, in lower case and composed (two claims of
one device spelt differently make it ambiguous all the same). Nothing invisible in it."""

# The longest address mail can carry (RFC 5321's 256-octet path, less its angle brackets).
EMAIL_MAX = 254

Email = Annotated[
    str,
    Field(min_length=1, max_length=EMAIL_MAX, pattern=EMAIL_PATTERN),
    StringConstraints(to_lower=True),
    Composed,
]
"""An e-mail address: something@somewhere, no spaces, nothing invisible, at most `EMAIL_MAX`
characters. Kept in lower case and composed: an address names one person in any letter case
and whether a letter's accent is a mark of its own or not, and every join, ranking and erasure
compares addresses."""
