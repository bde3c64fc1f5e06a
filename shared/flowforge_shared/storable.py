"""Values FlowForge can store and send on: checked once, where a request comes in.

Each limit is one a database or a driver enforces later, with an error no user can act on:

- PostgreSQL ``text`` and ``jsonb`` cannot hold NUL (``\\u0000``); C drivers (libpq, FreeTDS,
  the MySQL client) cut a string at it, and file systems refuse it in a path;
- a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON) is not Unicode text: encoding it to
  UTF-8 fails in sqlite3, psycopg and in the JSON response itself;
- SQLite and PostgreSQL store integers in 64 bits (Python's are unbounded);
- JSON has no infinity or NaN, yet Python's parser reads ``1e309`` as ``inf`` and accepts
  ``NaN``; such a value cannot be answered back as JSON.

:func:`problems` walks a parsed JSON document (or any str/int/float) and names where each
value breaks one of these limits; the web layer turns them into a 422 naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_REPORTED = 20

Path = tuple[str | int, ...]


def problem(value: object) -> str | None:
    """Why this one value cannot be stored, or None when it can."""
    if isinstance(value, str):
        if "\x00" in value:
            return "contains a NUL character (\\u0000), which cannot be stored"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode text (it holds an unpaired surrogate such as \\ud800)"
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return "is beyond the 64-bit integer range (-2^63 to 2^63-1)"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number (JSON numbers beyond ±1.8e308, NaN and Infinity are refused)"
    return None


def problems(document: object, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """``(path, message)`` for each value (and object key) in ``document`` that cannot be
    stored; at most :data:`MAX_REPORTED`. Iterative: a deeply nested document cannot
    exhaust the stack."""
    reported = 0
    pending: list[tuple[Path, object]] = [(path, document)]
    while pending and reported < MAX_REPORTED:
        where, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                message = problem(key)
                if message is not None:
                    reported += 1
                    yield where, f"has a key that {message}"
                    continue
                pending.append(((*where, key), item))
        elif isinstance(value, list | tuple):
            pending.extend(((*where, index), item) for index, item in enumerate(value))
        else:
            message = problem(value)
            if message is not None:
                reported += 1
                yield where, message
