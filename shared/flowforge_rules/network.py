"""The network guard: where FlowForge may connect, checked before any driver does.

"Test connection" and database jobs make the worker open connections to addresses a user
typed, which is a server-side request forgery vector: the cloud metadata endpoint hands out
the worker's credentials to whoever reaches it. So:

- :func:`check_target` resolves the host ONCE and checks every address it resolves to (a
  name that resolves to one good and one bad address is refused: DNS rebinding). Checking
  the *resolved* address catches every spelling trick: ``2852039166``, ``0xA9FEA9FE``,
  ``0251.0376.0251.0376`` and ``::ffff:169.254.169.254`` all resolve to 169.254.169.254.
  The caller connects to the returned addresses, never resolving the name again.
- Always refused, whatever the allow list says: link-local (169.254.0.0/16, fe80::/10),
  cloud metadata addresses and names, unspecified (0.0.0.0, ::), multicast, broadcast
  and reserved addresses; IPv4 embedded in IPv6 (mapped, compatible, 6to4, NAT64) is
  checked as the IPv4 address it carries.
- Loopback and private ranges are allowed: a database on the same machine or the office
  network is the normal case here. An operator narrows that with ``deny`` (always wins)
  and ``allow`` (when non-empty, the only targets permitted); both take CIDRs and host
  names (``db.example.com``, ``*.example.com``).
- :func:`refuse_dangerous_options` refuses driver options that make the worker read, write
  or load a local file or socket (libpq ``sslkey``/``passfile``/``service``/``host=/path``,
  MySQL ``local_infile``, SQL Server ``AttachDbFilename``, SQLite files outside a permitted
  directory, ...): the same attack through the driver instead of the network.

Errors: :class:`TargetRefused` and :class:`OptionRefused` (policy said no),
:class:`HostLookupError` (the name does not resolve in time). All are ``ValueError``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowforge_rules.connstrings import ODBC_FILE_KEYWORDS, ParsedConnection
from flowforge_rules.databases import label, server_label

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., list]

DEFAULT_TIMEOUT = 5.0

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, OpenStack
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
        "metadata.packet.net",
    }
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BAD_HOST_CHARACTERS = set(" \t\r\n/\\@?#,;\x00")


class TargetRefused(ValueError):
    """The host or one of its addresses is not a place FlowForge connects to."""


class HostLookupError(ValueError):
    """The host name does not resolve (or not within the timeout)."""


class OptionRefused(ValueError):
    """A driver option would make the worker use a local file, socket or library."""


@dataclass(frozen=True)
class ResolvedAddress:
    """One checked address: connect to ``address`` (IP text) on ``port`` in ``family``."""

    address: str
    family: int
    port: int | None

    @property
    def ip(self) -> IPAddress:
        return ipaddress.ip_address(self.address)


# --- check_target -----------------------------------------------------------------------------


def check_target(
    host: str,
    port: int | None,
    *,
    allow: Sequence[str] = (),
    deny: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    resolver: Resolver = socket.getaddrinfo,
) -> list[ResolvedAddress]:
    """The addresses ``host`` resolves to, once each, after checking every one of them.

    Raises :class:`TargetRefused` when the host or any address is refused,
    :class:`HostLookupError` when the name does not resolve within ``timeout`` seconds.
    ``resolver`` has ``socket.getaddrinfo``'s signature (tests pass a fake one).
    """
    name = _normalise_host(host)
    if port is not None and not (isinstance(port, int) and 1 <= port <= 65535):
        raise TargetRefused(f"the port of {host!r} must be between 1 and 65535")
    allow_rules = [_rule(entry, "allow") for entry in allow]
    deny_rules = [_rule(entry, "deny") for entry in deny]
    if _is_metadata_name(name):
        raise TargetRefused(
            f"{host!r} is a cloud metadata service; FlowForge never connects to it because it "
            "hands out the worker's own credentials"
        )
    for rule in deny_rules:
        if isinstance(rule, str) and _name_matches(name, rule):
            raise TargetRefused(f"{host!r} is in the deny list ({rule})")

    # inet_aton's reading of 0xA9FEA9FE-style spellings, checked before any lookup: a
    # resolver that does not read them as addresses must not turn them into a DNS query.
    legacy = _legacy_ipv4(name)
    if legacy is not None:
        _refuse_always(host, legacy)
    resolved = _resolve(name, port, timeout, resolver)
    checked = [address.ip for address in resolved] + ([legacy] if legacy is not None else [])
    for ip in checked:
        _refuse_always(host, ip)
        for rule in deny_rules:
            if not isinstance(rule, str) and any(view in rule for view in _views(ip)):
                raise TargetRefused(
                    f"{host!r} resolves to {ip}, which is in the deny list ({rule})"
                )
    if allow_rules and not any(
        isinstance(rule, str) and _name_matches(name, rule) for rule in allow_rules
    ):
        for ip in checked:
            if not any(
                not isinstance(rule, str) and view in rule
                for rule in allow_rules
                for view in _views(ip)
            ):
                raise TargetRefused(
                    f"{host!r} resolves to {ip}, which is not in the allow list; ask an "
                    "administrator to add it"
                )
    return resolved


def _normalise_host(host: str) -> str:
    if not isinstance(host, str) or not host.strip():
        raise TargetRefused("no host was given")
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if any(char in _BAD_HOST_CHARACTERS for char in name):
        raise TargetRefused(
            f"{host!r} is not a host name or IP address (no spaces, '/', '\\', '@', ',' or ';'; "
            "give the port separately)"
        )
    try:  # what getaddrinfo does with a name; its UnicodeError would escape as a bug
        name.rstrip(".").encode("idna")
    except UnicodeError as error:
        reason = str(error.__cause__ or error).removeprefix("UnicodeError: ")
        raise TargetRefused(f"{host!r} is not a valid host name ({reason})") from None
    return name.lower().rstrip(".")


def _is_metadata_name(name: str) -> bool:
    return any(
        name == known or ("." in known and name.endswith("." + known)) for known in METADATA_NAMES
    )


def _rule(entry: str, which: str) -> IPNetwork | str:
    """A CIDR as a network; anything else as a host-name pattern (lower-case)."""
    text = entry.strip() if isinstance(entry, str) else ""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pattern = text.lower().rstrip(".")
        bare = pattern.removeprefix("*.").removeprefix(".")
        if not bare or any(char in _BAD_HOST_CHARACTERS or char == "*" for char in bare):
            raise ValueError(
                f"the {which} entry {entry!r} is neither a CIDR (10.0.0.0/8) nor a host name "
                "(db.example.com, *.example.com)"
            ) from None
        return pattern


def _name_matches(name: str, pattern: str) -> bool:
    if pattern.startswith("*.") or pattern.startswith("."):
        suffix = pattern.removeprefix("*")
        return name.endswith(suffix) and name != suffix.lstrip(".")
    return name == pattern


def _resolve(name: str, port: int | None, timeout: float, resolver: Resolver) -> list:
    # getaddrinfo has no timeout of its own: run it on a daemon thread and stop waiting. The
    # thread may linger until the system resolver gives up, but never blocks the caller.
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome["value"] = resolver(name, port, type=socket.SOCK_STREAM)
        except BaseException as error:  # noqa: BLE001 (handed to the waiting thread)
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"resolve {name}", daemon=True).start()
    if not done.wait(timeout):
        raise HostLookupError(f"looking up {name!r} took longer than {timeout:g} s; check the name")
    error = outcome.get("error")
    if isinstance(error, OSError):
        reason = error.strerror or str(error) or type(error).__name__
        raise HostLookupError(
            f"{name!r} could not be resolved ({reason}); check the name"
        ) from None
    if error is not None:
        raise error  # a bug, not a lookup failure: let it surface as it is
    addresses: list[ResolvedAddress] = []
    for family, _type, _proto, _canonname, sockaddr in outcome["value"]:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        address = ResolvedAddress(address=text, family=family, port=port)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise HostLookupError(f"{name!r} resolves to no IPv4 or IPv6 address")
    return addresses


def _legacy_ipv4(name: str) -> IPAddress | None:
    """``inet_aton``'s reading of ``name`` (decimal, octal, hex, short forms), if any."""
    if not name or not all(char in "0123456789abcdefx." for char in name):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


