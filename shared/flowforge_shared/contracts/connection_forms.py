"""What a connection of each database type can be given: its sign-in methods and options, in
one list per driver. The catalog checks connections against it and serves it
(``GET /api/connection-types``) so the connection form shows exactly these fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

OptionKind = Literal["boolean", "integer", "choice", "text", "path"]


@dataclass(frozen=True)
class OptionSpec:
    name: str  # as stored and sent: camelCase
    kind: OptionKind
    label: str
    help: str = ""
    choices: tuple[str, ...] = ()
    default: Any = None  # secrets are never options: they go in the password, encrypted


@dataclass(frozen=True)
class AuthenticationSpec:
    name: str
    label: str
    username: str | None  # what the user name field means here, None: not used
    password: str | None  # what the password field holds (encrypted at rest), None: none
    options: tuple[str, ...] = ()  # options this method needs
    help: str = ""


@dataclass(frozen=True)
class ConnectionForm:
    type: str
    label: str
    default_port: int | None
    authentication: tuple[AuthenticationSpec, ...]
    options: tuple[OptionSpec, ...] = field(default_factory=tuple)

    def option(self, name: str) -> OptionSpec | None:
        return next((spec for spec in self.options if spec.name == name), None)

    def method(self, name: str) -> AuthenticationSpec | None:
        return next((spec for spec in self.authentication if spec.name == name), None)

    def to_wire(self) -> dict[str, Any]:
        data = asdict(self)
        data["defaultPort"] = data.pop("default_port")
        return data


_SQL_LOGIN = AuthenticationSpec("sql", "User name and password", "user name", "password")

_CONNECT_TIMEOUT = OptionSpec(
    "connectTimeout", "integer", "Connect timeout (s)", "1-300; 10 when not set"
)
_QUERY_TIMEOUT = OptionSpec(
    "queryTimeout", "integer", "Query timeout (s)", "1-86400; a read's statements stop after it"
)
_SCHEMA = OptionSpec("schema", "text", "Schema", "the schema browsed and read by default")
_ENCRYPT_BOOL = OptionSpec("encrypt", "boolean", "Encrypt (TLS)", "require an encrypted connection")
_TRUST = OptionSpec(
    "trustServerCertificate",
    "boolean",
    "Trust server certificate",
    "accept the server's certificate without checking it (a warning is shown)",
)

FORMS: dict[str, ConnectionForm] = {
    "sql-server": ConnectionForm(
        "sql-server",
        "SQL Server",
        1433,
        (
            _SQL_LOGIN,
            AuthenticationSpec(
                "azure-ad-service-principal",
                "Microsoft Entra ID: service principal",
                "application (client) id",
                "client secret",
                ("tenantId",),
            ),
            AuthenticationSpec(
                "azure-ad-managed-identity",
                "Microsoft Entra ID: managed identity",
                "client id of a user-assigned identity (empty: the system-assigned one)",
                None,
            ),
            AuthenticationSpec(
                "azure-ad-access-token",
                "Microsoft Entra ID: access token",
                None,
                "access token (for https://database.windows.net/; it expires)",
            ),
            AuthenticationSpec(
                "azure-ad-password",
                "Microsoft Entra ID: user and password",
                "user principal name",
                "password",
                ("tenantId",),
                "being retired by Microsoft (multi-factor sign-in); prefer a service principal",
            ),
            AuthenticationSpec(
                "windows",
                "Windows (Kerberos)",
                None,
                None,
                (),
                "the worker's Kerberos ticket (kinit or a keytab); no password is stored",
            ),
        ),
        (
            OptionSpec(
                "encrypt",
                "choice",
                "Encryption",
                "mandatory: TLS, certificate and host name checked; strict: TDS 8.0 (SQL "
                "Server 2022+); optional: no TLS",
                ("mandatory", "strict", "optional"),
                "mandatory",
            ),
            _TRUST,
            OptionSpec(
                "caFile",
                "path",
                "CA certificate file",
                "a PEM file in the CA folder (FLOWFORGE_CA_DIR), trusted besides the system store",
            ),
            OptionSpec(
                "hostNameInCertificate",
                "text",
                "Host name in certificate",
                "the name the certificate must list, when it differs from the host",
            ),
            OptionSpec("tenantId", "text", "Directory (tenant) id", "Microsoft Entra ID"),
            OptionSpec(
                "clientId",
                "text",
                "Application (client) id",
                "Entra password sign-in through an application of your own",
            ),
            OptionSpec(
                "applicationIntent", "choice", "Application intent", "", ("ReadWrite", "ReadOnly")
            ),
            OptionSpec("instance", "text", "Named instance", "found through the SQL Browser"),
            OptionSpec("multiSubnetFailover", "boolean", "Multi-subnet failover"),
            _CONNECT_TIMEOUT,
            _QUERY_TIMEOUT,
            _SCHEMA,
        ),
    ),
    "postgresql": ConnectionForm(
        "postgresql",
        "PostgreSQL",
        5432,
        (_SQL_LOGIN,),
        (_ENCRYPT_BOOL, _TRUST, _CONNECT_TIMEOUT, _QUERY_TIMEOUT, _SCHEMA),
    ),
    "mysql": ConnectionForm(
        "mysql",
        "MySQL / MariaDB",
        3306,
        (_SQL_LOGIN,),
        (_ENCRYPT_BOOL, _TRUST, _CONNECT_TIMEOUT, _QUERY_TIMEOUT, _SCHEMA),
    ),
    "oracle": ConnectionForm(
        "oracle",
        "Oracle",
        1521,
        (_SQL_LOGIN,),
        (_CONNECT_TIMEOUT, _QUERY_TIMEOUT, _SCHEMA),
    ),
    "snowflake": ConnectionForm(
        "snowflake",
        "Snowflake",
        None,
        (_SQL_LOGIN,),
        (
            OptionSpec("account", "text", "Account"),
            OptionSpec("warehouse", "text", "Warehouse"),
            OptionSpec("role", "text", "Role"),
            _CONNECT_TIMEOUT,
            _QUERY_TIMEOUT,
            _SCHEMA,
        ),
    ),
    "sqlite": ConnectionForm(
        "sqlite",
        "SQLite",
        None,
        (_SQL_LOGIN,),
        (_CONNECT_TIMEOUT, _QUERY_TIMEOUT),
    ),
}


def form_for(db_type: str) -> ConnectionForm:
    return FORMS[db_type]


def option_problems(db_type: str, options: dict[str, Any]) -> list[tuple[str, str]]:
    """(option, message) for every option ``db_type`` does not take."""
    form = FORMS.get(db_type)
    if form is None:
        return []
    names = ", ".join(spec.name for spec in form.options)
    return [
        (name, f"{name} is not an option of a {form.label} connection (its options: {names})")
        for name in options
        if form.option(name) is None
    ]


def entra_problem(method: str, username: str | None, has_password: bool, options) -> str | None:
    """What a connection with this Entra method lacks (or has too much of), or None."""
    tenant = (options or {}).get("tenantId")
    if method == "azure-ad-service-principal":
        if not username or not has_password:
            return "a service principal signs in with its application (client) id as the user name and a client secret as the password"
        if not tenant:
            return "a service principal needs options.tenantId, the directory (tenant) id"
    elif method == "azure-ad-password":
        if not username or not has_password:
            return "an Entra password sign-in needs the user name and password"
        if not tenant:
            return "an Entra password sign-in needs options.tenantId, the directory (tenant) id"
    elif method == "azure-ad-access-token":
        if not has_password:
            return "give the access token as the password"
        if username:
            return "an access token names its user itself: leave the user name empty"
    elif method == "azure-ad-managed-identity" and has_password:
        return "a managed identity has no password: leave it empty (the user name may be a user-assigned identity's client id)"
    return None


def authentication_problem(db_type: str, method: str) -> str | None:
    form = FORMS.get(db_type)
    if form is None or form.method(method) is not None:
        return None
    methods = ", ".join(spec.name for spec in form.authentication)
    return f"a {form.label} connection signs in with {methods}, not {method}"
