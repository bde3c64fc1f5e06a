"""MySQL and MariaDB results through ConnectorX's Rust reader, straight into Arrow.

PyMySQL parses every row in Python; ConnectorX (``return_type="arrow_stream"``) reads the
binary protocol in Rust and hands over record batches. It is the read path when every
column of the result is an integer, a float, a decimal, a date, a DATETIME or TIMESTAMP, or
non-binary text, and the session is not encrypted (TLS sessions stay on PyMySQL, whose
certificate checks FlowForge configures); any other column type (ENUM, SET, BIT, TIME, JSON,
binary strings, ...) keeps the PyMySQL path of mysql.py.

ConnectorX stops the whole read with a panic on a value Rust's types cannot hold: MySQL's
"zero" dates (``0000-00-00``, ``2024-00-10``) and decimals of more than 28 digits or a
scale above 10. So the query is wrapped, ``SELECT ... FROM (query) AS q``: a DATE travels
as ``TO_DAYS(c)`` and a DATETIME or TIMESTAMP as ``TO_SECONDS(c) * 1000000 +
MICROSECOND(c)``, integers that are NULL for a zero date (read as NULL, as the PyMySQL path
and JDBC's ``zeroDateTimeBehavior=convertToNull`` do) and that Arrow turns into dates and
timestamps by subtraction; such a decimal travels as text (``CAST(c AS CHAR)``) and is cast
by Arrow.

The read runs on a second connection to the address the first one reached, with the same
user, database and session settings (``time_zone = '+00:00'``, read-only transactions,
utf8mb4, the statement time limit). Its statement carries a comment naming the read, so a
stream closed before its end can KILL the reading connection from the first one (a user
may always kill its own threads). Bound values are merged into the text by PyMySQL's
``mogrify``, the escaping PyMySQL always applies (it has no server-side parameters).
"""

from __future__ import annotations

import contextlib
import ssl
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from flowforge_ingest.connectors.arrowing import (
    SourceColumn,
    SourceQueryError,
    rebatch,
)
from flowforge_ingest.connectors.base import SourceReadError
from flowforge_ingest.connectors.registry import error_text
from flowforge_ingest.connectors.types import parse_source_type

_NATIVE = frozenset(
    {
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "integer",
        "bigint",
        "float",
        "double",
        "char",
        "varchar",
        "tinytext",
        "text",
        "mediumtext",
        "longtext",
    }
)
_ENCODED = frozenset({"decimal", "date", "datetime", "timestamp"})
# ConnectorX reads a decimal into Rust's 96-bit Decimal and then decimal128(38, 10).
_RUST_DECIMAL_DIGITS, _RUST_DECIMAL_SCALE = 28, 10
_BATCH_ROWS = 65_536
# A read's failures, as both read paths (and mysql.py's) tell them.
TIMED_OUT = (
    "MySQL stopped the query: it ran longer than the connection's queryTimeout; raise the "
    "timeout or read less at a time"
)
LOST = "the connection to MySQL was lost while reading; the job will be retried"
_DAYS_TO_1970, _DAYS_OF_YEAR_ZERO = 719_528, 366  # TO_DAYS('1970-01-01'), of '0001-01-01'
_MICROS_TO_1970 = 62_167_219_200 * 1_000_000  # TO_SECONDS('1970-01-01') in microseconds
_MICROS_OF_YEAR_ZERO = _DAYS_OF_YEAR_ZERO * 86_400 * 1_000_000
_MICROS, _MICROS_UTC = pa.timestamp("us"), pa.timestamp("us", tz="UTC")
_LOST_PHRASES = (
    "connection",
    "server has gone away",
    "lost connection",
    "broken pipe",
    "unexpected eof",
    "killed",
    "io error",  # the socket closed under a result: "CodecError { IO error: ... }"
    "ioerror",  # "IoError { server disconnected }"
)


def plain(columns: list[SourceColumn]) -> bool:
    """Whether every column of a result can be read through ConnectorX."""
    for column in columns:
        name = parse_source_type("mysql", column.source_type).name
        if name.removesuffix(" unsigned") not in _NATIVE | _ENCODED:
            return False
    return True


