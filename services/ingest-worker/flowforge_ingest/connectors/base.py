"""The one shape every database connector has, so SQL Server, PostgreSQL, MySQL/MariaDB,
Oracle, Snowflake and SQLite differ only where the databases really differ.

    Connector (one per dialect, in connectors/<dialect>.py)
      connect(params)            -> a DB-API connection (context manager), timeouts applied
      server_version(conn)       -> str
      list_tables(conn, schema)  -> [TableInfo]           tables and views, estimated rows
      describe(conn, schema, t)  -> [ColumnInfo]          source type, Arrow type, nullable, pk...
      procedures(conn)           -> [ProcedureInfo]       stored procedures and parameters
      execute_batches(conn, sql, params, batch_size, columns) -> BatchStream
                                                          a server-side cursor read as Arrow
      classify_error(error)      -> ConnectError          unreachable / refused / tls / login / database

SQL text comes from connectors/sql.py (built with SQLAlchemy Core for the dialect: quoted
identifiers, bound values); Arrow types from connectors/types.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import pyarrow as pa

from flowforge_shared.errors import PermanentError, TransientError


@dataclass(frozen=True)
class ConnectionParams:
    """Everything a connector needs to connect; the password is plaintext here, in the
    worker's memory only (it travels encrypted)."""

    db_type: str  # sql-server | postgresql | mysql | oracle | snowflake | sqlite
    host: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    authentication: str = (
        "sql"  # SQL Server: sql | windows | azure-ad-password | azure-ad-service-principal
    )
    options: Mapping[str, Any] = field(default_factory=dict)
    # encrypt, trustServerCertificate, applicationIntent, connectTimeout (s, default 10),
    # queryTimeout (s), schema, instance, warehouse, role, account ...
    resolved_addresses: tuple[str, ...] = ()  # from the SSRF check: connect to these

    @property
    def connect_timeout(self) -> int:
        return int(self.options.get("connectTimeout") or 10)

    @property
    def query_timeout(self) -> int | None:
        value = self.options.get("queryTimeout")
        return int(value) if value else None


@dataclass(frozen=True)
class TableInfo:
    schema: str | None
    name: str
    kind: str  # "table" | "view"
    estimated_rows: int | None


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    source_type: str  # as the database names it, e.g. "datetime2(7)", "numeric(18,2)"
    arrow_type: str  # str(pyarrow type), e.g. "timestamp[ns]", "decimal128(18, 2)"
    nullable: bool
    primary_key: bool = False
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None


@dataclass(frozen=True)
class ParameterInfo:
    name: str
    source_type: str
    direction: str = "in"  # in | out | inout


@dataclass(frozen=True)
class ProcedureInfo:
    schema: str | None
    name: str
    parameters: tuple[ParameterInfo, ...] = ()


class BatchStream(Protocol):
    """A streamed read: the Arrow schema first, then record batches of at most batch_size."""

    schema: pa.Schema

    def __iter__(self) -> Iterator[pa.RecordBatch]: ...

    def close(self) -> None: ...


class ConnectFailure(StrEnum):
    UNREACHABLE = "unreachable"  # DNS failure, no route, timeout
    REFUSED = "refused"  # nothing listens on the port
    TLS = "tls"  # TLS handshake, for another reason than the three below
    TLS_UNSUPPORTED = "tls-unsupported"  # the server offers no TLS (or not the kind required)
    TLS_UNTRUSTED = "tls-untrusted"  # its certificate is not signed by a trusted CA
    TLS_HOSTNAME = "tls-hostname"  # its certificate is for another host name
    LOGIN = "login"  # authentication failed
    DATABASE = "database"  # unknown database
    PROTOCOL = "protocol"  # something answered that does not speak the protocol
    OTHER = "other"


class ConnectError(PermanentError):
    """A connection that failed, told apart by kind, never with the password in it."""

    def __init__(self, kind: ConnectFailure, message: str, detail: str | None = None) -> None:
        super().__init__(message, detail)
        self.kind = kind

    def __reduce__(self):
        return (type(self), (self.kind, self.message, self.detail))


class SourceReadError(TransientError):
    """The connection dropped while reading: retry the job (writes are idempotent)."""


class Connector(Protocol):
    db_type: str

    def connect(self, params: ConnectionParams): ...

    def server_version(self, conn) -> str: ...

    def list_tables(self, conn, schema: str | None) -> list[TableInfo]: ...

    def describe(self, conn, schema: str | None, table: str) -> list[ColumnInfo]: ...

    def procedures(self, conn) -> list[ProcedureInfo]: ...

    def execute_batches(
        self,
        conn,
        sql: str,
        params: Mapping[str, Any] | None,
        batch_size: int,
        columns: list[ColumnInfo] | None = None,
    ) -> BatchStream: ...

    def classify_error(self, error: BaseException) -> ConnectError: ...