def _views(ip: IPAddress) -> list[IPAddress]:
    """``ip`` and the IPv4 address it carries, if it is one written as IPv6."""
    views: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and (ip in _NAT64 or ip in _IPV4_COMPATIBLE) and int(ip) > 1:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            views.append(embedded)
    return views


def _refuse_always(host: str, ip: IPAddress) -> None:
    for view in _views(ip):
        reason = None
        if view in METADATA_ADDRESSES:
            reason = "a cloud metadata address (it hands out the worker's own credentials)"
        elif view.is_link_local:
            reason = "link-local (where cloud metadata services live)"
        elif view.is_unspecified or view in _THIS_NETWORK:
            reason = "unspecified (0.0.0.0 or ::): connecting there reaches the worker itself"
        elif view.is_multicast:
            reason = "a multicast address"
        elif isinstance(view, ipaddress.IPv4Address) and view.is_reserved:
            reason = "a reserved or broadcast address"
        if reason:
            shown = str(ip) if view == ip else f"{ip} ({view})"
            raise TargetRefused(f"{host!r} resolves to {shown}, which is {reason}")


# --- refuse_dangerous_options -----------------------------------------------------------------

_FILE_OPTIONS = {
    "postgresql": {
        "sslkey",
        "sslcert",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslkeylogfile",
        "passfile",
        "service",
        "servicefile",
    },
    "mysql": {
        "readdefaultfile",
        "readdefaultgroup",
        "defaultsfile",
        "unixsocket",
        "namedpipe",
        "pipe",
        "plugindir",
        "sslkey",
        "sslcert",
        "sslca",
        "sslcapath",
    },
    "sql-server": set(ODBC_FILE_KEYWORDS)
    | {"initialfilename", "extendedproperties", "servercertificate"},
    "oracle": {"configdir", "walletlocation", "tnsadmin", "dsn"},
    "snowflake": {"privatekeyfile", "privatekeypath", "tokenfilepath"},
    "sqlite": {"uri", "vfs"},
}
_TRUTHY_FILE_OPTIONS = {
    "mysql": {
        "localinfile",
        "allowlocalinfile",
        "allowloadlocalinfile",
        "allowloadlocalinfileinpath",
    },
}
_HOST_OPTIONS = {"host", "server", "address", "addr", "datasource", "hostname"}
_FALSY = {"", "0", "false", "no", "off"}


