"""Microsoft Entra ID (Azure AD) sign-in for SQL Server: FlowForge gets the access token with
``azure-identity`` and hands it to the driver (``SQL_COPT_SS_ACCESS_TOKEN``), so every method
works the same way, whatever the server, and a failed token request is told apart from a
login the server refused.

    azure-ad-service-principal  username = application (client) id, password = client secret,
                                options.tenantId = the directory (tenant) id
    azure-ad-managed-identity   the worker's managed identity (IMDS, App Service, Arc ...);
                                username = a user-assigned identity's client id, or empty
    azure-ad-access-token       password = an access token the caller obtained (for the
                                database.windows.net audience); it expires, usually in an hour
    azure-ad-password           username + password of an Entra user, options.tenantId;
                                Microsoft is retiring it (MFA): prefer a service principal

The sign-in endpoint is ``AZURE_AUTHORITY_HOST`` (azure-identity's own setting: a sovereign
cloud, or a local fake in tests), a setting of the deployment, never of a connection: a
connection must not send a client secret to a host of its choosing. Managed identity
endpoints come from the environment as azure-identity reads them (``IDENTITY_ENDPOINT``,
``IDENTITY_HEADER``, ``MSI_ENDPOINT``, else IMDS).
"""

from __future__ import annotations

import os
import struct
import threading
from typing import Any

from flowforge_ingest.connectors.base import ConnectError, ConnectFailure, ConnectionParams
from flowforge_ingest.connectors.registry import shown
from flowforge_shared.contracts.connection_forms import entra_problem

SQL_SCOPE = "https://database.windows.net/.default"
# Azure CLI's public client id, which Microsoft's own SQL tools use for a user's password
# sign-in when no application of one's own is named (options.clientId).
_PUBLIC_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
_KNOWN_AUTHORITIES = {
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.microsoftonline.de",
}
SQL_COPT_SS_ACCESS_TOKEN = 1256  # the driver's connection attribute for a token

METHODS = (
    "azure-ad-service-principal",
    "azure-ad-managed-identity",
    "azure-ad-access-token",
    "azure-ad-password",
)


def is_entra(method: str) -> bool:
    return method in METHODS


def credential(params: ConnectionParams) -> Any:
    """The azure-identity credential for ``params`` (not used yet: no request is made)."""
    from azure import identity

    method = params.authentication
    problem = entra_problem(method, params.username, params.password is not None, params.options)
    if problem is not None:
        raise ConnectError(ConnectFailure.LOGIN, problem)
    tenant = params.options.get("tenantId")
    common: dict[str, Any] = {}
    authority = os.environ.get("AZURE_AUTHORITY_HOST")
    if authority:
        common["authority"] = authority
        if _host(authority) not in _KNOWN_AUTHORITIES:
            # a cloud MSAL does not know (or a local endpoint): no discovery on the public
            # cloud first, which a closed network could not reach anyway
            common["disable_instance_discovery"] = True
    if method == "azure-ad-service-principal":
        return identity.ClientSecretCredential(tenant, params.username, params.password, **common)
    if method == "azure-ad-password":
        client_id = params.options.get("clientId") or _PUBLIC_CLIENT_ID
        return identity.UsernamePasswordCredential(
            client_id, params.username, params.password, tenant_id=tenant, **common
        )
    if method == "azure-ad-managed-identity":
        return identity.ManagedIdentityCredential(client_id=params.username or None)
    raise ValueError(f"{method} needs no credential")


def access_token(params: ConnectionParams) -> str:
    """An access token for SQL Server, obtained for ``params``; a failed request is a
    ConnectError of kind ``login`` whose message says what the identity service answered."""
    if params.authentication == "azure-ad-access-token":
        problem = entra_problem(
            params.authentication, params.username, params.password is not None, params.options
        )
        if problem is not None:
            raise ConnectError(ConnectFailure.LOGIN, problem)
        return str(params.password).strip()
    from azure.core.exceptions import ClientAuthenticationError

    source = _cached_credential(params)
    try:
        return source.get_token(SQL_SCOPE).token
    except ClientAuthenticationError as error:
        raise ConnectError(
            ConnectFailure.LOGIN,
            f"Microsoft Entra ID did not issue a token for {_who(params)}: {_reason(error, params.password)}",
        ) from None
    except Exception as error:  # noqa: BLE001 (the identity endpoint's failures, classified)
        raise ConnectError(
            ConnectFailure.LOGIN,
            f"could not get a Microsoft Entra ID token for {_who(params)}: {_reason(error, params.password)}",
        ) from None


def _cached_credential(params: ConnectionParams) -> Any:
    """One credential per identity in this process, so azure-identity's own cache hands out
    the same token until it nears expiry (and the driver's pool, keyed by the token, reuses
    sessions). Keyed by a digest of the secret, never the secret itself."""
    import hashlib

    key = (
        params.authentication,
        params.options.get("tenantId"),
        params.options.get("clientId"),
        params.username,
        hashlib.sha256(str(params.password).encode()).hexdigest() if params.password else None,
        os.environ.get("AZURE_AUTHORITY_HOST"),
        os.environ.get("IDENTITY_ENDPOINT"),
    )
    with _CREDENTIALS_LOCK:
        found = _CREDENTIALS.get(key)
        if found is None:
            found = _CREDENTIALS[key] = credential(params)
        return found


_CREDENTIALS: dict[tuple, Any] = {}
_CREDENTIALS_LOCK = threading.Lock()


def token_attribute(token: str) -> dict[int, bytes]:
    """The driver's pre-connect attribute carrying ``token``: its UTF-16-LE bytes after a
    4-byte little-endian length, as the ODBC driver for SQL Server documents."""
    encoded = token.encode("utf-16-le")
    return {SQL_COPT_SS_ACCESS_TOKEN: struct.pack("<I", len(encoded)) + encoded}


def _who(params: ConnectionParams) -> str:
    method = params.authentication
    if method == "azure-ad-managed-identity":
        return (
            f"the managed identity {params.username!r}"
            if params.username
            else "the worker's managed identity"
        )
    if method == "azure-ad-service-principal":
        return f"the service principal {params.username!r} in tenant {params.options.get('tenantId')!r}"
    return f"the user {params.username!r}"


def _reason(error: BaseException, secret: str | None) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    message = shown(str(message), [secret])
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    text = "; ".join(lines[:3]) or type(error).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _host(authority: str) -> str:
    text = authority.split("://", 1)[-1]
    return text.split("/", 1)[0].split(":", 1)[0].lower()
