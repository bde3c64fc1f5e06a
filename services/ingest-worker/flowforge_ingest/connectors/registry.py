"""Which connector serves a database type, and the failure vocabulary they share.

    connector_for(db_type) -> Connector        imports the driver module on first use
    connect_failure(kind, error, ...) -> ConnectError   the user's message for each kind
    scrub(text, secrets) -> str | None          a driver's text, or None when showing it
                                                could reveal the password

Every connector classifies its driver's errors into a :class:`ConnectFailure` kind and lets
:func:`connect_failure` word the message, so "the port refused the connection" reads the
same for SQL Server and for PostgreSQL. Messages name host, port, user and database; the
password never appears, not even in ``detail`` (the driver's own text, withheld whenever it
could reveal the password).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable

from flowforge_ingest.connectors.base import (
    ConnectError,
    ConnectFailure,
    ConnectionParams,
    Connector,
)
from flowforge_rules.databases import NAMES, label, server_label

_MODULES = {
    "postgresql": ("postgresql", "PostgresConnector"),
    "mysql": ("mysql", "MySQLConnector"),
    "mariadb": ("mysql", "MySQLConnector"),
    "sqlite": ("sqlite", "SQLiteConnector"),
    "sql-server": ("sqlserver", "SQLServerConnector"),
    "oracle": ("oracle", "OracleConnector"),
    "snowflake": ("snowflake", "SnowflakeConnector"),
}


def connector_for(db_type: str) -> Connector:
    """The connector for ``db_type`` (sql-server, postgresql, mysql, oracle, snowflake, sqlite)."""
    try:
        module_name, class_name = _MODULES[db_type]
    except KeyError:
        raise ValueError(
            f"unknown database type {db_type!r}; expected one of {', '.join(NAMES)}"
        ) from None
    # Drivers are imported here, not at the top: a worker that never reads Oracle never
    # pays for (or breaks on) oracledb.
    module = importlib.import_module(f"flowforge_ingest.connectors.{module_name}")
    return getattr(module, class_name)()


# --- failures ---------------------------------------------------------------------------------


MIN_SHOWN_LENGTH = 8
WITHHELD = "the driver's message is not shown: it could reveal the password"


def scrub(text: str, secrets: Iterable[str | None]) -> str | None:
    """``text`` when it can be shown as it is; None when it must be withheld because a
    secret (or its percent-encoded or escaped form) is in it, or because a secret is
    shorter than :data:`MIN_SHOWN_LENGTH`.

    Masking occurrences with stars is an oracle: with the password ``e``, "the PostgreSQL
    server" reads "th*** Postgr***SQL s***rv***r" and the stars spell the password; a
    password that is an ordinary word ("connection") or equals the user name is recognised
    from the words around its stars. So nothing is starred: a text holding the password is
    not shown at all. A short password turns up in ordinary text by chance, and whether it
    did would itself say something about it, so with one no driver text is shown."""
    from urllib.parse import quote

    for secret in secrets:
        if not secret:
            continue
        if len(secret) < MIN_SHOWN_LENGTH:
            return None
        if any(
            form and form in text for form in (secret, quote(secret, safe=""), repr(secret)[1:-1])
        ):
            return None
    return text


def shown(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` if :func:`scrub` lets it be shown, else the words saying it was withheld."""
    kept = scrub(text, secrets)
    return WITHHELD if kept is None else kept


def error_text(error: BaseException) -> str:
    """A driver error's whole text, its causes included (the reason is often in a cause),
    joined with `` | ``, as are a driver's arguments (``1146 | Table 'x' doesn't exist``,
    and pymssql's ``(number, b"message")`` alike, not as a Python tuple). A driver's own
    lines stay one per line (see :func:`driver_lines`)."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for arg in current.args or (current,):
            for text in _arg_texts(arg):
                if text and text not in parts:
                    parts.append(text)
        current = current.__cause__ or current.__context__
    return " | ".join(parts)


def _arg_texts(arg: object) -> list[str]:
    if isinstance(arg, tuple):  # pymssql's connect errors: ((number, b"message"),)
        return [text for item in arg for text in _arg_texts(item)]
    return [driver_lines(arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg))]


# FreeTDS appends its own lines to the server's message without a line break when the
# server's text has none: 'database "x" does not existDB-Lib error message 20018, ...'.
_RUN_TOGETHER = re.compile(r"(?<=\S)(?=(?:DB-Lib|Net-Lib) error\b)")


def driver_lines(text: str) -> str:
    """A driver's message one line per message: lines it ran together split apart, blank
    lines and trailing blanks dropped (leading blanks kept: a ``^`` under a query's text)."""
    text = _RUN_TOGETHER.sub("\n", text)
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())