def encrypted(conn) -> bool:
    return isinstance(getattr(conn, "_sock", None), ssl.SSLSocket)


def url(conn) -> str:
    """A ConnectorX URL for the server PyMySQL connection ``conn`` reached (its address,
    not its name: the address was checked against the SSRF guard)."""
    address = conn._sock.getpeername()[0]  # noqa: SLF001 (the socket FlowForge opened)
    host = f"[{address}]" if ":" in address else address
    password = conn.password.decode("utf-8") if isinstance(conn.password, bytes) else ""
    database = conn.db.decode("utf-8") if isinstance(conn.db, bytes) else (conn.db or "")
    user = quote(conn.user or "", safe="")
    return f"mysql://{user}:{quote(password, safe='')}@{host}:{conn.port}/{quote(database)}"


def statement_text(conn, statement: str, params: dict[str, Any] | None) -> str:
    """The statement with its values escaped in by PyMySQL, as PyMySQL itself binds."""
    if not params:
        return statement
    with conn.cursor() as cursor:
        return cursor.mogrify(statement, params)


def wrapped(statement: str, columns: list[SourceColumn]) -> str:
    """The statement wrapped so that what ConnectorX cannot hold arrives as numbers or text."""
    parts = []
    for column in columns:
        name = "`" + column.name.replace("`", "``") + "`"
        value = f"q.{name}"
        encoding = _encoding(column)
        if encoding == "days":
            value = f"TO_DAYS({value})"
        elif encoding == "micros":
            fraction = "" if _whole_seconds(column) else f" + MICROSECOND({value})"
            value = f"TO_SECONDS({value}) * 1000000{fraction}"
        elif encoding == "text":
            value = f"CAST({value} AS CHAR)"
        parts.append(value if encoding == "native" else f"{value} AS {name}")
    return f"SELECT {', '.join(parts)} FROM ({statement}) AS q"  # noqa: S608 (quoted names)


def _whole_seconds(column: SourceColumn) -> bool:
    """A DATETIME or TIMESTAMP without fractional digits: MySQL spells the type with its
    digits whenever there are any (``datetime(6)``; COLUMN_TYPE and mysql.py alike)."""
    digits = parse_source_type("mysql", column.source_type).int_arg(0)
    return (digits if digits is not None else (column.scale or 0)) == 0


def _encoding(column: SourceColumn) -> str:
    """How a column travels: ``native``; ``days`` (TO_DAYS) for a DATE and ``micros``
    (TO_SECONDS * 10^6 + MICROSECOND) for a DATETIME or TIMESTAMP, which are NULL for a
    zero date; ``text`` for a decimal Rust's Decimal cannot hold."""
    source = parse_source_type("mysql", column.source_type)
    name = source.name.removesuffix(" unsigned")
    if name == "date":
        return "days"
    if name in ("datetime", "timestamp"):
        return "micros"
    if name != "decimal":
        return "native"
    precision = source.int_arg(0) if source.int_arg(0) is not None else column.precision
    scale = source.int_arg(1) if source.int_arg(1) is not None else column.scale
    too_big = (precision or 65) > _RUST_DECIMAL_DIGITS or (scale or 0) > _RUST_DECIMAL_SCALE
    return "text" if too_big else "native"


def session_statements(conn) -> list[str]:
    """The settings of PyMySQL connection ``conn``'s session, for the reading connection."""
    mariadb = "mariadb" in conn.get_server_info().lower()
    limit = "max_statement_time" if mariadb else "max_execution_time"
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT @@SESSION.{limit}")
        (value,) = cursor.fetchone()
    return [
        "SET NAMES utf8mb4",
        "SET time_zone = '+00:00'",
        "SET SESSION TRANSACTION READ ONLY",
        f"SET SESSION {limit} = {float(value) if mariadb else int(value)}",
    ]


