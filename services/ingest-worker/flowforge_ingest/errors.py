"""The errors the ingest worker raises, placed in FlowForge's shared tree.

::

    flowforge_shared.errors.PermanentError      fail the job at once
    ├── LandingPathError       fileConfig.filePath is unsafe, missing or not a file
    ├── CsvFormatError         the file as a whole cannot be read (encoding, header, config)
    ├── MalformedRowError      one row is wrong (field count, a value of the wrong type)
    ├── SchemaDriftError       the data no longer fits the bronze table's schema
    └── flowforge_runtime.job.Cancelled
        └── Cancelled          the run was asked to stop; nothing was committed
    flowforge_shared.errors.TransientError      retry with backoff
    └── ConcurrentWriteError   another writer committed to the table first

Every message is written for the user who owns the job: it names the file, the row and the
column when they are known, and says what to change. The exceptions are picklable (they
cross the task queue): the constructor takes ``(message, detail)`` positionally like every
TaskError, and the extra attributes travel in ``__dict__``.
"""

from __future__ import annotations

from flowforge_runtime.job import Cancelled as RunCancelled
from flowforge_shared.errors import PermanentError, TransientError


class LandingPathError(PermanentError):
    """fileConfig.filePath escapes the landing area, does not exist, or is not a file."""


class CsvFormatError(PermanentError):
    """The file as a whole cannot be read with the given fileConfig."""


class MalformedRowError(PermanentError):
    """A row does not fit the file's shape or a column's type (malformedRows: fail)."""

    def __init__(
        self,
        message: str,
        detail: str | None = None,
        *,
        source: str | None = None,
        source_row: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message, detail)
        self.source = source
        self.source_row = source_row
        self.column = column


class SchemaDriftError(PermanentError):
    """The incoming columns cannot be stored in the existing bronze table."""

    def __init__(
        self,
        message: str,
        detail: str | None = None,
        *,
        table: str | None = None,
        column: str | None = None,
        table_type: str | None = None,
        source_type: str | None = None,
    ) -> None:
        super().__init__(message, detail)
        self.table = table
        self.column = column
        self.table_type = table_type
        self.source_type = source_type


class ConcurrentWriteError(TransientError):
    """Another writer committed to the table between our read and our commit."""


class Cancelled(RunCancelled):
    """The run was asked to stop; the write was abandoned before its commit."""