def where(db_type: str, params: ConnectionParams | None) -> str:
    """``the PostgreSQL server db.example.com:5432``, ``the SQL Server db:1433``, ``the
    SQLite file '/data/bank.db'`` for messages."""
    if params is None or not (params.host or params.database):
        return server_label(db_type)
    if db_type == "sqlite":
        return f"the SQLite file {params.database!r}"
    host = params.host or ""
    port = f":{params.port}" if params.port else ""
    return f"{server_label(db_type)} {host}{port}"


_GENERIC = [
    # kinds told apart by the operating system's words, which every driver passes on
    (ConnectFailure.REFUSED, re.compile(r"connection refused|errno 111|\(111\)|10061", re.I)),
    (
        ConnectFailure.UNREACHABLE,
        re.compile(
            r"name or service not known|nodename nor servname|could not translate host name|"
            r"temporary failure in name resolution|no address associated|getaddrinfo|"
            r"errno -[235]\b|unknown host|no route to host|network is unreachable|"
            r"host is unreachable|timed out|timeout expired|time-out|errno 11[03]\b",
            re.I,
        ),
    ),
    (ConnectFailure.TLS, re.compile(r"\bssl\b|\btls\b|certificate|handshake", re.I)),
]


def generic_kind(text: str) -> ConnectFailure | None:
    """The kind the operating system's words in ``text`` point to, if any."""
    for kind, pattern in _GENERIC:
        if pattern.search(text):
            return kind
    return None


def connect_failure(
    kind: ConnectFailure,
    error: BaseException | str,
    db_type: str,
    params: ConnectionParams | None = None,
) -> ConnectError:
    """The ConnectError of ``kind`` with the user's message and the scrubbed driver text."""
    secrets = [params.password] if params is not None else []
    detail = scrub(error if isinstance(error, str) else error_text(error), secrets)
    answered = False
    if kind is ConnectFailure.UNREACHABLE and params is not None:
        answered = port_answers(db_type, params)
        if answered:
            kind = ConnectFailure.PROTOCOL
    place = where(db_type, params)
    name = label(db_type)
    server = server_label(db_type).removeprefix("the ")
    user = f" {params.username!r}" if params is not None and params.username else ""
    database = f" {params.database!r}" if params is not None and params.database else ""
    messages = {
        ConnectFailure.UNREACHABLE: (
            f"cannot reach {place}: the host does not answer in time (no route, or a "
            "firewall drops the connection); check the host, the port and that the worker's "
            "network can reach it"
            if params is not None and params.resolved_addresses
            else f"cannot reach {place}: the host name does not resolve, or the host does not "
            "answer in time (no route, or a firewall drops the connection); check the host "
            "name and that the worker's network can reach it"
        ),
        ConnectFailure.REFUSED: (
            f"{place} refused the connection: nothing listens on that port; check the port "
            "and that the database server is running"
        ),
        ConnectFailure.TLS: (
            f"the encrypted (TLS/SSL) connection to {place} failed; check the encryption "
            "settings, that the server offers TLS, and its certificate"
        ),
        ConnectFailure.TLS_UNSUPPORTED: (
            f"{place} does not offer the encryption this connection requires"
            + (
                " (strict: TLS before the first TDS byte, TDS 8.0)"
                if params is not None and str(params.options.get("encrypt", "")).lower() == "strict"
                else " (TLS)"
            )
            + "; use encrypt=mandatory, enable TLS on the server, or (only on a trusted "
            "network) encrypt=optional"
        ),
        ConnectFailure.TLS_UNTRUSTED: (
            f"the certificate of {place} is not trusted: no certificate authority the worker "
            "trusts signed it (a self-signed certificate?); give the CA's certificate in "
            "options.caFile (PEM), add it to the worker's CA store or SSL_CERT_FILE, or only "
            "if you accept an unverified server, set trustServerCertificate"
        ),
        ConnectFailure.TLS_HOSTNAME: (
            f"the certificate of {place} is for another host name: connect with a name the "
            "certificate lists, or set options.hostNameInCertificate to the name it lists"
        ),
        ConnectFailure.LOGIN: (
            f"{place} rejected the login of user{user}: check the user name and password "
            "(and that this user may connect from the worker)"
        ),
        ConnectFailure.DATABASE: (
            f"{place} has no database{database} this user can open; check the database name "
            "and the user's permissions"
        ),
        ConnectFailure.PROTOCOL: (
            f"{place} is not an SQLite database: the file holds something else"
            if db_type == "sqlite"
            else f"something answered on {_address(db_type, params)}, but it is not a {server}: it does "
            f"not speak the {name} protocol"
            + (" (it accepted the connection, then said nothing)" if answered else "")
            + "; check the port: is it another service's?"
        ),
        ConnectFailure.OTHER: (
            f"could not connect to {place}: {_first_line(detail)}"
            if detail is not None
            else f"could not connect to {place}; {WITHHELD}"
        ),
    }
    # The messages are FlowForge's words and the fields the user saved (shown by the API
    # anyway): never starred, which would make them an oracle on the password too.
    return ConnectError(kind, messages[kind], WITHHELD if detail is None else detail)


