"""Who a raw line is about: its identifier fields, read by decoding the line as JSON.

A line is matched on what it says, not on how its bytes spell it: JSON escapes (`\\u0040`),
letter case beyond ASCII and invalid UTF-8 all decode first. A line that names an address only
inside another field (another person's line) is not theirs. A line that is not a JSON object
(a broken delivery) is theirs if its decoded text holds the address or serial as a whole word.
"""

import json
import re
from dataclasses import dataclass

from stedi_lakehouse.contracts.types import WHITE_SPACE, composed

# The fields that say whose a record is, and what kind of identifier each holds.
IDENTIFIER_FIELDS = {"email": "email", "user": "email", "serialNumber": "serial"}
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_WORD = r"[\w.%+\-@]"  # what may continue an address or serial inside a longer word


def decoded(line: bytes | str) -> str:
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    return text.lstrip("\ufeff").strip()


def normalised(value: str) -> str:
    """An identifier as it is matched: without surrounding white space (a line validation
    quarantines for it is still theirs), in lower case and composed (as the landing tables keep
    it)."""
    return composed(value.strip(WHITE_SPACE).lower())


class _Object(dict):
    """A JSON object that keeps its members in order, a name given twice with both values."""

    def __init__(self, pairs: list[tuple[str, object]]):
        super().__init__(pairs)
        self.pairs = pairs


def fields_of(line: bytes | str) -> dict[str, set[str]] | None:
    """{kind: values} of the line's identifier fields, every value of a field named twice (a
    record validation quarantines for it names both); None if it is not a JSON object."""
    try:
        record = json.loads(decoded(line), object_pairs_hook=_Object)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, _Object):
        return None
    found: dict[str, set[str]] = {"email": set(), "serial": set()}
    for name, value in record.pairs:
        kind = IDENTIFIER_FIELDS.get(name)
        if kind and isinstance(value, str | int | float) and not isinstance(value, bool):
            found[kind].add(normalised(str(value)))
    return found


def loose_text(line: bytes | str) -> str:
    """A broken line's text as a reader would see it: escapes decoded, in lower case, composed."""
    return composed(_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), decoded(line)).lower())


@dataclass(frozen=True)
class Subject:
    """The identifiers of one or more people to find, normalised: e-mail addresses and
    serial numbers of devices only they claimed."""

    emails: frozenset[str] = frozenset()
    serials: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.emails or self.serials)

    def names(self, line: bytes | str) -> bool:
        """Whether the line is a record of theirs (see the module's docstring)."""
        found = fields_of(line)
        if found is not None:
            return bool(found["email"] & self.emails or found["serial"] & self.serials)
        text = loose_text(line)
        words = self.emails | self.serials
        return any(
            re.search(rf"(?<!{_WORD}){re.escape(word)}(?!{_WORD})", text) for word in words if word
        )
