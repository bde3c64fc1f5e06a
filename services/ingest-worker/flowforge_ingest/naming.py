"""What a database job read, named by the OpenLineage naming conventions, the same in every
run: ``postgres://host:5432`` + ``db.schema.table``, ``sqlserver://host:1433`` +
``db.schema.table``, ``mysql://host:3306`` + ``db.table``, ``oracle://host:1521`` +
``service.schema.table``, ``snowflake://account`` + ``db.schema.table``, and
``sqlite://<absolute path of the file>`` + ``table``.

A query names the tables it reads (sqlglot, in the source's dialect), each qualified with
the connection's database and schema where the query leaves them out; a query sqlglot cannot
read is one dataset named ``<database>.query``. A stored procedure is named like a table."""

from __future__ import annotations

import os

import sqlglot
from sqlglot import exp

from flowforge_ingest.connectors.base import ConnectionParams
from flowforge_rules.read_only_query import SQLGLOT_DIALECTS
from flowforge_shared.contracts.events import Dataset

SCHEMES = {
    "postgresql": "postgres",
    "sql-server": "sqlserver",
    "mysql": "mysql",
    "oracle": "oracle",
}
DEFAULT_PORTS = {"postgresql": 5432, "sql-server": 1433, "mysql": 3306, "oracle": 1521}


def namespace_of(params: ConnectionParams) -> str:
    if params.db_type == "sqlite":
        return "sqlite://" + os.path.abspath(params.database or "")
    if params.db_type == "snowflake":
        account = params.options.get("account") or params.host or ""
        return f"snowflake://{str(account).lower()}"
    scheme = SCHEMES.get(params.db_type, params.db_type)
    port = params.port or DEFAULT_PORTS.get(params.db_type)
    host = (params.host or "localhost").lower()
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _qualified(params: ConnectionParams, database: str | None, schema: str | None, name: str):
    if params.db_type == "sqlite":
        return name
    if params.db_type == "mysql":
        return ".".join(part for part in (schema or database, name) if part)
    return ".".join(part for part in (database, schema, name) if part)


def source_datasets(
    params: ConnectionParams,
    *,
    schema: str | None,
    table: str | None = None,
    procedure: str | None = None,
    query: str | None = None,
) -> list[Dataset]:
    """The datasets a job reads: its table or procedure, or the tables its query reads."""
    namespace = namespace_of(params)
    database = params.database if params.db_type not in ("sqlite",) else None
    if table or procedure:
        name = _qualified(params, database, schema, table or procedure or "")
        return [Dataset(namespace=namespace, name=name)]
    names = sorted(set(_query_tables(params, database, schema, query or "")))
    if not names:
        names = [_qualified(params, database, None, "query")]
    return [Dataset(namespace=namespace, name=name) for name in names]


def _query_tables(params: ConnectionParams, database, schema, query: str) -> list[str]:
    dialect = SQLGLOT_DIALECTS.get(params.db_type)
    try:
        tree = sqlglot.parse_one(query, read=dialect)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return []
    if tree is None:
        return []
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names = []
    for table in tree.find_all(exp.Table):
        if not table.name or (not table.db and table.name.lower() in ctes):
            continue
        names.append(_qualified(params, table.catalog or database, table.db or schema, table.name))
    return names
