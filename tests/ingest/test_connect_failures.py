"""How a driver's "timed out" is told apart: after the network guard resolved the host, a
timeout is either a port where something listens and keeps quiet (another service: the
protocol is wrong) or a host that does not answer (no route, a firewall) — never "the host
name does not resolve". Real sockets on this machine decide it."""

from __future__ import annotations

import socket

from flowforge_ingest.connectors.base import ConnectFailure, ConnectionParams
from flowforge_ingest.connectors.registry import connect_failure
from tests.conftest import free_port


def params(port: int | None, resolved: tuple[str, ...] = ("127.0.0.1",)) -> ConnectionParams:
    return ConnectionParams(
        db_type="postgresql",
        host="db.internal",
        port=port,
        username="u",
        options={"connectTimeout": 2},
        resolved_addresses=resolved,
    )


def test_a_quiet_listener_is_another_service_not_an_unreachable_host():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        failure = connect_failure(
            ConnectFailure.UNREACHABLE, "connection timeout expired", "postgresql", params(port)
        )
    assert failure.kind is ConnectFailure.PROTOCOL
    assert failure.message.startswith(
        f"something answered on db.internal:{port}, but it is not a PostgreSQL server"
    )
    assert "accepted the connection, then said nothing" in failure.message


def test_a_resolved_host_that_does_not_answer_is_not_called_a_name_that_does_not_resolve():
    failure = connect_failure(
        ConnectFailure.UNREACHABLE, "connection timeout expired", "postgresql", params(free_port())
    )
    assert failure.kind is ConnectFailure.UNREACHABLE
    assert "does not resolve" not in failure.message
    assert "does not answer in time" in failure.message


def test_without_a_checked_address_nothing_is_probed():
    failure = connect_failure(
        ConnectFailure.UNREACHABLE, "could not translate host name", "postgresql", params(5432, ())
    )
    assert failure.kind is ConnectFailure.UNREACHABLE
    assert "does not resolve" in failure.message


def test_the_address_named_has_the_default_port_when_none_was_given():
    failure = connect_failure(
        ConnectFailure.PROTOCOL, "invalid response to SSL negotiation", "mysql", params(None)
    )
    assert failure.message.startswith("something answered on db.internal:3306, but it is not")
