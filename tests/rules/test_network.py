"""The network guard: metadata, link-local and spelling tricks refused on the resolved
address; local databases allowed; allow/deny lists; dangerous driver options refused.

Numeric hosts and ``localhost`` go through the real ``socket.getaddrinfo`` (no network
needed); names that would need DNS use a fake resolver that records its calls.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from flowforge_rules.connstrings import parse_connection_string
from flowforge_rules.network import (
    HostLookupError,
    OptionRefused,
    ResolvedAddress,
    TargetRefused,
    check_target,
    refuse_dangerous_connection,
    refuse_dangerous_options,
)


class FakeResolver:
    """getaddrinfo over a fixed table; counts its calls."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int | None, *args, **kwargs) -> list:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (address, port or 0, 0, 0) if ":" in address else (address, port or 0),
            )
            for address in self.table[host]
        ]


def must_not_resolve(*args, **kwargs) -> list:
    raise AssertionError("the host should have been refused before any lookup")


# --- always refused --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "2852039166",  # decimal
        "0xA9FEA9FE",  # hex
        "0251.0376.0251.0376",  # octal
        "0xa9.0xfe.0xa9.0xfe",
        "169.254.43518",  # short form
        "::ffff:169.254.169.254",  # IPv4-mapped IPv6
        "[::ffff:a9fe:a9fe]",
        "2002:a9fe:a9fe::1",  # 6to4 carrying 169.254.169.254
        "64:ff9b::a9fe:a9fe",  # NAT64 carrying 169.254.169.254
        "169.254.1.1",
        "fe80::1",
        "fe80::1%1",
        "100.100.100.200",
        "fd00:ec2::254",
        "0.0.0.0",
        "0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "240.0.0.1",
    ],
)
def test_tricks_are_refused_on_the_resolved_address(host: str) -> None:
    with pytest.raises(TargetRefused) as caught:
        check_target(host, 5432)
    assert repr(host) in str(caught.value)


@pytest.mark.parametrize(
    "host",
    [
        "metadata.google.internal",
        "METADATA.GOOGLE.INTERNAL.",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.goog",
    ],
)
def test_metadata_names_are_refused_without_a_lookup(host: str) -> None:
    with pytest.raises(TargetRefused, match="metadata"):
        check_target(host, 80, resolver=must_not_resolve)


def test_allow_list_cannot_unlock_metadata() -> None:
    with pytest.raises(TargetRefused, match="metadata"):
        check_target("169.254.169.254", 80, allow=["169.254.0.0/16", "0.0.0.0/0"])


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5", "169.254.169.254"],  # one good, one bad: DNS rebinding
        ["::ffff:169.254.169.254"],
        ["fe80::abcd"],
        ["0.0.0.0"],
    ],
)
def test_a_name_resolving_to_a_bad_address_is_refused(addresses: list[str]) -> None:
    resolver = FakeResolver({"db.example.com": addresses})
    with pytest.raises(TargetRefused, match="db.example.com"):
        check_target("db.example.com", 5432, resolver=resolver)
    assert resolver.calls == ["db.example.com"]


@pytest.mark.parametrize(
    "host",
    # The last three cannot be encoded for DNS (IDNA): getaddrinfo raised a UnicodeError.
    [
        "",
        "   ",
        "a/b",
        "h;x",
        "user@h",
        "h,h2",
        "h\\inst",
        "a b",
        "\x80",
        "a..b",
        "x" * 64 + ".com",
    ],
)
def test_malformed_hosts_are_refused(host: str) -> None:
    with pytest.raises(TargetRefused):
        check_target(host, 1433, resolver=must_not_resolve)


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_ports_out_of_range_are_refused(port: int) -> None:
    with pytest.raises(TargetRefused, match="port"):
        check_target("127.0.0.1", port)


# --- allowed by default ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("10.1.2.3", "10.1.2.3"),
        ("192.168.1.20", "192.168.1.20"),
        ("172.16.0.9", "172.16.0.9"),
        ("2130706433", "127.0.0.1"),  # loopback spelled in decimal is still loopback
    ],
)
def test_loopback_and_private_addresses_are_allowed(host: str, address: str) -> None:
    resolved = check_target(host, 5432)
    assert address in [item.address for item in resolved]
    assert all(item.port == 5432 for item in resolved)


def test_resolves_once_and_returns_every_address_once() -> None:
    resolver = FakeResolver({"db.example.com": ["10.0.0.5", "10.0.0.6", "10.0.0.5", "fd12::7"]})
    resolved = check_target("db.example.com", 1433, resolver=resolver)
    assert resolver.calls == ["db.example.com"]
    assert resolved == [
        ResolvedAddress("10.0.0.5", socket.AF_INET, 1433),
        ResolvedAddress("10.0.0.6", socket.AF_INET, 1433),
        ResolvedAddress("fd12::7", socket.AF_INET6, 1433),
    ]
    assert str(resolved[2].ip) == "fd12::7"


