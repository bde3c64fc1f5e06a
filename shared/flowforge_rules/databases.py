"""How messages name each database type: ``label`` (``SQL Server``, ``PostgreSQL``...) and
``server_label`` (``the SQL Server``, ``the PostgreSQL server``)."""

from __future__ import annotations

NAMES = {
    "postgresql": "PostgreSQL",
    "mysql": "MySQL/MariaDB",
    "sqlite": "SQLite",
    "sql-server": "SQL Server",
    "oracle": "Oracle",
    "snowflake": "Snowflake",
}
"""Each database type FlowForge reads and the name messages give it."""


def label(db_type: str) -> str:
    """How messages name a database: ``SQL Server``, ``PostgreSQL``, ``MySQL/MariaDB``..."""
    return NAMES.get(db_type, db_type)


def server_label(db_type: str) -> str:
    """``the SQL Server``, ``the PostgreSQL server``, ``the SQLite database``: a database's
    server named once ("the SQL Server server" reads wrong)."""
    name = label(db_type)
    if db_type == "sqlite":
        return "the SQLite database"
    return f"the {name}" if name.endswith("Server") else f"the {name} server"