class ArrowStream:
    """ConnectorX's batches of one query, converted to ``schema``, at most batch_size rows
    a batch; ``converters`` (mysql.py's) take what an Arrow cast refuses."""

    def __init__(
        self,
        source_url: str,
        sql: str,
        session: list[str],
        schema: pa.Schema,
        converters: list[Callable[[list], pa.Array]],
        batch_size: int,
        stop: Callable[[str], None],
    ) -> None:
        self.schema = schema
        self._url = source_url
        self._tag = f"flowforge-read {uuid.uuid4().hex}"
        self._sql = f"/* {self._tag} */ {sql}"
        self._stop = stop
        self._finished = False
        self._session = session
        self._converters = converters
        self._batch_size = batch_size
        self._reader = None
        self._closed = False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._closed:
            return iter(())
        return rebatch(self._batches(), self._batch_size)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        import connectorx

        try:
            self._reader = connectorx.read_sql(
                self._url,
                self._sql,
                return_type="arrow_stream",
                batch_size=_BATCH_ROWS,
                pre_execution_query=self._session,
            )
            while not self._closed:
                try:
                    batch = self._reader.read_next_batch()
                except StopIteration:
                    self._finished = True
                    return
                yield pa.RecordBatch.from_arrays(
                    [
                        self._column(batch.column(index), index)
                        for index in range(batch.num_columns)
                    ],
                    schema=self.schema,
                )
        except BaseException as error:
            if not _from_connectorx(error):
                raise
            raise read_error(error, self._url) from None
        finally:
            self.close()

    def _column(self, array: pa.Array, index: int) -> pa.Array:
        target = self.schema.field(index).type
        if array.type == target:
            return array
        if pa.types.is_integer(array.type) and pa.types.is_date32(target):
            return _since_year_zero(array, _DAYS_TO_1970, _DAYS_OF_YEAR_ZERO, pa.int32(), target)
        if pa.types.is_integer(array.type) and target in (_MICROS, _MICROS_UTC):
            return _since_year_zero(
                array, _MICROS_TO_1970, _MICROS_OF_YEAR_ZERO, pa.int64(), target
            )
        try:
            return array.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # anything a cast refuses: mysql.py's value-by-value path
            return self._converters[index](array.to_pylist())

    def close(self) -> None:
        """Closing before the end also ends the server's query: ConnectorX would go on
        reading it in its own thread."""
        self._closed = True
        if self._reader is not None:
            if not self._finished:
                self._stop(self._tag)
            with contextlib.suppress(BaseException):  # closing only
                self._reader.close()
            self._reader = None


def _since_year_zero(
    array: pa.Array, to_1970: int, year_zero: int, storage: pa.DataType, target: pa.DataType
) -> pa.Array:
    """TO_DAYS / TO_SECONDS counts (from year 0) as Arrow's days / microseconds since 1970;
    a date in year 0 is a zero date for MySQL's own drivers, so NULL as on the PyMySQL path."""
    values = array.cast(pa.int64())
    kept = pc.if_else(pc.less(values, year_zero), pa.scalar(None, pa.int64()), values)
    return pc.subtract(kept, to_1970).cast(storage).view(target)


def _from_connectorx(error: BaseException) -> bool:
    """ConnectorX reports errors as RuntimeError and Rust panics as pyo3's PanicException
    (a BaseException)."""
    return type(error).__name__ == "PanicException" or isinstance(error, RuntimeError)


def read_error(error: BaseException, source_url: str) -> Exception:
    """A ConnectorX failure as FlowForge's: transient when the connection died. The URL
    (it holds the password) never reaches the message."""
    text = error_text(error).replace(source_url, "mysql://...")
    first = next((line for line in text.splitlines() if line.strip()), text)[:500]
    lowered = text.lower()
    if "max_statement_time" in lowered or "max_execution_time" in lowered:
        return SourceQueryError(TIMED_OUT, first)
    if any(phrase in lowered for phrase in _LOST_PHRASES):
        return SourceReadError(LOST, first)
    return SourceQueryError(f"MySQL refused the query: {first}", first)
