from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, SecretStr, StringConstraints

from flowforge_shared.contracts.base import ApiModel, ApiOutModel
from flowforge_shared.contracts.jobs import DatabaseSourceType

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Authentication(StrEnum):
    SQL = "sql"
    WINDOWS = "windows"
    AZURE_AD_PASSWORD = "azure-ad-password"  # noqa: S105 (a method's name)
    AZURE_AD_SERVICE_PRINCIPAL = "azure-ad-service-principal"
    AZURE_AD_MANAGED_IDENTITY = "azure-ad-managed-identity"
    AZURE_AD_ACCESS_TOKEN = "azure-ad-access-token"  # noqa: S105 (a method's name)


class ConnectionOptions(ApiModel):
    """Every option of every type; which ones a type takes is connection_forms.FORMS."""

    encrypt: bool | Literal["optional", "mandatory", "strict"] | None = None
    trust_server_certificate: bool | None = None
    ca_file: str | None = Field(default=None, max_length=1024)
    host_name_in_certificate: str | None = Field(default=None, max_length=255)
    tenant_id: str | None = Field(default=None, max_length=128)
    client_id: str | None = Field(default=None, max_length=128)
    multi_subnet_failover: bool | None = None
    application_intent: Literal["ReadOnly", "ReadWrite"] | None = None
    connect_timeout: int | None = Field(default=None, ge=1, le=300)
    query_timeout: int | None = Field(default=None, ge=1, le=86_400)
    schema_name: str | None = Field(default=None, alias="schema", max_length=128)
    warehouse: str | None = Field(default=None, max_length=255)
    role: str | None = Field(default=None, max_length=255)
    account: str | None = Field(default=None, max_length=255)
    instance: str | None = Field(default=None, max_length=128)


class ConnectionFields(ApiModel):
    """Where and how to connect: a pasted connection string, or the individual fields."""

    type: DatabaseSourceType
    connection_string: SecretStr | None = Field(
        default=None, description="ADO.NET, ODBC, libpq or URL; parsed into the fields"
    )
    host: str | None = Field(default=None, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    database: str | None = Field(default=None, max_length=1024)
    username: str | None = Field(default=None, max_length=255)
    password: SecretStr | None = None
    authentication: Authentication = Authentication.SQL
    options: ConnectionOptions = Field(default_factory=ConnectionOptions)


class ConnectionCreate(ConnectionFields):
    name: Name


class ConnectionUpdate(ApiModel):
    name: Name | None = None
    connection_string: SecretStr | None = None
    host: str | None = Field(default=None, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    database: str | None = Field(default=None, max_length=1024)
    username: str | None = Field(default=None, max_length=255)
    password: SecretStr | None = None
    authentication: Authentication | None = None
    options: ConnectionOptions | None = None
    version: int | None = None


class ConnectionPublic(ApiOutModel):
    id: str
    name: str
    type: str
    host: str | None
    port: int | None
    database: str | None
    username: str | None
    password: str | None = Field(description="******** when a password is stored; never the value")
    authentication: str
    options: dict
    warnings: list[str] = Field(
        default_factory=list, description="settings that weaken the connection's security"
    )
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class TestConnectionRequest(ApiModel):
    """What to test, in one of three shapes (docs/api.md): ``{"connectionId": ...}`` (a saved
    connection), ``{"connection": {fields}}``, or the fields themselves at the top level —
    the body ``POST /api/connections`` takes, its ``name`` ignored. Top-level fields are
    kept in ``model_extra`` and checked as :class:`ConnectionFields` by the route, which
    answers 422 naming each field, and 422 saying what to send when no shape or more than
    one is given."""

    model_config = ConfigDict(extra="allow")

    connection_id: str | None = None
    connection: ConnectionFields | None = None


class TestConnectionResult(ApiOutModel):
    success: bool
    message: str
    kind: str | None = None
    server_version: str | None = None
    tables: list[dict] | None = None
