"""Connection strings: every pasted form read into one shape, ODBC and SQLAlchemy strings
built with the right escaping, and no error message that shows a password.

Expected ODBC strings are written out by hand; SQLAlchemy URLs are read back with
SQLAlchemy's own ``make_url``, not with the code under test.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url

from flowforge_rules.connstrings import (
    DEFAULT_ODBC_DRIVER,
    ConnectionStringError,
    ParsedConnection,
    build_odbc_string,
    build_sqlalchemy_url,
    parse_connection_string,
)

AWKWARD = [
    "p;w",
    "p}w",
    "{pw}",
    "p=w",
    " leading",
    "trailing ",
    "'q\"",
    "%40",
    "pässwörd✓密码",
    "}}",
    "{",
    '"',
    "'",
    "a b",
    "p@ss/w?rd#1:",
    "back\\slash",
    "x;y=z;{w}",
]


def sql_server(password: str | None = "secret", **changes) -> ParsedConnection:
    base = ParsedConnection(
        host="db.example.com",
        port=1433,
        database="sales",
        username="etl",
        password=password,
        options={
            "driver": DEFAULT_ODBC_DRIVER,
            "encrypt": "true",
            "trustServerCertificate": "false",
        },
    )
    return replace(base, **changes)


# --- parsing the forms users paste ---------------------------------------------------------------


def test_ado_net_string_from_azure_portal() -> None:
    parsed = parse_connection_string(
        "Server=tcp:myserver.database.windows.net,1433;Initial Catalog=sales;Persist Security "
        "Info=False;User ID=etl;Password=p@ss;MultipleActiveResultSets=False;Encrypt=True;"
        "TrustServerCertificate=False;Connection Timeout=30;",
        "sql-server",
    )
    assert parsed == ParsedConnection(
        host="myserver.database.windows.net",
        port=1433,
        database="sales",
        username="etl",
        password="p@ss",
        options={
            "persist security info": "False",
            "multipleActiveResultSets": "false",
            "encrypt": "true",
            "trustServerCertificate": "false",
            "connectTimeout": "30",
        },
    )


@pytest.mark.parametrize("server_key", ["Server", "Data Source", "Address", "Addr", "SERVER"])
@pytest.mark.parametrize("database_key", ["Database", "Initial Catalog", "DATABASE"])
@pytest.mark.parametrize(("user_key", "password_key"), [("UID", "PWD"), ("User ID", "Password")])
def test_ado_net_synonyms_mean_the_same(
    server_key: str, database_key: str, user_key: str, password_key: str
) -> None:
    text = f"{server_key}=h,1444;{database_key}=d;{user_key}=u;{password_key}=p"
    assert parse_connection_string(text, "sql-server") == ParsedConnection(
        host="h", port=1444, database="d", username="u", password="p"
    )


def test_odbc_string_with_braces_and_doubled_closing_brace() -> None:
    parsed = parse_connection_string(
        "DRIVER={ODBC Driver 18 for SQL Server};SERVER=host,1433;DATABASE=db;UID=u;PWD={p;w}}x}",
        "sql-server",
    )
    assert parsed.password == "p;w}x"
    assert parsed.options == {"driver": "ODBC Driver 18 for SQL Server"}
    assert (parsed.host, parsed.port, parsed.database, parsed.username) == ("host", 1433, "db", "u")


def test_odbc_password_starting_with_a_quote_is_plain_text() -> None:
    # Only braces quote in ODBC; ADO.NET's quotes do not apply once a DRIVER is named.
    parsed = parse_connection_string("DRIVER={x};SERVER=h;PWD='q\"", "sql-server")
    assert parsed.password == "'q\""


def test_ado_net_quoted_values_with_doubled_quotes() -> None:
    parsed = parse_connection_string(
        "Server=h;User ID='o''brien';Password=\"p;\"\"w\"", "sql-server"
    )
    assert (parsed.username, parsed.password) == ("o'brien", 'p;"w')


def test_windows_authentication_and_named_instance() -> None:
    parsed = parse_connection_string(
        r"Data Source=SQLBOX\REPORTING,1500;Database=d;Integrated Security=SSPI;"
        "ApplicationIntent=readonly",
        "sql-server",
    )
    assert parsed.host == "SQLBOX" and parsed.instance == "REPORTING" and parsed.port == 1500
    assert parsed.options == {"authentication": "windows", "applicationIntent": "ReadOnly"}
    assert parse_connection_string("Server=h;Trusted_Connection=yes", "sql-server").options == {
        "authentication": "windows"
    }
    assert parse_connection_string("Server=h;Trusted_Connection=no", "sql-server").options == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ActiveDirectoryPassword", "azure-ad-password"),
        ("Active Directory Password", "azure-ad-password"),
        ("ActiveDirectoryServicePrincipal", "azure-ad-service-principal"),
        ("SqlPassword", "sql"),
        ("ActiveDirectoryMsi", "azure-ad-managed-identity"),
        ("ActiveDirectoryInteractive", "ActiveDirectoryInteractive"),  # kept: refused later
    ],
)
def test_authentication_values_are_normalised(value: str, expected: str) -> None:
    parsed = parse_connection_string(f"Server=h;Authentication={value}", "sql-server")
    assert parsed.options["authentication"] == expected


@pytest.mark.parametrize(
    ("server", "host", "port"),
    [
        ("h,1433", "h", 1433),
        ("h:1433", "h", 1433),
        ("tcp:h,1433", "h", 1433),
        ("TCP:10.0.0.5", "10.0.0.5", None),
        ("[::1],1433", "::1", 1433),
        ("[fe80::1]:1433", "fe80::1", 1433),
        ("::1", "::1", None),
        (".", "localhost", None),
        ("(local)", "localhost", None),
    ],
)
def test_sql_server_host_and_port_forms(server: str, host: str, port: int | None) -> None:
    parsed = parse_connection_string(f"Server={server}", "sql-server")
    assert (parsed.host, parsed.port, parsed.instance) == (host, port, None)


def test_unknown_keys_are_kept_lower_cased() -> None:
    parsed = parse_connection_string(
        "Server=h;Workstation ID=W1;ColumnEncryption=Enabled", "sql-server"
    )
    assert parsed.options == {"workstation id": "W1", "columnencryption": "Enabled"}


@pytest.mark.parametrize(
    ("text", "db_type", "expected"),
    [
        (
            "mssql+pyodbc://u:p%40@host:1433/db?driver=ODBC+Driver+18+for+SQL+Server&Encrypt=yes",
            "sql-server",
            ParsedConnection(
                host="host",
                port=1433,
                database="db",
                username="u",
                password="p@",
                options={"driver": "ODBC Driver 18 for SQL Server", "encrypt": "true"},
            ),
        ),
        (
            "postgresql://u:%3Bp%2Fw%40@[::1]:5432/db?sslmode=require",
            "postgresql",
            ParsedConnection(
                host="::1",
                port=5432,
                database="db",
                username="u",
                password=";p/w@",
                options={"sslmode": "require"},
            ),
        ),
        (
            "postgresql+psycopg://u:p@h/db",
            "postgresql",
            ParsedConnection(host="h", database="db", username="u", password="p"),
        ),
        (
            "postgres:///db?host=h&port=5433&user=u",
            "postgresql",
            ParsedConnection(host="h", port=5433, database="db", username="u"),
        ),
        (
            "mysql://u:p@h:3307/shop",
            "mysql",
            ParsedConnection(host="h", port=3307, database="shop", username="u", password="p"),
        ),
        (
            "mysql+pymysql://u:@h/shop?charset=utf8mb4",
            "mysql",
            ParsedConnection(
                host="h",
                database="shop",
                username="u",
                password="",
                options={"charset": "utf8mb4"},
            ),
        ),
        (
            "mariadb://u:p@h/shop",
            "mysql",
            ParsedConnection(host="h", database="shop", username="u", password="p"),
        ),
        (
            "oracle+oracledb://u:p@h:1521/?service_name=XEPDB1",
            "oracle",
            ParsedConnection(
                host="h", port=1521, username="u", password="p", options={"service_name": "XEPDB1"}
            ),
        ),
        (
            "snowflake://user:p%2Fw@myorg-acct/analytics/public?warehouse=WH&role=LOADER",
            "snowflake",
            ParsedConnection(
                host="myorg-acct",
                database="analytics",
                username="user",
                password="p/w",
                options={"schema": "public", "warehouse": "WH", "role": "LOADER"},
            ),
        ),
        ("sqlite:///relative/data.db", "sqlite", ParsedConnection(database="relative/data.db")),
        ("sqlite:////srv/data/x.db", "sqlite", ParsedConnection(database="/srv/data/x.db")),
        ("sqlite://", "sqlite", ParsedConnection()),
        ("/srv/data/x.db", "sqlite", ParsedConnection(database="/srv/data/x.db")),
        (
            r"jdbc:sqlserver://h\inst:1444;databaseName=d;user=u;password={p;w};encrypt=true",
            "sql-server",
            ParsedConnection(
                host="h",
                port=1444,
                database="d",
                username="u",
                password="p;w",
                options={"encrypt": "true"},
                instance="inst",
            ),
        ),
        (
            "jdbc:postgresql://h:5432/db?user=u&password=p%26w",
            "postgresql",
            ParsedConnection(host="h", port=5432, database="db", username="u", password="p&w"),
        ),
    ],
)
def test_urls(text: str, db_type: str, expected: ParsedConnection) -> None:
    assert parse_connection_string(text, db_type) == expected


def test_sqlalchemy_odbc_connect_url_is_unpacked() -> None:
    odbc = "DRIVER={ODBC Driver 18 for SQL Server};SERVER=h,1433;UID=u;PWD={x;y}"
    parsed = parse_connection_string(f"mssql+pyodbc:///?odbc_connect={quote(odbc)}", "sql-server")
    assert (parsed.host, parsed.port, parsed.username, parsed.password) == ("h", 1433, "u", "x;y")


def test_libpq_keyword_string() -> None:
    parsed = parse_connection_string(
        "host=db.local port=5433 dbname=shop user=etl password='a b\\'c' sslmode=verify-full "
        "connect_timeout=10 application_name = flowforge",
        "postgresql",
    )
    assert parsed == ParsedConnection(
        host="db.local",
        port=5433,
        database="shop",
        username="etl",
        password="a b'c",
        options={"sslmode": "verify-full", "connectTimeout": "10", "applicationName": "flowforge"},
    )


def test_libpq_quoted_semicolon_is_still_libpq_and_npgsql_form_is_read_too() -> None:
    assert parse_connection_string("host=h password='p;w'", "postgresql").password == "p;w"
    parsed = parse_connection_string(
        "Host=h;Port=5433;Database=d;Username=u;Password=p;SSL Mode=Require", "postgresql"
    )
    assert parsed == ParsedConnection(
        host="h",
        port=5433,
        database="d",
        username="u",
        password="p",
        options={"sslmode": "Require"},
    )


def test_url_encoded_passwords_are_decoded() -> None:
    for password in AWKWARD:
        text = f"postgresql://u:{quote(password, safe='')}@h/db"
        assert parse_connection_string(text, "postgresql").password == password


# --- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "db_type", "fragment"),
    [
        ("Server=a;Address=b", "sql-server", "given twice"),
        ("Server=a;Encrypt=yes;Encrypt=no", "sql-server", "given twice"),
        ("Server=h,1433;Port=1444", "postgresql", "several servers"),
        ("Server=h,99999", "sql-server", "between 1 and 65535"),
        ("Server=np:\\\\h\\pipe\\sql\\query", "sql-server", "only TCP"),
        ("Server=h;Encrypt=maybe", "sql-server", "yes, no or strict"),
        ("Server=h;Connect Timeout=soon", "sql-server", "whole number"),
        ("Server=h;PWD={open", "sql-server", "never closed"),
        ("Server=h;PWD={a}b", "sql-server", "followed by more text"),
        ("Server=h;justtext", "sql-server", "not key=value"),
        ("Server=a:b:c", "sql-server", "neither host:port"),
        ("host=a,b dbname=d", "postgresql", "several servers"),
        ("postgresql://u:p@h1:5432,h2:5432/db", "postgresql", "several servers"),
        ("mysql://u:p@h/db", "postgresql", "not a postgresql connection"),
        ("postgresql://u:p@h/db#x", "postgresql", "%23"),
        ("", "postgresql", "empty"),
        ("Server=h", "db2", "unknown database type"),
        ("jdbc:oracle:thin:@h:1521:XE", "oracle", "not supported"),
    ],
)
def test_malformed_strings_are_refused_with_a_reason(
    text: str, db_type: str, fragment: str
) -> None:
    with pytest.raises(ConnectionStringError, match=fragment):
        parse_connection_string(text, db_type)


def test_same_value_twice_is_accepted() -> None:
    parsed = parse_connection_string(
        "Server=h;Address=h;Database=d;Initial Catalog=d", "sql-server"
    )
    assert (parsed.host, parsed.database) == ("h", "d")


def _messages(error: BaseException) -> str:
    """Every text a log line or traceback could show for ``error``, causes included."""
    texts = []
    current: BaseException | None = error
    while current is not None:
        texts += [str(current), repr(current), *map(str, current.args)]
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return "\n".join(texts)


def _leaky_inputs(password: str) -> list[tuple[str, str]]:
    braced = "{" + password.replace("}", "}}") + "}"
    encoded = quote(password, safe="")
    return [
        (f"Server=h,notaport;UID=u;PWD={braced}", "sql-server"),
        (f"Server=h;UID=u;PWD={braced[:-1]}", "sql-server"),  # brace never closed
        (f"Server=h;PWD={braced}tail;Database=d", "sql-server"),
        (f"Server=h;Server=other;PWD={braced}", "sql-server"),
        (f"Server=h;PWD={braced};Encrypt=sometimes", "sql-server"),
        (f"Server=h;PWD={braced};Password=different", "sql-server"),
        (f"Server=h;PWD={password};Port=0", "sql-server"),  # unquoted: pieces become "keys"
        (f"DRIVER={{x}};SERVER=h;PWD={password};junk", "sql-server"),
        (f"postgresql://u:{encoded}@h:abc/db", "postgresql"),
        (f"postgresql://u:{encoded}@h:99999/db", "postgresql"),
        (f"postgresql://u:{password}@h/db#frag", "postgresql"),
        (f"mysql://u:{encoded}@h/db", "postgresql"),
        (f"postgresql://u:{encoded}@h1,h2/db", "postgresql"),
        (f"host=h port=x password='{password.replace(chr(39), '')}", "postgresql"),
        (f"host=h password={encoded} port=notaport", "postgresql"),
        (f"Server=h;PWD={braced}", "no-such-database"),
        # The password typed into the wrong place: the message names the place, not the value.
        (f"Server=h,{braced};PWD=x", "sql-server"),
        (f"Server=h;Encrypt={braced}", "sql-server"),
        (f"Server=h;Connect Timeout={braced}", "sql-server"),
        (f"Server=h;ApplicationIntent={braced}", "sql-server"),
        (f"Server=h;Trusted_Connection={braced}", "sql-server"),
        (f"postgresql://u@h:{encoded}/db", "postgresql"),
    ]


@pytest.mark.parametrize("awkward", AWKWARD)
def test_no_parse_error_shows_the_password(awkward: str) -> None:
    password = f"Canary7{awkward}Zq"
    raised = 0
    for text, db_type in _leaky_inputs(password):
        try:
            parse_connection_string(text, db_type)
        except ConnectionStringError as error:
            raised += 1
            shown = _messages(error)
            assert password not in shown, text
            assert quote(password, safe="") not in shown, text
            assert "Canary7" not in shown, text
    assert raised == len(_leaky_inputs(password))  # every one is malformed on purpose


@pytest.mark.parametrize("awkward", AWKWARD)
def test_no_build_error_shows_the_password(awkward: str) -> None:
    password = f"Canary7{awkward}Zq"
    cases = [
        lambda: build_odbc_string(sql_server(password, options={"authentication": "windows"})),
        lambda: build_odbc_string(
            sql_server(password, username=None, options={"authentication": "azure-ad-password"})
        ),
        lambda: build_odbc_string(sql_server(password, options={"authentication": "kerberos"})),
        lambda: build_odbc_string(sql_server(password), driver="/tmp/evil.so"),
        lambda: build_odbc_string(sql_server(password, options={"SaveFile": "/tmp/x"})),
        lambda: build_sqlalchemy_url(
            sql_server(password, options={"applicationIntent": "ReadOnly"}), "postgresql"
        ),
        lambda: build_sqlalchemy_url(sql_server(password, instance="I"), "mysql"),
    ]
    for case in cases:
        with pytest.raises(ConnectionStringError) as caught:
            case()
        assert "Canary7" not in _messages(caught.value)


def test_repr_of_a_parsed_connection_hides_the_password() -> None:
    parsed = sql_server("Canary7-secret")
    assert "Canary7" not in repr(parsed) and "Canary7" not in parsed.describe()
    assert parsed.describe() == "etl@db.example.com:1433/sales"


# --- building ODBC strings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("p;w", "PWD={p;w}"),
        ("p}w", "PWD={p}}w}"),
        ("{pw}", "PWD={{pw}}}"),
        ("p=w", "PWD={p=w}"),
        (" leading", "PWD={ leading}"),
        ("trailing ", "PWD={trailing }"),
        ("'q\"", "PWD={'q\"}"),
        ("%40", "PWD=%40"),
        ("plain", "PWD=plain"),
        ("pässwörd✓", "PWD=pässwörd✓"),
    ],
)
def test_odbc_escaping_of_passwords(password: str, expected: str) -> None:
    built = build_odbc_string(sql_server(password))
    assert built == (
        "DRIVER={ODBC Driver 18 for SQL Server};SERVER=db.example.com,1433;DATABASE=sales;"
        f"UID=etl;{expected};Encrypt=yes;TrustServerCertificate=no"
    )


@pytest.mark.parametrize("awkward", AWKWARD)
def test_odbc_round_trip_of_awkward_values(awkward: str) -> None:
    original = sql_server(
        awkward,
        username=f"user{awkward}",
        database=f"db{awkward}",
        options={
            "driver": DEFAULT_ODBC_DRIVER,
            "encrypt": "strict",
            "trustServerCertificate": "true",
            "applicationIntent": "ReadOnly",
            "connectTimeout": "15",
            "applicationName": f"app{awkward}",
            "multiSubnetFailover": "true",
            "workstation id": f"w{awkward}",
        },
        instance="INST",
    )
    built = build_odbc_string(original, DEFAULT_ODBC_DRIVER)
    assert parse_connection_string(built, "sql-server") == original


@pytest.mark.parametrize(
    ("authentication", "expected", "absent"),
    [
        ("sql", "UID=etl;PWD=secret;Authentication=SqlPassword", ()),
        ("windows", "Trusted_Connection=yes", ("UID=", "PWD=")),
        ("azure-ad-password", "UID=etl;PWD=secret;Authentication=ActiveDirectoryPassword", ()),
        (
            "azure-ad-service-principal",
            "UID=etl;PWD=secret;Authentication=ActiveDirectoryServicePrincipal",
            (),
        ),
    ],
)
def test_odbc_authentication_modes(authentication: str, expected: str, absent: tuple) -> None:
    is_windows = authentication == "windows"
    parsed = sql_server(
        None if is_windows else "secret",
        username=None if is_windows else "etl",
        options={"authentication": authentication},
    )
    built = build_odbc_string(parsed)
    assert expected in built
    for text in absent:
        assert text not in built
    assert parse_connection_string(built, "sql-server").options["authentication"] == authentication


@pytest.mark.parametrize(
    ("parsed", "fragment"),
    [
        (sql_server(options={"authentication": "windows"}), "remove the user"),
        (sql_server(None, options={"authentication": "azure-ad-service-principal"}), "client id"),
        (sql_server(options={"authentication": "ActiveDirectoryInteractive"}), "not supported"),
        (sql_server(options={"AttachDbFilename": "x"}), "spelled 'attachDbFilename'"),
        (sql_server(options={"attachDbFilename": "C:/x.mdf"}), "file"),
        (sql_server(options={"filedsn": "/etc/x.dsn"}), "file"),
        (sql_server(options={"server": "evil"}), "connection field"),
        (sql_server(options={"x;PWD": "y"}), "characters"),
    ],
)
def test_odbc_refusals(parsed: ParsedConnection, fragment: str) -> None:
    with pytest.raises(ConnectionStringError, match=fragment):
        build_odbc_string(parsed)


@pytest.mark.parametrize("driver", ["/opt/evil/libevil.so", "C:\\evil.dll", "", " padded"])
def test_odbc_driver_must_be_a_registered_name(driver: str) -> None:
    with pytest.raises(ConnectionStringError, match="registered"):
        build_odbc_string(sql_server(), driver)


def test_flowforge_options_stay_out_of_the_odbc_string() -> None:
    built = build_odbc_string(sql_server(options={"schema": "dbo", "driver": "ignored"}), "Drv")
    assert built == "DRIVER={Drv};SERVER=db.example.com,1433;DATABASE=sales;UID=etl;PWD=secret"


# --- building SQLAlchemy URLs ------------------------------------------------------------------------


@pytest.mark.parametrize("awkward", AWKWARD)
@pytest.mark.parametrize("db_type", ["postgresql", "mysql", "oracle"])
def test_sqlalchemy_url_escapes_every_part(awkward: str, db_type: str) -> None:
    parsed = ParsedConnection(
        host="h", port=5555, database=f"d{awkward}", username=f"u{awkward}", password=awkward
    )
    url = build_sqlalchemy_url(parsed, db_type)
    reread = make_url(url.render_as_string(hide_password=False))
    assert (reread.username, reread.password, reread.host, reread.port) == (
        f"u{awkward}",
        awkward,
        "h",
        5555,
    )
    assert reread.database == f"d{awkward}"
    assert ":***@" in str(url)  # SQLAlchemy's own display hides the password


@pytest.mark.parametrize("awkward", AWKWARD)
def test_sql_server_url_carries_the_odbc_string(awkward: str) -> None:
    parsed = sql_server(awkward)
    url = build_sqlalchemy_url(parsed, "sql-server")
    reread = make_url(url.render_as_string(hide_password=False))
    assert reread.drivername == "mssql+pyodbc"
    assert reread.query["odbc_connect"] == build_odbc_string(parsed, DEFAULT_ODBC_DRIVER)
    assert parse_connection_string(reread.query["odbc_connect"], "sql-server") == parsed


def test_sqlalchemy_urls_per_database() -> None:
    pg = parse_connection_string(
        "Host=h;Database=d;Username=u;Password=p;Encrypt=true;TrustServerCertificate=false;"
        "Timeout=7",
        "postgresql",
    )
    assert build_sqlalchemy_url(pg, "postgresql").render_as_string(hide_password=False) == (
        "postgresql+psycopg://u:p@h/d?connect_timeout=7&sslmode=verify-full"
    )
    snowflake = parse_connection_string("snowflake://u:p@acct/db/sch?warehouse=WH", "snowflake")
    reread = make_url(build_sqlalchemy_url(snowflake, "snowflake").render_as_string(False))
    assert (reread.host, reread.database, reread.query) == ("acct", "db/sch", {"warehouse": "WH"})
    sqlite = build_sqlalchemy_url(parse_connection_string("/srv/x.db", "sqlite"), "sqlite")
    assert sqlite.render_as_string() == "sqlite:////srv/x.db"
    oracle = parse_connection_string("oracle://u:p@h:1521/?service_name=S", "oracle")
    assert build_sqlalchemy_url(oracle, "oracle").query == {"service_name": "S"}


def test_sql_server_settings_are_refused_for_other_databases() -> None:
    parsed = parse_connection_string("Server=h;ApplicationIntent=ReadOnly", "mysql")
    with pytest.raises(ConnectionStringError, match="SQL Server setting"):
        build_sqlalchemy_url(parsed, "mysql")


def test_hand_built_options_are_normalised_before_building() -> None:
    parsed = sql_server(options={"encrypt": "Yes", "trustServerCertificate": "YES"})
    assert build_odbc_string(parsed).endswith("Encrypt=yes;TrustServerCertificate=yes")
    with pytest.raises(ConnectionStringError, match="yes, no or strict"):
        build_odbc_string(sql_server(options={"encrypt": "sometimes"}))
    pg = ParsedConnection(host="h", options={"encrypt": "yes"})
    assert build_sqlalchemy_url(pg, "postgresql").query == {"sslmode": "require"}
