"""Which errors mean "FlowForge's own storage cannot be used right now" rather than a bug.

A full disk, a catalog database that does not answer, a SQLite file locked past its busy
timeout: the request was right, retrying later will work, and the user should be told so
(503 with ``Retry-After``) instead of "Internal Server Error". :func:`unavailable_reason`
says which of these an exception is, looking through SQLAlchemy's wrapper (``.orig``) and
the exception's causes, and by the codes the drivers give, not by their wording:

- SQLite: the primary result code (``sqlite_errorcode & 0xff``) FULL, IOERR, CANTOPEN,
  BUSY, LOCKED, NOMEM, READONLY;
- PostgreSQL (psycopg): SQLSTATE classes 08 (connection), 53 (insufficient resources:
  53100 is "could not extend file", a full disk), 58 (system I/O), and 57P01-57P03 (the
  server is shutting down or starting up); a psycopg ``OperationalError`` without SQLSTATE
  is a connection libpq could not open or lost (refused, reset, a FATAL while opening);
- SQLAlchemy: a connection it found dead (``connection_invalidated``), a pool with no free
  connection (``sqlalchemy.exc.TimeoutError``);
- the operating system: ``OSError`` with errno ENOSPC, EDQUOT, EIO, EROFS or EFBIG (a
  file-size limit, ``ulimit -f``). Rust and C++
  storage layers (delta-rs, Arrow) drop the errno and keep only its text, so the system's
  own wording of ENOSPC (``os.strerror``) is looked for in theirs.

Only the *kind* is reported, never the driver's text: it could name hosts, paths or users.
"""

from __future__ import annotations

import errno
import os
import sqlite3

from sqlalchemy import exc as sa_exc

RETRY_AFTER_SECONDS = 30

CATALOG = "the catalog database cannot be used"
STORAGE = "FlowForge's storage cannot be used"
DISK_FULL = "its disk is full"

_SQLITE_REASONS = {
    sqlite3.SQLITE_FULL: DISK_FULL,
    sqlite3.SQLITE_IOERR: "its disk reported an I/O error",
    sqlite3.SQLITE_CANTOPEN: "its file cannot be opened",
    sqlite3.SQLITE_BUSY: "it is locked by another writer",
    sqlite3.SQLITE_LOCKED: "it is locked by another writer",
    sqlite3.SQLITE_NOMEM: "it ran out of memory",
    sqlite3.SQLITE_READONLY: "its file or disk does not accept writes",
}
_POSTGRES_REASONS = {
    "53100": DISK_FULL,  # disk_full: "could not extend file ..."
    "53200": "it ran out of memory",
    "53300": "it has no free connection slot",
    "57P01": "it is shutting down",
    "57P02": "it is shutting down",
    "57P03": "it is starting up or shutting down",
}
_POSTGRES_CLASSES = {
    "08": "the connection to it failed",
    "53": "it ran out of resources",
    "58": "its disk reported an I/O error",
}
_OS_REASONS = {
    errno.ENOSPC: f"{STORAGE}: the disk is full (no space left on device)",
    errno.EDQUOT: f"{STORAGE}: the disk quota is used up",
    errno.EIO: f"{STORAGE}: the disk reported an I/O error",
    errno.EROFS: f"{STORAGE}: the disk is read-only",
    errno.EFBIG: f"{STORAGE}: a file reached the largest size the server allows",
}
_NO_SPACE_TEXT = os.strerror(errno.ENOSPC).lower()  # "no space left on device"


def unavailable_message(reason: str) -> str:
    """The 503 answer's text for a reason from :func:`unavailable_reason`."""
    return (
        f"{reason}; the request was not completed: send it again later (in "
        f"{RETRY_AFTER_SECONDS} s, or once an administrator has fixed this)"
    )


def unavailable_reason(error: BaseException) -> str | None:
    """What cannot be used and why (``the catalog database cannot be used: its disk is
    full``), or None when ``error`` is not an outage of FlowForge's storage."""
    for link in _chain(error):
        reason = _reason(link)
        if reason is not None:
            return reason
    return None


def _chain(error: BaseException, limit: int = 10):
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending and len(seen) < limit:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _reason(error: BaseException) -> str | None:
    if isinstance(error, sa_exc.TimeoutError):  # the pool: every connection is in use
        return f"{CATALOG}: no connection is free (too many requests at once)"
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return f"{CATALOG}: the connection to it was lost"
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        reason = _SQLITE_REASONS.get(code & 0xFF) if isinstance(code, int) else None
        return f"{CATALOG}: {reason}" if reason else None
    if type(error).__module__.startswith("psycopg"):
        return _postgres_reason(error)
    if isinstance(error, OSError) and error.errno in _OS_REASONS:
        return _OS_REASONS[error.errno]
    if _from_storage_library(error) and _NO_SPACE_TEXT in str(error).lower():
        return _OS_REASONS[errno.ENOSPC]
    return None


def _from_storage_library(error: BaseException) -> bool:
    # Only where the text is the system's: a message of ours may quote what a user typed.
    module = type(error).__module__
    return isinstance(error, OSError) or module.startswith(("deltalake", "pyarrow", "_internal"))


def _postgres_reason(error: BaseException) -> str | None:
    import psycopg

    if not isinstance(error, psycopg.Error):
        return None
    state = error.sqlstate
    if state is None:
        # libpq's own failures carry no SQLSTATE: refused, reset, timed out, and also a
        # FATAL the server sent while the connection was being opened.
        if isinstance(error, psycopg.OperationalError):
            return f"{CATALOG}: the connection to it failed or was lost"
        return None
    reason = _POSTGRES_REASONS.get(state) or _POSTGRES_CLASSES.get(state[:2])
    return f"{CATALOG}: {reason}" if reason else None