def test_unknown_name_and_slow_lookup_are_lookup_errors() -> None:
    with pytest.raises(HostLookupError, match="could not be resolved"):
        check_target("nowhere.example", 5432, resolver=FakeResolver({}))

    release = threading.Event()

    def hanging(*args, **kwargs) -> list:
        release.wait(5)
        return []

    try:
        with pytest.raises(HostLookupError, match="longer than"):
            check_target("slow.example", 5432, timeout=0.05, resolver=hanging)
    finally:
        release.set()


# --- deny and allow lists -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "::ffff:127.0.0.1", "2130706433", "127.9.9.9"]
)
def test_deny_cidr_catches_every_spelling(host: str) -> None:
    with pytest.raises(TargetRefused, match="deny list"):
        check_target(host, 5432, deny=["127.0.0.0/8"])


def test_deny_by_name_needs_no_lookup_and_wins_over_allow() -> None:
    with pytest.raises(TargetRefused, match="deny list"):
        check_target(
            "db.example.com",
            5432,
            allow=["db.example.com"],
            deny=["*.example.com"],
            resolver=must_not_resolve,
        )
    resolver = FakeResolver({"db.example.com": ["10.0.0.5"]})
    with pytest.raises(TargetRefused, match="deny list"):
        check_target(
            "db.example.com", 5432, allow=["10.0.0.0/8"], deny=["10.0.0.5/32"], resolver=resolver
        )


def test_allow_list_is_exclusive() -> None:
    assert check_target("10.1.2.3", 5432, allow=["10.0.0.0/8"])
    for host in ("192.168.1.1", "127.0.0.1", "localhost"):
        with pytest.raises(TargetRefused, match="not in the allow list"):
            check_target(host, 5432, allow=["10.0.0.0/8"])


def test_allow_by_host_name_pattern() -> None:
    resolver = FakeResolver(
        {
            "db.corp.example": ["192.168.5.5"],
            "corp.example": ["192.168.5.6"],
            "x.other": ["10.0.0.1"],
        }
    )
    allow = ["*.corp.example"]
    assert check_target("db.corp.example", 5432, allow=allow, resolver=resolver)
    with pytest.raises(TargetRefused, match="allow list"):
        check_target("corp.example", 5432, allow=allow, resolver=resolver)
    with pytest.raises(TargetRefused, match="allow list"):
        check_target("x.other", 5432, allow=allow, resolver=resolver)


@pytest.mark.parametrize("entry", ["", "a b", "*", "host/path", "10.0.0.0/33x"])
def test_invalid_list_entries_are_reported(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a CIDR"):
        check_target("127.0.0.1", 5432, allow=[entry])


# --- dangerous driver options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db_type", "options"),
    [
        ("postgresql", {"sslkey": "/etc/ssl/private/key.pem"}),
        ("postgresql", {"sslcert": "/tmp/c.pem"}),
        ("postgresql", {"sslrootcert": "/etc/passwd"}),
        ("postgresql", {"sslcrl": "/tmp/x"}),
        ("postgresql", {"passfile": "/root/.pgpass"}),
        ("postgresql", {"service": "prod"}),
        ("postgresql", {"servicefile": "/tmp/pg_service.conf"}),
        ("postgresql", {"sslkeylogfile": "/tmp/keys"}),
        ("postgresql", {"host": "/var/run/postgresql"}),
        ("postgresql", {"host": "@abstract"}),
        ("mysql", {"local_infile": "1"}),
        ("mysql", {"allow_local_infile": "true"}),
        ("mysql", {"AllowLoadLocalInfile": "True"}),
        ("mysql", {"read_default_file": "/etc/mysql/my.cnf"}),
        ("mysql", {"unix_socket": "/var/run/mysqld/mysqld.sock"}),
        ("sql-server", {"attachDbFilename": "C:/data/x.mdf"}),
        ("sql-server", {"AttachDBFileName": "x.mdf"}),
        ("sql-server", {"SaveFile": "/tmp/out.dsn"}),
        ("sql-server", {"FILEDSN": "/tmp/in.dsn"}),
        ("sql-server", {"DSN": "prod"}),
        ("sql-server", {"QueryLogFile": "/tmp/q.log"}),
        ("sql-server", {"driver": "/tmp/libevil.so"}),
        ("snowflake", {"private_key_file": "/home/u/key.p8"}),
        ("snowflake", {"authenticator": "https://evil.example/okta"}),
        ("snowflake", {"authenticator": "externalbrowser"}),
        ("oracle", {"config_dir": "/tmp/tns", "service_name": "S"}),
        ("sqlite", {"uri": "true"}),
    ],
)
def test_dangerous_options_are_refused(db_type: str, options: dict[str, str]) -> None:
    with pytest.raises(OptionRefused):
        refuse_dangerous_options(db_type, options, host="h", database="d")


