"""Connection strings: read what users paste, write what drivers expect.

:func:`parse_connection_string` reads the forms users copy from their tools:

- ADO.NET ``Server=tcp:host,1433;Initial Catalog=db;User ID=u;Password=p;Encrypt=True``
  (with the synonyms Data Source, Address, Database, UID, PWD, Integrated Security, ...;
  values may be quoted ``"..."``/``'...'`` with the quote doubled inside, or ``{...}``);
- ODBC ``DRIVER={ODBC Driver 18 for SQL Server};SERVER=host,1433;UID=u;PWD={p;w}`` where
  ``{...}`` quotes a value and ``}}`` inside it is one ``}``;
- URLs ``mssql+pyodbc://``, ``postgresql[+psycopg]://``, ``mysql[+pymysql]://``,
  ``mariadb://``, ``oracle+oracledb://``, ``snowflake://user:pw@account/db/schema``,
  ``sqlite:///path`` (percent-escapes decoded) and ``jdbc:`` forms of them;
- libpq keyword strings for PostgreSQL: ``host=h dbname=d user=u password='a b'``.

Everything lands in one :class:`ParsedConnection`: the five fields every database has, plus
``options`` whose keys are canonical (``encrypt``, ``trustServerCertificate``,
``applicationIntent``, ``connectTimeout``, ``driver``, ``authentication``, ``schema``, ...;
an unknown key is kept lower-cased, as written). A field or option given twice with two
different values is refused rather than resolved: drivers disagree about which one wins
(ODBC's ``Address`` beats ``Server``), and a network check that looked at one while the
driver connects to the other would be worthless.

:func:`build_odbc_string` and :func:`build_sqlalchemy_url` go the other way with the
escaping each target needs; ``parse_connection_string(build_odbc_string(x, d))`` gives ``x``
back for every value, however awkward (with ``options["driver"] == d``; FlowForge's own
``schema`` option never goes to a driver).

Errors are :class:`ConnectionStringError`. Their messages name the setting and the rule,
never a value: a value may be (a piece of) the password.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from sqlalchemy.engine import URL

from flowforge_shared.contracts.jobs import DATABASE_SOURCE_TYPES

DEFAULT_ODBC_DRIVER = "ODBC Driver 18 for SQL Server"
DEFAULT_PORTS = {"sql-server": 1433, "postgresql": 5432, "mysql": 3306, "oracle": 1521}
AUTHENTICATION_METHODS = (
    "sql",
    "windows",
    "azure-ad-password",
    "azure-ad-service-principal",
    "azure-ad-managed-identity",
    "azure-ad-access-token",
)

ODBC_FILE_KEYWORDS = frozenset(
    {
        # squashed ODBC keywords that make the driver read, write or load a file on the worker
        "dsn",
        "filedsn",
        "savefile",
        "attachdbfilename",
        "querylogfile",
        "querylogon",
        "statslogfile",
        "statslogon",
        "clientcertificate",
        "clientkey",
    }
)


class ConnectionStringError(ValueError):
    """A connection string cannot be read or built. The message never holds a value."""


@dataclass(frozen=True)
class ParsedConnection:
    """One database connection, whatever form it was written in.

    ``password`` stays out of ``repr`` so a logged object cannot leak it; ``instance`` is a
    SQL Server named instance (``host\\INSTANCE``).
    """

    host: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict)
    instance: str | None = None

    def describe(self) -> str:
        """``user@host\\INSTANCE,port/database`` for messages: everything but the password."""
        text = f"[{self.host}]" if self.host and ":" in self.host else (self.host or "")
        if self.instance:
            text += "\\" + self.instance
        if self.port is not None:
            text += f":{self.port}"
        if self.username:
            text = f"{self.username}@{text}"
        return f"{text}/{self.database}" if self.database else text


# --- key vocabulary ---------------------------------------------------------------------------
# Keys are matched "squashed": lower-cased, without spaces, underscores or hyphens, so
# "User ID", "userid" and "user_id" are one key.

_FIELD_KEYS = {
    "server": "host",
    "datasource": "host",
    "address": "host",
    "addr": "host",
    "networkaddress": "host",
    "host": "host",
    "hostname": "host",
    "port": "port",
    "initialcatalog": "database",
    "database": "database",
    "dbname": "database",
    "databasename": "database",
    "userid": "username",
    "uid": "username",
    "user": "username",
    "username": "username",
    "password": "password",
    "pwd": "password",
}
_OPTION_KEYS = {
    "encrypt": "encrypt",
    "trustservercertificate": "trustServerCertificate",
    "applicationintent": "applicationIntent",
    "connecttimeout": "connectTimeout",
    "connectiontimeout": "connectTimeout",
    "timeout": "connectTimeout",
    "logintimeout": "connectTimeout",
    "driver": "driver",
    "authentication": "authentication",
    "schema": "schema",
    "currentschema": "schema",
    "applicationname": "applicationName",
    "app": "applicationName",
    "multisubnetfailover": "multiSubnetFailover",
    "multipleactiveresultsets": "multipleActiveResultSets",
    "marsconnection": "multipleActiveResultSets",
    "hostnameincertificate": "hostNameInCertificate",
    "attachdbfilename": "attachDbFilename",
    "initialfilename": "attachDbFilename",
    "extendedproperties": "attachDbFilename",
    "failoverpartner": "failoverPartner",
    "sslmode": "sslmode",
    "cafile": "caFile",
    "tenantid": "tenantId",
    "clientid": "clientId",
}
_WINDOWS_KEYS = {"integratedsecurity", "trustedconnection"}
_BOOLEAN_OPTIONS = {"trustServerCertificate", "multiSubnetFailover", "multipleActiveResultSets"}
_TRUE = {"true", "yes", "1", "sspi", "mandatory"}
_FALSE = {"false", "no", "0", "optional"}
_AUTHENTICATION_VALUES = {
    "sql": "sql",
    "sqlpassword": "sql",
    "windows": "windows",
    "activedirectorypassword": "azure-ad-password",
    "azureadpassword": "azure-ad-password",
    "activedirectoryserviceprincipal": "azure-ad-service-principal",
    "azureadserviceprincipal": "azure-ad-service-principal",
    "activedirectorymsi": "azure-ad-managed-identity",
    "activedirectorymanagedidentity": "azure-ad-managed-identity",
    "azureadmanagedidentity": "azure-ad-managed-identity",
}
_ODBC_NAMES = {
    "encrypt": "Encrypt",
    "trustServerCertificate": "TrustServerCertificate",
    "applicationIntent": "ApplicationIntent",
    # The ODBC driver's own keyword (v18.7+); "Connection Timeout" is ADO.NET's spelling.
    "connectTimeout": "ConnectTimeout",
    "applicationName": "APP",
    "multiSubnetFailover": "MultiSubnetFailover",
    "multipleActiveResultSets": "MARS_Connection",
    "hostNameInCertificate": "HostNameInCertificate",
    "failoverPartner": "Failover_Partner",
    "attachDbFilename": "AttachDBFileName",
}
_SQL_SERVER_ONLY = set(_ODBC_NAMES) - {"connectTimeout", "applicationName"}
# read by FlowForge, not given to a driver as they are
_FLOWFORGE_OPTIONS = {"schema", "driver", "authentication", "caFile", "tenantId", "clientId"}

_URL_SCHEMES = {
    "sql-server": {"mssql", "mssql+pyodbc", "mssql+pymssql", "mssql+aioodbc"},
    "postgresql": {
        "postgresql",
        "postgres",
        "postgresql+psycopg",
        "postgresql+psycopg2",
        "postgresql+asyncpg",
        "postgresql+pg8000",
    },
    "mysql": {
        "mysql",
        "mysql+pymysql",
        "mysql+mysqldb",
        "mysql+mysqlconnector",
        "mysql+asyncmy",
        "mysql+aiomysql",
        "mariadb",
        "mariadb+pymysql",
        "mariadb+mysqldb",
        "mariadb+mariadbconnector",
    },
    "oracle": {"oracle", "oracle+oracledb", "oracle+cx_oracle"},
    "snowflake": {"snowflake"},
    "sqlite": {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"},
}
_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_LIBPQ_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LIBPQ_QUOTED = re.compile(r"'(?:\\.|[^'\\])*'")


def _squash(key: str) -> str:
    return re.sub(r"[\s_\-]+", "", key).lower()


# --- parsing ----------------------------------------------------------------------------------


def parse_connection_string(text: str, db_type: str) -> ParsedConnection:
    """Read a connection string of any supported form into a :class:`ParsedConnection`."""
    if db_type not in DATABASE_SOURCE_TYPES:
        raise ConnectionStringError(
            f"unknown database type {db_type!r}; expected one of {', '.join(DATABASE_SOURCE_TYPES)}"
        )
    if not isinstance(text, str) or not text.strip():
        raise ConnectionStringError("the connection string is empty")
    if "\x00" in text:
        raise ConnectionStringError("the connection string contains a NUL character")
    text = text.strip()
    if text[:5].lower() == "jdbc:":
        return _parse_jdbc(text[5:], db_type)
    if _URL_START.match(text):
        return _parse_url(text, db_type)
    if db_type == "sqlite" and "=" not in text:
        return ParsedConnection(database=text)  # a bare file path
    if db_type == "postgresql" and ";" not in _LIBPQ_QUOTED.sub("", text):
        return _assemble(_parse_libpq(text), db_type)
    return _assemble(_parse_pairs(text), db_type)


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    """``key=value;...`` with ODBC ``{}`` quoting, and ADO.NET quotes outside ODBC strings."""
    # In ODBC only braces quote (a password may start with a quote character); ADO.NET also
    # quotes with " and '. An ODBC string is recognised by its DRIVER keyword.
    quotes = "{" if re.search(r"(?:^|;)\s*driver\s*=", text, re.IGNORECASE) else "{\"'"
    pairs: list[tuple[str, str]] = []
    position, length = 0, len(text)
    while position < length:
        while position < length and (text[position] == ";" or text[position].isspace()):
            position += 1
        if position >= length:
            break
        part = len(pairs) + 1
        equals = text.find("=", position)
        semicolon = text.find(";", position)
        if equals < 0 or (0 <= semicolon < equals):
            raise ConnectionStringError(
                f"part {part} of the connection string is not key=value; a value holding ';' "
                "must be quoted as {...} (with '}' doubled inside)"
            )
        key = text[position:equals].strip()
        if not key:
            raise ConnectionStringError(f"part {part} of the connection string has no key")
        label = _label(key, part)
        position = equals + 1
        while position < length and text[position] in " \t":
            position += 1
        if position < length and text[position] in quotes:
            value, position = _read_quoted(text, position, label)
            while position < length and text[position].isspace():
                position += 1
            if position < length and text[position] != ";":
                raise ConnectionStringError(
                    f"the quoted value of {label} is followed by more text; inside "
                    "{...} write '}' as '}}' (inside \"...\" write '\"' as '\"\"')"
                )
        else:
            end = text.find(";", position)
            end = length if end < 0 else end
            value, position = text[position:end].strip(), end
        pairs.append((key, value))
    return pairs


def _read_quoted(text: str, start: int, label: str) -> tuple[str, int]:
    """The value quoted at ``start`` and the position after its closing quote."""
    opening = text[start]
    closing = "}" if opening == "{" else opening
    chars: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == closing:
            if text[position + 1 : position + 2] == closing:  # doubled: one literal character
                chars.append(closing)
                position += 2
                continue
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    raise ConnectionStringError(
        f"the value of {label} opens with {opening!r} but is never closed with {closing!r}"
    )


def _parse_libpq(text: str) -> list[tuple[str, str]]:
    """libpq ``key=value`` separated by spaces; ``'...'`` quotes; backslash escapes."""
    pairs: list[tuple[str, str]] = []
    position, length = 0, len(text)
    while True:
        while position < length and text[position].isspace():
            position += 1
        if position >= length:
            return pairs
        match = _LIBPQ_KEY.match(text, position)
        part = len(pairs) + 1
        if match is None:
            raise ConnectionStringError(
                f"part {part} of the connection string is not keyword=value (libpq format)"
            )
        key, position = match.group(), match.end()
        while position < length and text[position].isspace():
            position += 1
        if position >= length or text[position] != "=":
            raise ConnectionStringError(f"{_label(key, part)} has no '=value' (libpq format)")
        position += 1
        while position < length and text[position].isspace():
            position += 1
        chars: list[str] = []
        quoted = position < length and text[position] == "'"
        position += 1 if quoted else 0
        while position < length:
            char = text[position]
            if char == "\\" and position + 1 < length:
                chars.append(text[position + 1])
                position += 2
                continue
            if (quoted and char == "'") or (not quoted and char.isspace()):
                break
            chars.append(char)
            position += 1
        if quoted:
            if position >= length:
                raise ConnectionStringError(
                    f"the value of {_label(key, part)} opens with a quote but is never closed"
                )
            position += 1
        pairs.append((key, "".join(chars)))


def _parse_url(text: str, db_type: str) -> ParsedConnection:
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme not in _URL_SCHEMES[db_type]:
        raise ConnectionStringError(
            f"a {scheme}:// URL is not a {db_type} connection; use one of "
            + ", ".join(f"{name}://" for name in sorted(_URL_SCHEMES[db_type]))
        )
    rest, hash_sign, fragment = rest.partition("#")
    if hash_sign:
        raise ConnectionStringError(
            "the URL holds a '#': write it as %23 in the user name or password"
        )
    if db_type == "sqlite":
        path, _, query = rest.partition("?")
        # sqlite:///relative.db and sqlite:////absolute.db; "sqlite://" alone is in memory.
        database = unquote(path[1:]) if path.startswith("/") else unquote(path)
        pairs = [("database", database)] if database else []
        return _assemble(pairs + _query_pairs(query, db_type), db_type)
    cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0], default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    path, _, query = tail.partition("?")
    if "@" not in authority and ("@" in path or "@" in query.split("=", 1)[0]):
        raise ConnectionStringError(
            "the user name or password in the URL holds '/', '?' or '#': percent-encode "
            "them (%2F, %3F, %23)"
        )
    userinfo, at_sign, hostport = authority.rpartition("@")
    pairs: list[tuple[str, str]] = []
    if at_sign:
        user, colon, password = userinfo.partition(":")
        if user:
            pairs.append(("user", unquote(user)))
        if colon:
            pairs.append(("password", unquote(password)))
    if hostport:
        pairs.append(("host", hostport))  # not decoded: "%3A" must not become a port separator
    database = unquote(path[1:]) if path.startswith("/") else ""
    if db_type == "snowflake" and "/" in database:
        database, _, schema = database.partition("/")
        if schema:
            pairs.append(("schema", schema.strip("/")))
    if database:
        pairs.append(("database", database))
    return _assemble(pairs + _query_pairs(query, db_type), db_type)


def _query_pairs(query: str, db_type: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if db_type == "sql-server" and _squash(key) == "odbcconnect":
            pairs.extend(_parse_pairs(value))  # SQLAlchemy's way to carry a whole ODBC string
        else:
            pairs.append((key, value))
    return pairs


def _parse_jdbc(text: str, db_type: str) -> ParsedConnection:
    """``jdbc:sqlserver://host[\\instance][:port];key=value;...`` or ``jdbc:`` + a URL."""
    if db_type == "sql-server" and text[:12].lower() == "sqlserver://":
        server, _, properties = text[12:].partition(";")
        pairs = [("host", server)] if server.strip() else []
        return _assemble(pairs + _parse_pairs(properties), db_type)
    if _URL_START.match(text):
        return _parse_url(text, db_type)
    raise ConnectionStringError(
        "this JDBC form is not supported; paste a URL such as "
        "oracle+oracledb://user:password@host:1521/?service_name=NAME instead"
    )


