"""Saved database connections: create from fields or a pasted connection string, change,
delete; the password is encrypted before it is stored and never comes back out of the API.

Checks on save: the fields each database needs, no password with Windows authentication, and
the network guard (no link-local or cloud-metadata targets; the allow/deny settings) and the
refusal of options that make a driver read local files. The worker checks again when it
connects (a name can resolve differently later).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowforge_catalog.audit import service as audit
from flowforge_catalog.connections.models import Connection
from flowforge_catalog.connections.schemas import (
    ConnectionCreate,
    ConnectionFields,
    ConnectionOptions,
    ConnectionPublic,
    ConnectionUpdate,
)
from flowforge_catalog.jobs.models import Job
from flowforge_rules.connstrings import ConnectionStringError, parse_connection_string
from flowforge_rules.network import (
    HostLookupError,
    OptionRefused,
    TargetRefused,
    check_target,
    refuse_dangerous_options,
)
from flowforge_shared.contracts import connection_forms
from flowforge_shared.contracts.connection_forms import entra_problem
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound, Unprocessable, check_version
from flowforge_shared.secrets import MASK, SecretBox
from flowforge_shared.settings import Settings

ENTITY = "connection"
# Options a pasted connection string may carry that FlowForge keeps (others are dropped).
KNOWN_OPTIONS = {
    "encrypt",
    "trustServerCertificate",
    "applicationIntent",
    "connectTimeout",
    "queryTimeout",
    "schema",
    "warehouse",
    "role",
    "account",
    "instance",
    "caFile",
    "hostNameInCertificate",
    "tenantId",
    "clientId",
    "multiSubnetFailover",
}


def to_public(connection: Connection) -> ConnectionPublic:
    return ConnectionPublic(
        id=connection.id,
        name=connection.name,
        type=connection.type,
        host=connection.host,
        port=connection.port,
        database=connection.database,
        username=connection.username,
        password=MASK if connection.password_encrypted else None,
        authentication=connection.authentication,
        options=connection.options,
        warnings=warnings(connection.type, connection.options or {}),
        created_by=connection.created_by,
        created_at=connection.created_at,
        updated_at=connection.updated_at,
        version=connection.version,
    )


def warnings(db_type: str, options: dict[str, Any]) -> list[str]:
    """What the user should know weakens this connection."""
    found = []
    encrypt = options.get("encrypt")
    if options.get("trustServerCertificate") is True and encrypt != "strict":
        found.append(
            "trustServerCertificate is set: the server's certificate is not checked, so "
            "anyone on the network path could pose as the server and read the traffic"
        )
    if db_type == "sql-server" and encrypt in (False, "optional"):
        found.append("encryption is off: credentials and data cross the network in clear text")
    return found


def snapshot(connection: Connection) -> dict:
    data = to_public(connection).model_dump(mode="json", by_alias=True)
    data.pop("createdAt")
    data.pop("updatedAt")
    return data


def payload(connection: Connection) -> dict[str, Any]:
    """What a worker needs to connect; the password stays encrypted in it."""
    return {
        "id": connection.id,
        "type": connection.type,
        "host": connection.host,
        "port": connection.port,
        "database": connection.database,
        "username": connection.username,
        "passwordEncrypted": connection.password_encrypted,
        "authentication": connection.authentication,
        "options": connection.options,
    }


def get_or_raise(session: Session, *, connection_id: str) -> Connection:
    connection = session.get(Connection, connection_id)
    if connection is None:
        raise NotFound(f"connection {connection_id} not found")
    return connection


def get_all(session: Session) -> list[Connection]:
    return list(session.scalars(select(Connection).order_by(Connection.name)))


def resolve_fields(data: ConnectionFields, settings: Settings, box: SecretBox) -> dict[str, Any]:
    """The stored columns for these fields (or this connection string), checked."""
    fields: dict[str, Any] = {
        "host": data.host,
        "port": data.port,
        "database": data.database,
        "username": data.username,
        "password": data.password.get_secret_value() if data.password else None,
        "options": data.options.model_dump(by_alias=True, exclude_none=True),
    }
    if data.connection_string is not None:
        given = [key for key in ("host", "port", "database", "username", "password") if fields[key]]
        if given:
            raise Unprocessable(
                [
                    (
                        ("connectionString",),
                        f"give a connection string or {', '.join(given)}, not both",
                    )
                ]
            )
        try:
            parsed = parse_connection_string(data.connection_string.get_secret_value(), data.type)
        except ConnectionStringError as error:
            raise Unprocessable([(("connectionString",), str(error))]) from None
        try:  # everything pasted is checked, even the options FlowForge then drops
            refuse_dangerous_options(
                data.type,
                parsed.options,
                host=parsed.host,
                database=parsed.database,
                sqlite_root=settings.sqlite_root,
                ca_root=settings.ca_root,
            )
        except OptionRefused as error:
            raise Unprocessable([(("connectionString",), str(error))]) from None
        options = {key: value for key, value in parsed.options.items() if key in KNOWN_OPTIONS}
        if parsed.instance:
            options["instance"] = parsed.instance
        try:
            parsed_options = ConnectionOptions.model_validate(_typed_options(options))
        except ValueError as error:
            raise Unprocessable(
                [(("connectionString",), f"unsupported option value: {error}")]
            ) from None
        fields.update(
            host=parsed.host,
            port=parsed.port,
            database=parsed.database,
            username=parsed.username,
            password=parsed.password,
            options={
                **parsed_options.model_dump(by_alias=True, exclude_none=True),
                **fields["options"],
            },
        )
    return _checked(data.type, data.authentication.value, fields, settings, box)


def _typed_options(options: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for key, value in options.items():
        if key == "encrypt" and str(value).lower() in ("strict", "mandatory", "optional"):
            typed[key] = str(value).lower()
        elif key in ("encrypt", "trustServerCertificate", "multiSubnetFailover"):
            typed[key] = str(value).lower() in ("true", "yes", "1")
        elif key in ("connectTimeout", "queryTimeout"):
            typed[key] = int(value)
        else:
            typed[key] = value
    return typed


def _checked(
    db_type: str, authentication: str, fields: dict[str, Any], settings: Settings, box: SecretBox
) -> dict[str, Any]:
    errors: list[tuple[tuple[str, ...], str]] = []
    encrypt = fields["options"].get("encrypt")
    if db_type != "sql-server" and encrypt in ("mandatory", "optional"):
        # PostgreSQL and MySQL connectors read yes/no (and strict, which they verify)
        fields["options"]["encrypt"] = encrypt == "mandatory"
    if db_type == "sqlite":
        if not fields["database"]:
            errors.append((("database",), "an SQLite connection needs the database file's path"))
    elif db_type == "snowflake":
        if not (fields["host"] or fields["options"].get("account")):
            errors.append((("options", "account"), "a Snowflake connection needs its account"))
    elif not fields["host"]:
        errors.append((("host",), f"a {db_type} connection needs a host"))
    problem = connection_forms.authentication_problem(db_type, authentication)
    if problem is not None:
        errors.append((("authentication",), problem))
    if authentication == "windows" and fields["password"]:
        errors.append((("password",), "Windows authentication stores no password"))
    if authentication.startswith("azure-ad-"):
        problem = entra_problem(
            authentication, fields["username"], bool(fields["password"]), fields["options"]
        )
        if problem is not None:
            errors.append((("authentication",), problem))
    errors.extend(
        (("options", name), message)
        for name, message in connection_forms.option_problems(db_type, fields["options"])
    )
    if errors:
        raise Unprocessable(errors)
    try:
        if fields["host"] and db_type != "sqlite":
            try:
                check_target(
                    fields["host"],
                    fields["port"],
                    allow=settings.allow_list,
                    deny=settings.deny_list,
                )
            except HostLookupError:
                pass  # a name that does not resolve (yet) is no threat; the worker checks again
        refuse_dangerous_options(
            db_type,
            fields["options"],
            host=fields["host"],
            database=fields["database"],
            sqlite_root=settings.sqlite_root,
            ca_root=settings.ca_root,
        )
    except (TargetRefused, OptionRefused) as error:
        raise Unprocessable(
            [(("host" if isinstance(error, TargetRefused) else "options",), str(error))]
        ) from None
    password = fields.pop("password")
    fields["password_encrypted"] = box.encrypt(password) if password else None
    fields["authentication"] = authentication
    return fields


def create(
    session: Session, *, data: ConnectionCreate, settings: Settings, box: SecretBox, actor: str
) -> Connection:
    fields = resolve_fields(data, settings, box)
    now = utcnow()
    connection = Connection(
        name=data.name, type=data.type, created_by=actor, created_at=now, updated_at=now, **fields
    )
    session.add(connection)
    _flush(session, data.name)
    audit.record(
        session,
        actor=actor,
        action="connection.create",
        entity_type=ENTITY,
        entity_id=connection.id,
        after=snapshot(connection),
    )
    return connection


def update(
    session: Session,
    *,
    connection: Connection,
    data: ConnectionUpdate,
    expected_version: int | None,
    settings: Settings,
    box: SecretBox,
    actor: str,
) -> Connection:
    check_version(connection.version, expected_version, what=f"connection {connection.name}")
    before = snapshot(connection)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    if "password" in changes and data.password is not None and not data.password.get_secret_value():
        # An empty password is a form's untouched field: it keeps the stored one, as leaving
        # the key out does (``null`` still removes it).
        del changes["password"]
        data = data.model_copy(update={"password": None})
    if "name" in changes:
        if changes["name"] is None:
            raise Unprocessable([(("name",), "name cannot be null")])
        connection.name = changes.pop("name")
    if changes:
        current = ConnectionFields(
            type=connection.type,
            host=connection.host,
            port=connection.port,
            database=connection.database,
            username=connection.username,
            authentication=connection.authentication,
            options=ConnectionOptions.model_validate(connection.options),
        )
        merged = current.model_dump(exclude_none=True)
        if "connection_string" in changes:
            for key in ("host", "port", "database", "username"):
                merged.pop(key, None)
        merged.update(
            {k: v for k, v in changes.items() if k not in ("password", "connection_string")}
        )
        if "options" in changes and changes["options"] is None:
            merged["options"] = {}
        new = ConnectionFields.model_validate(
            {**merged, "password": data.password, "connection_string": data.connection_string}
        )
        keep_password = "password" not in changes and "connection_string" not in changes
        fields = resolve_fields(new, settings, box)
        if (
            keep_password
            and fields["password_encrypted"] is None
            and new.authentication != "windows"
        ):
            _refuse_moving_the_password(connection, fields)
            fields["password_encrypted"] = connection.password_encrypted
        for key, value in fields.items():
            setattr(connection, key, value)
    connection.updated_at = utcnow()
    _flush(session, connection.name)
    audit.record(
        session,
        actor=actor,
        action="connection.update",
        entity_type=ENTITY,
        entity_id=connection.id,
        before=before,
        after=snapshot(connection),
    )
    return connection


def _refuse_moving_the_password(connection: Connection, fields: dict[str, Any]) -> None:
    """A stored password is only ever sent to the server it was given for: pointing the
    connection elsewhere (host or port; the type cannot change) needs the password again, or
    an editor could aim it at a server of their own and read it there."""
    if connection.password_encrypted is None:
        return
    moved = [key for key in ("host", "port") if fields[key] != getattr(connection, key)]
    if moved:
        raise Unprocessable(
            [
                (
                    ("password",),
                    f"give the password again: the connection now points elsewhere "
                    f"({' and '.join(moved)} changed), and a stored password is only sent to the "
                    "server it was given for",
                )
            ]
        )


def delete(session: Session, *, connection: Connection, actor: str) -> None:
    users = [
        job.name
        for job in session.scalars(select(Job))
        if (job.config.get("sourceConfig", {}).get("databaseConfig") or {}).get("connectionId")
        == connection.id
    ]
    if users:
        raise Conflict(f"connection {connection.name} is used by job(s) {', '.join(sorted(users))}")
    before = snapshot(connection)
    session.delete(connection)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="connection.delete",
        entity_type=ENTITY,
        entity_id=connection.id,
        before=before,
    )


def rotate_secrets(session: Session, *, box: SecretBox) -> int:
    """Re-encrypt every stored password with the first configured key."""
    count = 0
    for connection in get_all(session):
        if connection.password_encrypted:
            connection.password_encrypted = box.rotate(connection.password_encrypted)
            connection.updated_at = utcnow()
            count += 1
    session.flush()
    return count


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as error:
        raise Conflict(f"a connection named {name!r} already exists") from error