def refuse_dangerous_options(
    db_type: str,
    options: Mapping[str, str],
    *,
    host: str | None = None,
    database: str | None = None,
    resolved: Iterable[ResolvedAddress] = (),
    sqlite_root: Path | None = None,
    ca_root: Path | None = None,
) -> None:
    """Raise :class:`OptionRefused` when an option makes the driver use a local resource.

    ``host`` and ``database`` are the connection's fields (a libpq ``dbname`` holding ``=``
    is itself a connection string; a SQLite database is a file path). ``resolved`` are the
    addresses :func:`check_target` returned: libpq's ``hostaddr`` must be one of them.
    SQLite files must lie inside ``sqlite_root``; without one, SQLite files are refused. A SQL
    Server connection's ``caFile`` must lie inside ``ca_root`` (the operators' CA folder):
    a connection cannot make the worker read a file of its choosing.
    """
    squashed = {
        _squash(key): (key, "" if value is None else str(value)) for key, value in options.items()
    }
    for name, (key, value) in squashed.items():
        if name in _FILE_OPTIONS.get(db_type, ()):
            if db_type == "postgresql" and name == "sslrootcert" and value.strip() == "system":
                continue  # libpq's "use the system's trusted CAs": no file named by the user
            raise OptionRefused(
                f"the option {key!r} makes the {label(db_type)} driver use a file or socket on the "
                "FlowForge worker; it is not allowed"
            )
        if name in _TRUTHY_FILE_OPTIONS.get(db_type, ()) and value.strip().lower() not in _FALSY:
            raise OptionRefused(
                f"the option {key!r} lets {server_label(db_type)} read files from the FlowForge "
                "worker; it is not allowed"
            )
        if name == "driver" and any(char in value for char in "/\\"):
            raise OptionRefused(
                "the ODBC driver must be named as registered (such as 'ODBC Driver 18 for "
                "SQL Server'); a file path would load any library"
            )
        if name in _HOST_OPTIONS:
            _refuse_host_option(db_type, key, value, host)
    if db_type == "postgresql":
        _refuse_postgres(squashed, host, database, list(resolved))
    if db_type == "oracle" and not database and "servicename" not in squashed:
        raise OptionRefused(
            "an Oracle connection needs a service name or SID: a bare name is looked up in "
            "tnsnames.ora on the worker, which FlowForge does not allow"
        )
    if db_type == "oracle" and host and "(" in host:
        raise OptionRefused("give the Oracle host name, not a connect descriptor")
    if db_type == "snowflake":
        authenticator = squashed.get("authenticator", ("", ""))[1].strip().lower()
        if authenticator.startswith(("http:", "https:")) or authenticator == "externalbrowser":
            raise OptionRefused(
                "this Snowflake authenticator makes the worker call another server or open a "
                "browser; use a user and password or a key pair"
            )
    if db_type == "sqlite":
        _refuse_sqlite_path(database, sqlite_root)
    if db_type == "sql-server" and "cafile" in squashed:
        ca_file_path(squashed["cafile"][1], ca_root)


