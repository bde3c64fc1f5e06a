"""Microsoft Entra ID sign-in for SQL Server, against local fake identity endpoints (no tenant
is reachable here): a service principal's client-credentials request to an HTTPS authority
named by AZURE_AUTHORITY_HOST, a managed identity through the App Service endpoint
(IDENTITY_ENDPOINT/IDENTITY_HEADER), a token the caller supplies, and the token handed to the
real driver. The requests the fakes receive are what is asserted: the right client, secret,
scope and tenant, and no secret in any message."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from flowforge_ingest.connectors import entra
from flowforge_ingest.connectors.base import ConnectError, ConnectFailure, ConnectionParams
from flowforge_ingest.connectors.registry import connector_for
from tests.ingest.connector_fixtures import params_from_env

SECRET = "client-secret-do-not-show-7f3a"  # noqa: S105 (a test value)
TOKEN = "eyJ0eXAiOiJKV1QifQ.fake-sql-token.sig"  # noqa: S105


@dataclass
class FakeIdentity:
    """A local identity endpoint: what it was asked, and what it answers."""

    url: str
    requests: list[dict] = field(default_factory=list)
    refuse: bool = False


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the test's own CA)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-entra")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-entra.pem", directory / "fake-entra.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _serve(handler_for, tls: tuple[Path, Path] | None) -> tuple[ThreadingHTTPServer, int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeIdentity

    def log_message(self, *args) -> None:  # quiet
        return

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def authority(tmp_path, monkeypatch) -> Iterator[FakeIdentity]:
    """An HTTPS Entra authority: OpenID discovery and the v2.0 token endpoint."""
    cert, key = _certificate(tmp_path)
    fake = FakeIdentity(url="")

    class Handler(_Handler):
        def do_GET(self) -> None:
            tenant = self.path.split("/")[1]
            base = f"https://{self.headers['Host']}/{tenant}"
            self._answer(
                200,
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                },
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            fake.requests.append({"path": self.path, **form})
            if fake.refuse or form.get("client_secret") != SECRET:
                self._answer(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                )
                return
            self._answer(200, {"token_type": "Bearer", "expires_in": 3600, "access_token": TOKEN})

    server, port = _serve(Handler, (cert, key))
    fake.url = f"https://127.0.0.1:{port}"
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", fake.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # azure-identity's HTTP client
    yield fake
    server.shutdown()


@pytest.fixture
def identity_endpoint(monkeypatch) -> Iterator[FakeIdentity]:
    """A managed identity endpoint as App Service and Functions provide it."""
    fake = FakeIdentity(url="")

    class Handler(_Handler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            fake.requests.append({**query, "header": self.headers.get("X-IDENTITY-HEADER")})
            if self.headers.get("X-IDENTITY-HEADER") != "the-header-secret":
                self._answer(401, {"error": "unauthorized"})
                return
            expires = int(dt.datetime.now(dt.UTC).timestamp()) + 3600
            self._answer(
                200,
                {
                    "access_token": TOKEN,
                    "expires_on": str(expires),
                    "resource": query.get("resource"),
                    "token_type": "Bearer",
                },
            )

    server, port = _serve(Handler, None)
    fake.url = f"http://127.0.0.1:{port}/msi/token"
    monkeypatch.setenv("IDENTITY_ENDPOINT", fake.url)
    monkeypatch.setenv("IDENTITY_HEADER", "the-header-secret")
    yield fake
    server.shutdown()


def principal(**changes) -> ConnectionParams:
    values = {
        "db_type": "sql-server",
        "host": "127.0.0.1",
        "port": 1433,
        "database": "master",
        "username": "11111111-2222-3333-4444-555555555555",
        "password": SECRET,
        "authentication": "azure-ad-service-principal",
        "options": {"tenantId": "contoso-tenant", "connectTimeout": "5"},
    }
    values.update(changes)
    return ConnectionParams(**values)


def test_a_service_principal_gets_a_sql_token_from_the_authority(authority):
    assert entra.access_token(principal()) == TOKEN
    asked = authority.requests[-1]
    assert asked["path"] == "/contoso-tenant/oauth2/v2.0/token"
    assert asked["grant_type"] == "client_credentials"
    assert asked["client_id"] == "11111111-2222-3333-4444-555555555555"
    assert asked["client_secret"] == SECRET
    assert asked["scope"] == "https://database.windows.net/.default"
    # the next connect of the same principal reuses the token until it nears expiry
    assert entra.access_token(principal()) == TOKEN
    assert len(authority.requests) == 1


def test_a_refused_secret_is_a_login_failure_that_names_the_reason_not_the_secret(authority):
    with pytest.raises(ConnectError) as caught:
        entra.access_token(principal(password="wrong-secret-value-123"))
    assert caught.value.kind is ConnectFailure.LOGIN
    assert "AADSTS7000215" in caught.value.message
    assert "contoso-tenant" in caught.value.message
    assert "wrong-secret-value-123" not in caught.value.message


def test_a_managed_identity_asks_the_endpoint_with_its_header(identity_endpoint):
    system = ConnectionParams(
        "sql-server", host="h", authentication="azure-ad-managed-identity", options={}
    )
    assert entra.access_token(system) == TOKEN
    asked = identity_endpoint.requests[-1]
    assert asked["header"] == "the-header-secret"
    assert asked["resource"].rstrip("/") == "https://database.windows.net"
    assert "client_id" not in asked
    user_assigned = ConnectionParams(
        "sql-server",
        host="h",
        username="aaaa-bbbb",
        authentication="azure-ad-managed-identity",
        options={},
    )
    assert entra.access_token(user_assigned) == TOKEN
    assert identity_endpoint.requests[-1]["client_id"] == "aaaa-bbbb"


def test_a_caller_supplied_token_is_used_as_it_is():
    supplied = ConnectionParams(
        "sql-server", host="h", password=f"  {TOKEN}\n", authentication="azure-ad-access-token"
    )
    assert entra.access_token(supplied) == TOKEN


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"options": {}}, "tenantId"),
        ({"password": None}, "client secret"),
        ({"authentication": "azure-ad-access-token", "password": None}, "access token"),
        ({"authentication": "azure-ad-managed-identity"}, "no password"),
    ],
)
def test_missing_or_extra_settings_are_told_before_any_request(changes, words):
    with pytest.raises(ConnectError, match=words):
        entra.access_token(principal(**changes))


def test_the_token_travels_as_the_driver_documents_it():
    [(attribute, blob)] = entra.token_attribute("ab€").items()
    assert attribute == 1256  # SQL_COPT_SS_ACCESS_TOKEN
    assert blob == struct.pack("<I", 6) + "ab€".encode("utf-16-le")


def test_the_connector_hands_the_token_to_the_real_driver(authority):
    """Against a TDS server (Babelfish has no Entra ID sign-in): the token is fetched, the
    driver sends it, and the server's refusal is a login failure that says so."""
    live = params_from_env("FLOWFORGE_TEST_MSSQL_URL", "sql-server")
    params = principal(
        host=live.host,
        port=live.port,
        resolved_addresses=(),
        options={**live.options, "tenantId": "contoso-tenant"},
    )
    with pytest.raises(ConnectError) as caught:
        connector_for("sql-server").connect(params)
    assert authority.requests, "no token was requested"
    assert caught.value.kind is ConnectFailure.LOGIN
    assert "Microsoft Entra ID" in caught.value.message
    assert SECRET not in caught.value.message + str(caught.value.detail)