# --- from key/value pairs to one ParsedConnection ------------------------------------------------


def _label(raw_key: str, part: int) -> str:
    """How a key is named in a message: known keys by name, others by position.

    An unknown "key" may be a piece of a password that held an unquoted ';', so it is
    never echoed.
    """
    squashed = _squash(raw_key)
    if squashed in _FIELD_KEYS or squashed in _OPTION_KEYS or squashed in _WINDOWS_KEYS:
        return repr(raw_key.strip())
    return f"setting number {part}"


def _assemble(pairs: list[tuple[str, str]], db_type: str) -> ParsedConnection:
    fields: dict[str, str] = {}
    options: dict[str, str] = {}
    for part, (raw_key, value) in enumerate(pairs, start=1):
        squashed = _squash(raw_key)
        label = _label(raw_key, part)
        if squashed in _FIELD_KEYS:
            _put(fields, _FIELD_KEYS[squashed], value, label)
        elif squashed in _WINDOWS_KEYS:
            if _boolean(value, label):
                _put(options, "authentication", "windows", label)
        else:
            key = _OPTION_KEYS.get(squashed) or raw_key.strip().lower()
            _put(options, key, _normalise_option(key, value, label), label)

    host, instance, port = None, None, None
    if fields.get("host", "").strip():
        host, instance, port = _split_host(fields["host"].strip(), db_type)
    if fields.get("port", "").strip():
        explicit = _port(fields["port"], "'Port'")
        if port is not None and port != explicit:
            raise ConnectionStringError(
                f"the port is given twice with different values ({port} and {explicit})"
            )
        port = explicit
    database = fields.get("database") or None
    if db_type == "sqlite" and host and not database:
        host, database = None, host  # "Data Source=file.db" names the file
    return ParsedConnection(
        host=host,
        port=port,
        database=database,
        username=fields.get("username") or None,
        password=fields.get("password"),
        options=options,
        instance=instance,
    )


