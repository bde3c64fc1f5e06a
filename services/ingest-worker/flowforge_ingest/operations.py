"""Database operations an API asks a worker for: test a connection, list tables, describe a
table, preview rows, list procedures. Plain functions; the Celery task and the in-process
runner both call :func:`perform`, which always answers with JSON-ready data and never raises
(a failure is ``{"success": false, "kind", "message"}``, without the password). Kinds: the
connection failures of :class:`ConnectFailure`, ``query`` (connected, but the database
refused: no such table, no permission), ``request`` (the request itself is wrong),
``refused`` (the network guard said no) and ``secret`` (the password cannot be decrypted)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from pathlib import Path
from typing import Any

from flowforge_ingest.connectors.arrowing import SourceDataError, SourceQueryError
from flowforge_ingest.connectors.base import ConnectError, ConnectFailure, ConnectionParams
from flowforge_rules.network import (
    HostLookupError,
    OptionRefused,
    TargetRefused,
    ca_file_path,
    check_target,
    refuse_dangerous_options,
)
from flowforge_shared.operations import QUERY_FAILED, REQUEST_FAILED
from flowforge_shared.secrets import SecretBox, SecretKeyError
from flowforge_shared.settings import Settings

PREVIEW_MAX_BYTES = 1_000_000

PREVIEW_MAX_TEXT = 2_000


def connection_params(payload: dict[str, Any], settings: Settings) -> ConnectionParams:
    """Decrypt, check the target once (SSRF guard) and refuse dangerous options."""
    box = SecretBox.from_setting(
        settings.secret_key, settings.data_dir, allow_key_file=settings.is_local
    )
    encrypted = payload.get("passwordEncrypted")
    password = box.decrypt(encrypted) if encrypted else None
    db_type = payload["type"]
    options = dict(payload.get("options") or {})
    host, port, database = payload.get("host"), payload.get("port"), payload.get("database")
    resolved = []
    if host and db_type not in ("sqlite", "snowflake"):
        resolved = check_target(host, port, allow=settings.allow_list, deny=settings.deny_list)
    refuse_dangerous_options(
        db_type,
        options,
        host=host,
        database=database,
        resolved=resolved,
        sqlite_root=settings.sqlite_root,
        ca_root=settings.ca_root,
    )
    if db_type == "sqlite" and database and not Path(database).is_absolute():
        database = str(settings.sqlite_root / database)
    if db_type == "sql-server" and options.get("caFile"):
        options["caFile"] = str(ca_file_path(str(options["caFile"]), settings.ca_root))
    return ConnectionParams(
        db_type=db_type,
        host=host,
        port=port,
        database=database,
        username=payload.get("username"),
        password=password,
        authentication=payload.get("authentication") or "sql",
        options=options,
        resolved_addresses=tuple(address.address for address in resolved),
    )


def perform(
    operation: str, payload: dict[str, Any], args: dict[str, Any], settings: Settings
) -> dict:
    from flowforge_ingest.connectors.registry import connector_for

    try:
        params = connection_params(payload, settings)
    except (TargetRefused, OptionRefused) as error:
        return _failure("refused", str(error))
    except HostLookupError as error:
        return _failure(ConnectFailure.UNREACHABLE.value, str(error))
    except SecretKeyError as error:
        return _failure("secret", str(error))
    except ValueError as error:  # a stored field no driver can take (saved before checks)
        return _failure(REQUEST_FAILED, str(error))
    connector = connector_for(params.db_type)
    try:
        with connector.connect(params) as conn:
            if operation == "test":
                tables = connector.list_tables(conn, params.options.get("schema"))
                version = connector.server_version(conn)
                return {
                    "success": True,
                    "message": f"connected to {params.db_type} {version}".strip(),
                    "serverVersion": version,
                    "tables": [_table(t) for t in tables],
                }
            return {"success": True, "result": _operation(connector, conn, params, operation, args)}
    except ConnectError as error:
        return _failure(error.kind.value, error.message)
    except (SourceQueryError, SourceDataError) as error:
        # Connected, and the database said what is wrong (no such table, no permission, a
        # value Arrow cannot hold): its words, not "could not connect".
        return _failure(QUERY_FAILED, error.message)
    except (ValueError, LookupError) as error:
        return _failure(REQUEST_FAILED, str(error))
    except Exception as error:  # noqa: BLE001 - a driver error becomes a classified answer
        classified = connector.classify_error(error)
        return _failure(classified.kind.value, classified.message)


def _operation(connector, conn, params: ConnectionParams, operation: str, args: dict) -> dict:
    schema = args.get("schema") or params.options.get("schema")
    if operation == "tables":
        tables = connector.list_tables(conn, schema)
        return {"data": [_table(t) for t in tables], "count": len(tables)}
    if operation == "schema":
        columns = connector.describe(conn, schema, args["table"])
        if not columns:
            raise LookupError(f"no table {args['table']!r} (or it has no columns)")
        return {"table": args["table"], "schema": schema, "columns": [_column(c) for c in columns]}
    if operation == "preview":
        return _preview(connector, conn, params, schema, args["table"], int(args.get("limit", 10)))
    if operation == "procedures":
        procedures = connector.procedures(conn)
        return {
            "data": [
                {
                    "schema": p.schema,
                    "name": p.name,
                    "parameters": [
                        {
                            "name": parameter.name,
                            "sourceType": parameter.source_type,
                            "direction": parameter.direction,
                        }
                        for parameter in p.parameters
                    ],
                }
                for p in procedures
            ],
            "count": len(procedures),
        }
    raise ValueError(f"unknown operation {operation!r}")


def _preview(connector, conn, params, schema, table: str, limit: int) -> dict:
    from flowforge_ingest.connectors.sql import plan_preview

    columns = connector.describe(conn, schema, table)
    if not columns:
        raise LookupError(f"no table {table!r}")
    plan = plan_preview(params.db_type, schema=schema, table=table, limit=limit)
    stream = connector.execute_batches(conn, plan.sql, plan.params, limit, columns)
    rows, size, truncated = [], 0, False
    try:
        for batch in stream:
            for row in batch.to_pylist():
                safe = {key: _json_value(value) for key, value in row.items()}
                size += len(str(safe))
                if size > PREVIEW_MAX_BYTES or len(rows) >= limit:
                    truncated = True
                    break
                rows.append(safe)
            if truncated:
                break
    finally:
        stream.close()
    return {
        "columns": [_column(c) for c in columns],
        "rows": rows,
        "truncated": truncated,
    }


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "base64:" + base64.b64encode(bytes(value)[:PREVIEW_MAX_TEXT]).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    text = str(value)
    return text if len(text) <= PREVIEW_MAX_TEXT else text[:PREVIEW_MAX_TEXT] + "…"


def _table(table) -> dict:
    return {
        "schema": table.schema,
        "name": table.name,
        "kind": table.kind,
        "estimatedRows": table.estimated_rows,
    }


def _column(column) -> dict:
    return {
        "name": column.name,
        "sourceType": column.source_type,
        "arrowType": column.arrow_type,
        "nullable": column.nullable,
        "primaryKey": column.primary_key,
        "maxLength": column.max_length,
        "precision": column.precision,
        "scale": column.scale,
    }


def _failure(kind: str, message: str) -> dict:
    return {"success": False, "kind": kind, "message": message}
