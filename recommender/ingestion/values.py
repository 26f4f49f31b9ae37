"""The values every door accepts: text, merchant ids and timestamps. Framework-free.

One definition of each, used by the row parser (files and batch API), the API's fields, query
parameters and body check, and the OpenAPI document (the ``*_PATTERN`` strings below are the
patterns the schema declares), so what is documented is exactly what is accepted:

* **Text** never holds a control character other than tab, line feed and carriage return
  (U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+007F-U+009F), nor an unpaired UTF-16
  surrogate (U+D800-U+DFFF alone): PostgreSQL refuses U+0000, and a lone surrogate cannot be
  encoded as UTF-8, so a stored one broke every later read of the record.
* **Merchant ids** (``product_id``, ``customer_id``) use a URL-safe alphabet: ASCII letters,
  digits and ``- . _ ~ : @``, with at least one letter or digit, so every id is one path
  segment as it is (never ``/``, ``.`` or ``..``) and needs no encoding in a path or query.
* **Timestamps** are ISO 8601 date and time, with an offset or (read as UTC) without one, and
  must lie between 0001-01-01 and 9999-12-31 once moved to UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

# Control characters refused in text (tab, line feed and carriage return are text).
_CONTROL_CLASS = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"
# What str.strip() removes, less the control characters refused anyway: spelled out rather than
# written \s, whose meaning differs between Python and the ECMA regexes of JSON Schema.
_SPACE_CLASS = "\\t\\n\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# Any text, blank included.
TEXT_PATTERN = f"^[^{_CONTROL_CLASS}]*$"
# Text with at least one character that is not white space (a required value).
NONBLANK_TEXT_PATTERN = (
    f"^[^{_CONTROL_CLASS}]*[^{_CONTROL_CLASS}{_SPACE_CLASS}][^{_CONTROL_CLASS}]*$"
)
_ID_CLASS = "A-Za-z0-9._~:@-"
ID_PATTERN = f"^[{_ID_CLASS}]*[A-Za-z0-9][{_ID_CLASS}]*$"
ID_ALPHABET = "ASCII letters, digits and - . _ ~ : @ (at least one letter or digit)"

_BAD_TEXT = re.compile(f"[{_CONTROL_CLASS}\\ud800-\\udfff]")
_ID = re.compile(ID_PATTERN)


def text_problem(value: str) -> str | None:
    """Why ``value`` is not acceptable text, or ``None``."""
    if value.isprintable():  # A C-level scan; printable text holds no refused character.
        return None
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return f"contains an unpaired UTF-16 surrogate (U+{ord(char):04X})"
    return f"contains a control character (U+{ord(char):04X})"


def id_problem(value: str) -> str | None:
    """Why ``value`` is not an acceptable merchant id, or ``None`` (length is checked apart)."""
    if _ID.match(value):
        return None
    return f"must use only {ID_ALPHABET}, got {value!r}"


def json_text_problems(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(path, problem)`` for every string (keys included) in a parsed JSON value that is not
    acceptable text; ``path`` reads like ``attributes.sizes[2]``."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            yield path, problem
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            problem = text_problem(str(key))
            if problem is not None:
                yield name, f"the key {problem}"
            yield from json_text_problems(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_text_problems(item, f"{path}[{index}]")


# Timestamps -----------------------------------------------------------------------------------
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


class TimestampError(ValueError):
    """Not a timestamp (``out_of_range`` False) or one outside years 1-9999 in UTC (True)."""

    def __init__(self, message: str, *, out_of_range: bool = False) -> None:
        super().__init__(message)
        self.out_of_range = out_of_range


def parse_timestamp(value: str, *, clamp: bool = False) -> datetime:
    """An aware UTC datetime from ISO 8601 text; without an offset the text is read as UTC.

    A moment that an offset moves before 0001-01-01 or after 9999-12-31 in UTC cannot be
    represented: it is refused (:class:`TimestampError` with ``out_of_range``), or with
    ``clamp`` (a bound of a range filter, where it selects exactly what the earliest or latest
    moment selects) replaced by that moment.
    """
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TimestampError(f"not an ISO 8601 timestamp: {value!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        if clamp:
            return EARLIEST if moment.year == 1 else LATEST
        raise TimestampError(
            f"outside years 1 to 9999 once moved to UTC: {value!r}", out_of_range=True
        ) from None