def _put(target: dict[str, str], key: str, value: str, label: str) -> None:
    if key in target and target[key] != value:
        raise ConnectionStringError(
            f"{label} is given twice with different values (or with a synonym such as "
            "Server/Address/Data Source); keep one, because drivers disagree about which wins"
        )
    target[key] = value


def _normalise_option(key: str, value: str, label: str) -> str:
    if key == "encrypt":
        lowered = value.strip().lower()
        if lowered == "strict":
            return "strict"
        if lowered in _TRUE or lowered in _FALSE:
            return "true" if lowered in _TRUE else "false"
        raise ConnectionStringError(f"{label} must be yes, no or strict")
    if key in _BOOLEAN_OPTIONS:
        return "true" if _boolean(value, label) else "false"
    if key == "applicationIntent":
        lowered = value.strip().lower()
        if lowered not in {"readonly", "readwrite"}:
            raise ConnectionStringError(f"{label} must be ReadOnly or ReadWrite")
        return "ReadOnly" if lowered == "readonly" else "ReadWrite"
    if key == "connectTimeout":
        if not value.strip().isdigit():
            raise ConnectionStringError(f"{label} must be a whole number of seconds")
        return str(int(value.strip()))
    if key == "authentication":
        return _AUTHENTICATION_VALUES.get(_squash(value), value.strip())
    return value


