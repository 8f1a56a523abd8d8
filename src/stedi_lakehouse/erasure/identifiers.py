"""Who a raw line is about: its identifier fields, read by decoding the line as JSON.

A line is matched on what it says, not on how its bytes spell it: JSON escapes (`\\u0040`),
letter case beyond ASCII and invalid UTF-8 all decode first. An identifier field is read in any
letter case of its name, every string or number inside an array or object given as its value,
and without invisible characters (such records are quarantined, and still name whom they look
like), and an identifier field holding the address inside more text (`Kim <kim@x.io>`,
`mailto:kim@x.io`) is theirs too. A line that names an address only inside another field
(another person's line) is not theirs. A line that is not a JSON object (a broken delivery),
or is one without an identifier of its own (`"user "`, `{"reading": {"user": ...}}`), is
theirs if its decoded text holds the address or serial as a whole word.
"""

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from stedi_lakehouse.contracts.types import WHITE_SPACE, composed

# The fields that say whose a record is, and what kind of identifier each holds.
IDENTIFIER_FIELDS = {"email": "email", "user": "email", "serialNumber": "serial"}
_KIND_OF = {name.lower(): kind for name, kind in IDENTIFIER_FIELDS.items()}
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# What continues an address or serial inside a longer word: a dot only before more of it (a
# sentence's full stop, or an address written with its root dot, `kim@x.io.`, ends it).
_BEFORE = r"[\w.%+\-@]"
_AFTER = r"[\w%+\-@]|\.\w"


def decoded(line: bytes | str) -> str:
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    return text.lstrip("\ufeff").strip()


def normalised(value: str) -> str:
    """An identifier as it is matched: without surrounding white space (a line validation
    quarantines for it is still theirs), in lower case and composed (as the landing tables keep
    it)."""
    return composed(value.strip(WHITE_SPACE).lower())


def visible(value: str) -> str:
    """The value without control and invisible format characters (Unicode Cc, Cf): what a
    reader sees of it."""
    return "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cf"))


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
        if kind := _KIND_OF.get(name.lower()):
            found[kind] |= {normalised(visible(text)) for text in _texts(value)}
    return found


def _texts(value: object) -> Iterator[str]:
    """A field's value as text: a string or number, or each one inside an array or object."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, _Object):
        for _, item in value.pairs:
            yield from _texts(item)


def loose_text(line: bytes | str) -> str:
    """A broken line's text as a reader would see it: escapes decoded (JSON's, and `%40` for
    `@`), in lower case, letters that look like others read as those (Unicode NFKC: a
    full-width `ａ` is an `a`)."""
    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), decoded(line)).replace("%40", "@")
    return unicodedata.normalize("NFKC", text.lower()).lower()


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
        if found is None or not any(found.values()):  # no record, or no identifier of its own
            return self._in_text(loose_text(line), self.emails | self.serials)
        if found["email"] & self.emails or found["serial"] & self.serials:
            return True
        # their address wrapped in an identifier field: `Kim <kim@x.io>`, `mailto:kim@x.io`
        return any(self._in_text(loose_text(value), self.emails) for value in found["email"])

    @staticmethod
    def _in_text(text: str, words: frozenset[str]) -> bool:
        """Whether one of `words` is in `text` as a whole word."""
        return any(
            re.search(rf"(?<!{_BEFORE}){re.escape(word)}(?!{_AFTER})", text)
            for word in words
            if word
        )
