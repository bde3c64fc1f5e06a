"""The words of failure messages (issue 11, defect 7): a database's name reads right in every
sentence ("the SQL Server db:1433", never "the SQL Server server"), and a driver's message
lines that it ran together ("does not existDB-Lib error message ...") are shown apart."""

from __future__ import annotations

import pytest

from flowforge_ingest.connectors.base import ConnectError, ConnectFailure, ConnectionParams
from flowforge_ingest.connectors.registry import connect_failure, error_text, first_address
from flowforge_rules.network import OptionRefused, refuse_dangerous_options

DB_TYPES = ("sql-server", "postgresql", "mysql", "oracle", "snowflake", "sqlite")
PLACES = {
    "sql-server": "the SQL Server db.example:1433",
    "postgresql": "the PostgreSQL server db.example:5432",
    "mysql": "the MySQL/MariaDB server db.example:3306",
    "oracle": "the Oracle server db.example:1521",
    "snowflake": "the Snowflake server db.example:443",
    "sqlite": "the SQLite file '/data/bank.db'",
}
PORTS = {"sql-server": 1433, "postgresql": 5432, "mysql": 3306, "oracle": 1521, "snowflake": 443}


def params(db_type: str) -> ConnectionParams:
    if db_type == "sqlite":
        return ConnectionParams(db_type="sqlite", database="/data/bank.db")
    return ConnectionParams(
        db_type=db_type,
        host="db.example",
        port=PORTS[db_type],
        database="bank",
        username="loader",
        password="a-long-secret-1",
    )


@pytest.mark.parametrize("db_type", DB_TYPES)
@pytest.mark.parametrize("kind", list(ConnectFailure))
def test_every_failure_names_the_database_once(db_type, kind):
    if kind is ConnectFailure.UNREACHABLE:
        kind = ConnectFailure.REFUSED  # unreachable probes the port; its wording is alike
    message = connect_failure(kind, "boom", db_type, params(db_type)).message
    assert "Server server" not in message and "SQL Server server" not in message
    assert "SQLite server" not in message
    if kind is not ConnectFailure.PROTOCOL:
        assert PLACES[db_type] in message, message


def test_sql_server_messages_read_as_sentences():
    failures = {
        kind: connect_failure(kind, "boom", "sql-server", params("sql-server")).message
        for kind in ConnectFailure
    }
    assert failures[ConnectFailure.REFUSED].startswith(
        "the SQL Server db.example:1433 refused the connection"
    )
    assert failures[ConnectFailure.LOGIN].startswith(
        "the SQL Server db.example:1433 rejected the login of user 'loader'"
    )
    assert failures[ConnectFailure.DATABASE].startswith(
        "the SQL Server db.example:1433 has no database 'bank'"
    )
    assert (
        failures[ConnectFailure.OTHER]
        == "could not connect to the SQL Server db.example:1433: boom"
    )
    assert "but it is not a SQL Server:" in failures[ConnectFailure.PROTOCOL]


@pytest.mark.parametrize(
    ("db_type", "expected"),
    [
        ("sql-server", "could not connect to the SQL Server: boom"),
        ("postgresql", "could not connect to the PostgreSQL server: boom"),
        ("sqlite", "could not connect to the SQLite database: boom"),
    ],
)
def test_without_connection_fields_the_database_is_still_named_right(db_type, expected):
    assert connect_failure(ConnectFailure.OTHER, "boom", db_type, None).message == expected


def test_a_missing_host_is_asked_for_by_the_databases_name():
    with pytest.raises(ConnectError) as raised:
        first_address("sql-server", ConnectionParams(db_type="sql-server"), 1433)
    assert raised.value.message == "give the host of the SQL Server"
    with pytest.raises(ConnectError) as raised:
        first_address("postgresql", ConnectionParams(db_type="postgresql"), 5432)
    assert raised.value.message == "give the host of the PostgreSQL server"


def test_refused_options_name_the_database_as_people_do():
    with pytest.raises(OptionRefused) as raised:
        refuse_dangerous_options("mysql", {"local_infile": "1"})
    assert "lets the MySQL/MariaDB server read files" in str(raised.value)
    with pytest.raises(OptionRefused) as raised:
        refuse_dangerous_options("sql-server", {"InitialFileName": "/x.mdf"})
    assert "makes the SQL Server driver use a file" in str(raised.value)
    assert "sql-server" not in str(raised.value)


# --- driver messages run together -----------------------------------------------------------

GLUED = (
    b'database "nope" does not existDB-Lib error message 20018, severity 16:\n'
    b"General SQL Server error: Check messages from the SQL Server\n"
)


def test_driver_lines_run_together_are_shown_apart():
    # a DB-API error carrying (number, message) as FreeTDS-based drivers raise it
    error = RuntimeError((911, GLUED))
    text = error_text(error)
    assert "existDB-Lib" not in text
    assert text.splitlines() == [
        '911 | database "nope" does not exist',
        "DB-Lib error message 20018, severity 16:",
        "General SQL Server error: Check messages from the SQL Server",
    ]
    # the user's one-line message takes the server's own line, not a Python repr
    other = connect_failure(ConnectFailure.OTHER, error, "sql-server", params("sql-server"))
    assert other.message == (
        'could not connect to the SQL Server db.example:1433: 911 | database "nope" does not exist'
    )
    assert other.detail == text


def test_a_sql_server_read_error_shows_the_servers_line():
    import mssql_python

    from flowforge_ingest.connectors.sqlserver import read_error

    # as mssql-python 1.16 raised it against Babelfish 4.2
    error = mssql_python.ProgrammingError(
        driver_error="Syntax error or access violation",
        ddbc_error="[Microsoft][SQL Server]Invalid object name 'sales.Orders'.",
    )
    refused = read_error(error)
    assert refused.message == "SQL Server refused the query: Invalid object name 'sales.Orders'."
    assert "Syntax error or access violation" in refused.detail


def test_causes_are_joined_with_a_separator_and_blank_lines_dropped():
    try:
        try:
            raise OSError("Connection refused (111)\n\n")
        except OSError as cause:
            raise RuntimeError("could not open the session\n") from cause
    except RuntimeError as error:
        assert error_text(error) == "could not open the session | Connection refused (111)"


def test_a_pointer_line_keeps_its_indentation():
    text = error_text(
        ValueError('syntax error at or near "y"\nLINE 1: SELECT x y\n' + " " * 17 + "^\n")
    )
    assert text.splitlines()[-1] == " " * 17 + "^"