def _normalised(options: dict[str, str]) -> dict[str, str]:
    """Options built by hand (an API form) in the canonical values parsing produces."""
    return {key: _normalise_option(key, value, repr(key)) for key, value in options.items()}


def _boolean(value: str, label: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConnectionStringError(f"{label} must be yes or no (true or false)")


def _split_host(value: str, db_type: str) -> tuple[str | None, str | None, int | None]:
    """``(host, instance, port)`` from ``tcp:host\\INSTANCE,port``, ``host:port`` or ``[v6]:port``."""
    port: int | None = None
    instance: str | None = None
    if db_type == "sql-server":
        protocol = re.match(r"^(tcp|np|lpc|admin|via):", value, re.IGNORECASE)
        if protocol and protocol.group(1).lower() != "tcp":
            raise ConnectionStringError(
                f"the server uses the {protocol.group(1)}: protocol; only TCP connections are "
                "supported (write tcp:host,port or just host,port)"
            )
        value = value[4:].strip() if protocol else value
        if "," in value:
            value, port_text = value.rsplit(",", 1)
            port = _port(port_text, "the port after ',' in the server")
    elif "," in value:
        raise ConnectionStringError(
            "the host lists several servers; FlowForge connects to exactly one host"
        )
    value, colon_port = _split_colon_port(value)
    if colon_port is not None:
        if port is not None and port != colon_port:
            raise ConnectionStringError("the server gives two different ports")
        port = colon_port
    if db_type == "sql-server" and "\\" in value:
        value, instance = value.split("\\", 1)
        instance = instance or None
    if db_type == "sql-server" and value.lower() in {".", "(local)"}:
        value = "localhost"
    return value or None, instance, port


def _split_colon_port(value: str) -> tuple[str, int | None]:
    if value.startswith("["):  # [IPv6] or [IPv6]:port
        end = value.find("]")
        if end < 0:
            raise ConnectionStringError(
                "the host opens '[' for an IPv6 address but never closes it"
            )
        rest = value[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ConnectionStringError("only ':port' may follow an IPv6 address in brackets")
        return value[1:end], (_port(rest[1:], "the port after the host") if rest else None)
    if value.count(":") == 1:
        host, port_text = value.split(":")
        return host, _port(port_text, "the port after ':' in the host")
    if value.count(":") > 1:
        try:
            ipaddress.IPv6Address(value.split("%", 1)[0])
        except ValueError:
            raise ConnectionStringError(
                "the host is neither host:port nor an IPv6 address (write IPv6 as [address]:port)"
            ) from None
    return value, None  # a plain name, or a bare IPv6 address


def _port(text: str, label: str) -> int:
    text = text.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConnectionStringError(f"{label} must be a whole number between 1 and 65535")
    return int(text)


# --- building ---------------------------------------------------------------------------------


def build_odbc_string(parsed: ParsedConnection, driver: str = DEFAULT_ODBC_DRIVER) -> str:
    """The pyodbc connection string for SQL Server, every value escaped for ODBC.

    Authentication (``options["authentication"]``): ``sql`` or unset (UID/PWD), ``windows``
    (``Trusted_Connection=yes``, the worker's own identity, no password),
    ``azure-ad-password`` and ``azure-ad-service-principal`` (UID = user or client id,
    PWD = password or client secret). ``schema`` is FlowForge's, not the driver's: left out.
    """
    _check_driver_name(driver)
    options = _normalised(parsed.options)
    parts: list[tuple[str, str]] = [("DRIVER", driver)]
    if parsed.host:
        server = parsed.host + (f"\\{parsed.instance}" if parsed.instance else "")
        parts.append(("SERVER", server + (f",{parsed.port}" if parsed.port else "")))
    if parsed.database:
        parts.append(("DATABASE", parsed.database))
    parts.extend(_odbc_credentials(parsed, options.get("authentication") or None))
    for key, value in options.items():
        if key in _FLOWFORGE_OPTIONS:
            continue
        _check_option_key(key)
        if _squash(key) in ODBC_FILE_KEYWORDS:
            raise ConnectionStringError(
                f"the ODBC setting {key!r} makes the driver read, write or load a file on the "
                "worker; it is not allowed"
            )
        name = _ODBC_NAMES.get(key, key)
        if key == "encrypt" or key in _BOOLEAN_OPTIONS:
            value = {"true": "yes", "false": "no"}.get(value, value)
        parts.append((name, value))
    return ";".join(f"{key}={odbc_value(key, value)}" for key, value in parts)


def _odbc_credentials(parsed: ParsedConnection, method: str | None) -> list[tuple[str, str]]:
    if method in (None, "sql"):
        parts = [] if parsed.username is None else [("UID", parsed.username)]
        parts += [] if parsed.password is None else [("PWD", parsed.password)]
        return parts + ([("Authentication", "SqlPassword")] if method == "sql" else [])
    if method == "windows":
        if parsed.password is not None or parsed.username is not None:
            raise ConnectionStringError(
                "Windows authentication signs in as the worker's own account: remove the user "
                "name and password, or choose SQL authentication"
            )
        return [("Trusted_Connection", "yes")]
    if method in ("azure-ad-password", "azure-ad-service-principal"):
        if not parsed.username or parsed.password is None:
            what = "client id and client secret" if "principal" in method else "user and password"
            raise ConnectionStringError(f"{method} authentication needs a {what}")
        mode = "ServicePrincipal" if "principal" in method else "Password"
        return [
            ("UID", parsed.username),
            ("PWD", parsed.password),
            ("Authentication", f"ActiveDirectory{mode}"),
        ]
    raise ConnectionStringError(
        f"authentication {method!r} is not supported; use one of {', '.join(AUTHENTICATION_METHODS)}"
    )


def _check_option_key(key: str) -> None:
    """Refuse an option that would smuggle in a second host, user or password.

    Parsed options never hold these (they become fields); options built by hand might, and
    the driver would then see two servers where FlowForge checked one.
    """
    squashed = _squash(key)
    canonical = _OPTION_KEYS.get(squashed)
    if not re.fullmatch(r"[A-Za-z0-9_. \-]+", key):
        raise ConnectionStringError(
            "an option key holds characters a key cannot have (only letters, digits, space, "
            "'_', '.' and '-')"
        )
    if squashed in _FIELD_KEYS or squashed in _WINDOWS_KEYS:
        raise ConnectionStringError(
            f"the option {key!r} is a connection field (host, port, database, user, password "
            "or authentication): set that field instead"
        )
    if canonical is not None and canonical != key:
        raise ConnectionStringError(f"the option {key!r} is spelled {canonical!r} in FlowForge")


def odbc_value(key: str, value: str) -> str:
    if "\x00" in value:
        raise ConnectionStringError(f"the value of {key} contains a NUL character")
    if key == "DRIVER" or (
        value
        and (
            any(char in value for char in ";{}=")
            or value[0].isspace()
            or value[-1].isspace()
            # A leading quote is plain text to ODBC but a quote to ADO.NET: braces make the
            # value mean the same to both readers.
            or value[0] in "\"'"
        )
    ):
        return "{" + value.replace("}", "}}") + "}"
    return value


def _check_driver_name(driver: str) -> None:
    # unixODBC loads DRIVER=/path/to/lib.so as given: a path would load any library.
    if not driver or any(char in driver for char in "/\\\x00") or driver.strip() != driver:
        raise ConnectionStringError(
            "the ODBC driver must be named as registered in odbcinst.ini (such as "
            f"{DEFAULT_ODBC_DRIVER!r}), not given as a file path"
        )


def build_sqlalchemy_url(
    parsed: ParsedConnection, db_type: str, *, odbc_driver: str | None = None
) -> URL:
    """A SQLAlchemy URL (``URL.create``, so every part is escaped by SQLAlchemy itself).

    SQL Server is ``mssql+pyodbc`` with the whole ODBC string in ``odbc_connect``;
    PostgreSQL ``postgresql+psycopg``; MySQL ``mysql+pymysql``; Oracle ``oracle+oracledb``
    (``database`` is the SID, ``options["service_name"]`` the service); Snowflake
    ``snowflake://user@account/db/schema``; SQLite ``sqlite:///path``.
    """
    if db_type not in DATABASE_SOURCE_TYPES:
        raise ConnectionStringError(f"unknown database type {db_type!r}")
    if db_type == "sql-server":
        driver = odbc_driver or parsed.options.get("driver") or DEFAULT_ODBC_DRIVER
        return URL.create("mssql+pyodbc", query={"odbc_connect": build_odbc_string(parsed, driver)})
    if parsed.instance:
        raise ConnectionStringError("named instances (host\\INSTANCE) exist only on SQL Server")
    method = _normalised(parsed.options).get("authentication")
    if method not in (None, "", "sql"):
        raise ConnectionStringError(
            f"authentication {method!r} is for SQL Server; {db_type} uses a user and password"
        )
    query = _driver_query(_normalised(parsed.options), db_type)
    if db_type == "sqlite":
        return URL.create("sqlite", database=parsed.database, query=query)
    database = parsed.database
    if db_type == "snowflake" and parsed.options.get("schema"):
        if not database:
            raise ConnectionStringError("a Snowflake schema needs a database: account/db/schema")
        database = f"{database}/{parsed.options['schema']}"
    drivername = {
        "postgresql": "postgresql+psycopg",
        "mysql": "mysql+pymysql",
        "oracle": "oracle+oracledb",
        "snowflake": "snowflake",
    }[db_type]
    return URL.create(
        drivername,
        username=parsed.username,
        password=parsed.password,
        host=parsed.host,
        port=parsed.port,
        database=database,
        query=query,
    )


_TIMEOUT_KEYWORD = {
    "postgresql": "connect_timeout",
    "mysql": "connect_timeout",
    "oracle": "tcp_connect_timeout",
    "snowflake": "login_timeout",
    "sqlite": "timeout",
}
_APPLICATION_NAME_KEYWORD = {"postgresql": "application_name", "mysql": "program_name"}


def _driver_query(options: dict[str, str], db_type: str) -> dict[str, str]:
    """The options a non-SQL-Server driver takes as URL query keys, in its own spelling."""
    query: dict[str, str] = {}
    if db_type == "postgresql" and options.get("encrypt") in ("true", "strict"):
        # Encrypt=yes means "encrypted"; with a certificate check it is libpq's verify-full.
        verified = (
            options["encrypt"] == "strict" or options.get("trustServerCertificate") == "false"
        )
        query["sslmode"] = options.get("sslmode") or ("verify-full" if verified else "require")
    for key, value in options.items():
        if key in _FLOWFORGE_OPTIONS or key in query:
            continue
        _check_option_key(key)
        if db_type == "postgresql" and key in ("encrypt", "trustServerCertificate"):
            continue  # translated above
        if key in _SQL_SERVER_ONLY:
            raise ConnectionStringError(
                f"{_ODBC_NAMES[key]} is a SQL Server setting; {db_type} does not know it"
            )
        if key == "connectTimeout":
            key = _TIMEOUT_KEYWORD[db_type]
        elif key == "applicationName":
            if db_type not in _APPLICATION_NAME_KEYWORD:
                continue  # only a label for the server's session list: safe to leave out
            key = _APPLICATION_NAME_KEYWORD[db_type]
        query[key] = value
    return query