@pytest.mark.parametrize(
    ("db_type", "options"),
    [
        ("postgresql", {"sslmode": "verify-full", "sslrootcert": "system"}),
        ("postgresql", {"application_name": "flowforge", "host": "h"}),
        ("mysql", {"local_infile": "0", "charset": "utf8mb4"}),
        ("sql-server", {"encrypt": "true", "driver": "ODBC Driver 18 for SQL Server"}),
        ("snowflake", {"warehouse": "WH", "authenticator": "snowflake"}),
        ("oracle", {"service_name": "XEPDB1"}),
    ],
)
def test_ordinary_options_pass(db_type: str, options: dict[str, str]) -> None:
    refuse_dangerous_options(
        db_type, options, host="h", database="d" if db_type != "oracle" else None
    )


def test_postgres_host_field_socket_and_expanding_dbname_are_refused() -> None:
    with pytest.raises(OptionRefused, match="Unix socket"):
        refuse_dangerous_options("postgresql", {}, host="/tmp")
    with pytest.raises(OptionRefused, match="connection string"):
        refuse_dangerous_options("postgresql", {}, host="h", database="host=evil sslkey=/x")
    with pytest.raises(OptionRefused, match="second host"):
        refuse_dangerous_options("postgresql", {"host": "other"}, host="h")


def test_hostaddr_must_be_an_address_that_was_checked() -> None:
    checked = check_target("127.0.0.1", 5432)
    refuse_dangerous_options("postgresql", {"hostaddr": "127.0.0.1"}, host="h", resolved=checked)
    with pytest.raises(OptionRefused, match="hostaddr"):
        refuse_dangerous_options("postgresql", {"hostaddr": "169.254.169.254"}, resolved=checked)
    with pytest.raises(OptionRefused, match="hostaddr"):
        refuse_dangerous_options("postgresql", {"hostaddr": "127.0.0.1"})


def test_oracle_needs_a_service_or_sid() -> None:
    with pytest.raises(OptionRefused, match="tnsnames"):
        refuse_dangerous_options("oracle", {}, host="prod_alias")


def test_sqlite_files_must_lie_in_the_permitted_directory(tmp_path: Path) -> None:
    root = tmp_path / "sqlite"
    root.mkdir()
    (root / "ok.db").touch()
    outside = tmp_path / "secret.db"
    outside.touch()
    (root / "link.db").symlink_to(outside)

    for allowed in ("ok.db", str(root / "ok.db"), "sub/new.db", ":memory:", None):
        refuse_dangerous_options("sqlite", {}, database=allowed, sqlite_root=root)
    for refused in ("../secret.db", str(outside), "/etc/passwd", "link.db", "file:ok.db?mode=ro"):
        with pytest.raises(OptionRefused):
            refuse_dangerous_options("sqlite", {}, database=refused, sqlite_root=root)
    with pytest.raises(OptionRefused, match="not enabled"):
        refuse_dangerous_options("sqlite", {}, database="ok.db", sqlite_root=None)


def test_a_sqlite_file_name_with_nul_is_refused_not_a_crash(tmp_path: Path) -> None:
    # Path.resolve() raises a bare ValueError on NUL, which callers treated as a bug (500).
    with pytest.raises(OptionRefused, match="NUL"):
        refuse_dangerous_options("sqlite", {}, database="ba\x00nk.db", sqlite_root=tmp_path)


@pytest.mark.parametrize(
    ("text", "db_type"),
    [
        ("postgresql://u:p@h/db?sslkey=/etc/key.pem", "postgresql"),
        ("host=h dbname=d passfile=/root/.pgpass", "postgresql"),
        ("mysql+pymysql://u:p@h/db?local_infile=1", "mysql"),
        ("Server=h;Database=d;AttachDbFilename=C:\\x.mdf", "sql-server"),
        ("Server=h;Database=d;SaveFile=/tmp/x.dsn", "sql-server"),
        ("sqlite:////etc/shadow", "sqlite"),
    ],
)
def test_parsed_connection_strings_are_checked_end_to_end(
    text: str, db_type: str, tmp_path: Path
) -> None:
    parsed = parse_connection_string(text, db_type)
    with pytest.raises(OptionRefused):
        refuse_dangerous_connection(parsed, db_type, sqlite_root=tmp_path)


@pytest.mark.parametrize("host", ["2852039166", "0xA9FEA9FE", "0251.0376.0251.0376", "0"])
def test_numeric_spellings_are_refused_even_by_a_resolver_that_reads_them_as_names(
    host: str,
) -> None:
    with pytest.raises(TargetRefused):
        check_target(host, 80, resolver=FakeResolver({host: ["10.0.0.1"]}))