def refuse_dangerous_connection(
    parsed: ParsedConnection,
    db_type: str,
    *,
    resolved: Iterable[ResolvedAddress] = (),
    sqlite_root: Path | None = None,
) -> None:
    """:func:`refuse_dangerous_options` over a parsed connection's options and fields."""
    refuse_dangerous_options(
        db_type,
        parsed.options,
        host=parsed.host,
        database=parsed.database,
        resolved=resolved,
        sqlite_root=sqlite_root,
    )


def _squash(key: str) -> str:
    return "".join(char for char in str(key).lower() if char not in " _-\t")


def _refuse_host_option(db_type: str, key: str, value: str, host: str | None) -> None:
    text = value.strip()
    if db_type == "postgresql" and text.startswith(("/", "@")):
        raise OptionRefused(
            f"the option {key!r} names a Unix socket on the FlowForge worker; give a host name"
        )
    if "," in text:
        raise OptionRefused(f"the option {key!r} lists several hosts; give exactly one")
    if host is None or text.lower() != host.strip().lower():
        raise OptionRefused(
            f"the option {key!r} names a second host; set the connection's host instead, so "
            "the host FlowForge checks is the host the driver uses"
        )


def _refuse_postgres(
    squashed: dict[str, tuple[str, str]],
    host: str | None,
    database: str | None,
    resolved: list[ResolvedAddress],
) -> None:
    if host and host.strip().startswith(("/", "@")):
        raise OptionRefused(
            "the host names a Unix socket on the FlowForge worker; give a host name"
        )
    if host and "," in host:
        raise OptionRefused("the host lists several servers; give exactly one")
    if database and ("=" in database or database.lower().startswith(("postgresql:", "postgres:"))):
        # libpq reads such a dbname as a whole connection string, options included.
        raise OptionRefused("the database name looks like a connection string; give a plain name")
    if "hostaddr" in squashed:
        key, value = squashed["hostaddr"]
        checked = {address.ip for address in resolved}
        for item in value.split(","):
            try:
                ip = ipaddress.ip_address(item.strip())
            except ValueError:
                ip = None
            if ip is None or ip not in checked:
                raise OptionRefused(
                    f"the option {key!r} connects to an address other than the checked host's; "
                    "remove it (FlowForge sets it to the address it checked)"
                )


def ca_file_path(value: str, ca_root: Path | None) -> Path:
    """The CA file a connection names, inside ``ca_root`` (a name there, or a path under
    it); anything else is refused."""
    text = value.strip()
    if not text or "\x00" in text:
        raise OptionRefused("caFile must name a PEM file in the CA folder")
    if ca_root is None:
        raise OptionRefused(
            "CA files are not enabled on this FlowForge: an administrator must name the folder "
            "of CA certificates (FLOWFORGE_CA_DIR)"
        )
    root = ca_root.resolve()
    path = Path(text)
    resolved = (path if path.is_absolute() else root / path).resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise OptionRefused(
            f"the CA file {value!r} is outside the folder CA certificates may be read from "
            f"({root}); put it there and give its name"
        )
    return resolved


def _refuse_sqlite_path(database: str | None, sqlite_root: Path | None) -> None:
    if not database or database.strip() in ("", ":memory:"):
        return
    if database.strip().lower().startswith("file:"):
        raise OptionRefused("SQLite URI file names (file:...) are not allowed; give a path")
    if "\x00" in database:  # no file system has such a name; Path.resolve() would raise
        raise OptionRefused("the SQLite file name contains a NUL character")
    if sqlite_root is None:
        raise OptionRefused(
            "SQLite files are not enabled on this FlowForge: an administrator must name the "
            "directory they may be read from"
        )
    root = sqlite_root.resolve()
    path = Path(database.strip())
    resolved = (path if path.is_absolute() else root / path).resolve()
    if not resolved.is_relative_to(root):
        raise OptionRefused(
            f"the SQLite file {database!r} is outside the directory SQLite files may be read "
            f"from ({root})"
        )