_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "sql-server": 1433, "oracle": 1521}
PROBE_SECONDS = 3.0


def port_answers(db_type: str, params: ConnectionParams) -> bool:
    """Whether a plain TCP connection to the server's checked address and port succeeds.

    A driver that times out waiting for the server's first words cannot tell "nothing there"
    from "something there that keeps quiet" (libpq says "connection timeout expired" for a
    firewall and for Redis or an HTTP server alike); the operating system can. Only the
    address the network guard checked is used, never a new lookup of the name."""
    port = params.port or _DEFAULT_PORTS.get(db_type)
    if not params.resolved_addresses or port is None:
        return False
    import socket

    try:
        with socket.create_connection(
            (params.resolved_addresses[0], port),
            timeout=min(float(params.connect_timeout), PROBE_SECONDS),
        ):
            return True
    except OSError:
        return False


def _address(db_type: str, params: ConnectionParams | None) -> str:
    if params is None or not params.host:
        return "that address"
    port = params.port or _DEFAULT_PORTS.get(db_type)
    return f"{params.host}:{port}" if port else params.host


def first_address(db_type: str, params: ConnectionParams, port: int) -> str:
    """The address to connect to: the checked ``resolved_addresses[0]``, else the host
    resolved here within the connect timeout (for drivers whose own DNS failure says
    nothing, such as FreeTDS's "Unknown error")."""
    if params.resolved_addresses:
        return params.resolved_addresses[0]
    if not params.host:
        raise ConnectError(ConnectFailure.OTHER, f"give the host of {server_label(db_type)}")
    import socket
    import threading

    outcome: dict[str, object] = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome["value"] = socket.getaddrinfo(params.host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:  # UnicodeError: a name DNS cannot carry
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=lookup, name="resolve", daemon=True).start()
    if not done.wait(params.connect_timeout):
        raise connect_failure(ConnectFailure.UNREACHABLE, "host lookup timed out", db_type, params)
    if "error" in outcome:
        error = outcome["error"]
        assert isinstance(error, OSError | UnicodeError)
        raise connect_failure(ConnectFailure.UNREACHABLE, error, db_type, params)
    addresses = outcome["value"]
    assert isinstance(addresses, list)
    return str(addresses[0][4][0])


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line if len(line) <= 200 else line[:197] + "..."
