"""SQLAlchemy Core statements of one transaction sent to PostgreSQL together.

A run event's record is a handful of statements, each of which cost a round trip to the
server when sent one at a time (and psycopg adds one for its ``BEGIN``). In psycopg's
pipeline mode the statements of one :meth:`Statements.send` go out together and their
results come back together: one round trip for the lot. The server still runs them one
after another, in order, each with its own snapshot (READ COMMITTED): a statement queued
after a ``SELECT ... FOR UPDATE`` runs once that lock is held.

:class:`Statements` takes Core statements with named bind parameters (compiled once per
process and statement shape), runs them in a pipeline on PostgreSQL and one by one through
the session's connection elsewhere (SQLite: no network, nothing to save). With
``own_transaction`` it also owns the transaction on PostgreSQL: the session's connection is
put in autocommit mode (psycopg then sends no ``BEGIN`` of its own, which it would send
alone, a round trip) and the first :meth:`~Statements.send` begins with ``BEGIN``;
:meth:`~Statements.send` with ``commit=True`` ends with ``COMMIT``, in the same round trip
as the statements before it. A failure anywhere leaves the transaction to the session's
rollback (psycopg sends ``ROLLBACK`` while a transaction is open, autocommit or not)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any] | None


class Compiled:
    """A statement compiled for one dialect: its SQL, how each parameter is bound, how each
    result column is read."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.compiled = compiled
        self.sql = compiled.string
        self.binds: dict[str, Processor] = {
            name: param.type.dialect_impl(dialect).bind_processor(dialect)
            for name, param in compiled.binds.items()
        }
        # what a SELECT selects, what an INSERT / UPDATE returns (nothing without RETURNING)
        columns = getattr(statement, "exported_columns", ())
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.results = bool(processors)
        self._converted = [(i, p) for i, p in enumerate(processors) if p is not None]

    def parameters(self, values: dict[str, Any]) -> dict[str, Any]:
        bound = self.compiled.construct_params(values)
        binds = self.binds
        return {
            name: value if (processor := binds.get(name)) is None else processor(value)
            for name, value in bound.items()
        }

    def row(self, values: Sequence[Any]) -> Sequence[Any]:
        """A row as read (only the columns whose type converts what the driver gives)."""
        if not self._converted:
            return values
        row = list(values)
        for index, processor in self._converted:
            row[index] = processor(row[index])
        return row


_compiled: dict[tuple[Any, str, str], Compiled] = {}


def compiled(key: Any, statement: Callable[[], ClauseElement], dialect: Dialect) -> Compiled:
    """The statement ``key`` names, compiled once per process and dialect (``statement``
    builds it the first time)."""
    cache_key = (key, dialect.name, dialect.driver)
    found = _compiled.get(cache_key)
    if found is None:
        found = _compiled[cache_key] = Compiled(statement(), dialect)
    return found


class Result:
    """The rows of one statement, once its :meth:`Statements.send` returned."""

    def __init__(self) -> None:
        self.rows: list[Sequence[Any]] = []

    def first(self) -> Sequence[Any] | None:
        return self.rows[0] if self.rows else None


class Statements:
    def __init__(self, session: Session, *, own_transaction: bool = False) -> None:
        self.session = session
        dialect = session.get_bind().dialect
        self.pipelined = dialect.name == "postgresql"
        self.own = own_transaction and self.pipelined and not session.in_transaction()
        options = {"isolation_level": "AUTOCOMMIT"} if self.own else {}
        self.connection: Connection = session.connection(execution_options=options)
        self.dialect = self.connection.dialect
        self.begun = False
        self._queued: list[tuple[str, Any, Compiled, dict[str, Any], Result]] = []

    def add(
        self, key: Any, statement: Callable[[], ClauseElement], values: dict[str, Any]
    ) -> Result:
        """Queue a statement (named by ``key``, built by ``statement`` the first time) with
        its parameters; its rows are there once :meth:`send` returned."""
        result = Result()
        self._queued.append(
            (key, statement, compiled(key, statement, self.dialect), values, result)
        )
        return result

    def send(self, *, commit: bool = False) -> None:
        """Run the queued statements (PostgreSQL: in one round trip); with ``commit``, and a
        transaction of its own, commit it in that same trip."""
        queued, self._queued = self._queued, []
        self.session.flush()  # the session's pending ORM changes first, as its autoflush would
        if not self.pipelined:
            for _key, _statement, found, values, result in queued:
                rows = self.connection.execute(found.compiled.statement, values)
                result.rows = [tuple(row) for row in rows] if rows.returns_rows else []
            return
        self._send_pipelined(queued, commit=commit and self.own)

    def _send_pipelined(self, queued, *, commit: bool) -> None:
        fairy = self.connection.connection  # the pool's proxy of the psycopg connection
        raw = fairy.driver_connection
        cursors = []
        statement, parameters = None, None
        try:
            with raw.pipeline():
                if self.own and not self.begun:
                    raw.execute("BEGIN")
                    self.begun = True
                for _key, _statement, found, values, result in queued:
                    statement, parameters = found.sql, found.parameters(values)
                    cursor = raw.cursor()
                    cursor.execute(statement, parameters)
                    cursors.append((cursor, found, result))
                if commit:
                    raw.execute("COMMIT")
            # leaving the pipeline sent it with a Sync: every result is in
            for cursor, found, result in cursors:
                if found.results:  # a SELECT, or RETURNING (psycopg's description is dearer)
                    result.rows = [found.row(row) for row in cursor.fetchall()]
                cursor.close()
        except self.dialect.loaded_dbapi.Error as error:
            raise self._wrapped(error, statement, parameters) from error

    def _wrapped(self, error: Exception, statement: str | None, parameters: Any) -> Exception:
        """SQLAlchemy's exception for a driver error, as if SQLAlchemy had run the
        statement: a connection the server dropped invalidates it and the pool's other
        connections (``connection_invalidated``: an outage the events worker retries)."""
        fairy = self.connection.connection
        lost = self.dialect.is_disconnect(error, fairy.driver_connection, None)
        if lost:
            self.connection.invalidate(error)
            self.connection.engine.dispose(close=False)
        return exc.DBAPIError.instance(
            statement,
            parameters,
            error,
            self.dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=self.dialect,
        )
