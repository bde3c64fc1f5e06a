"""The catalog keeps a valid token's principal in memory for FLOWFORGE_TOKEN_CHECK_TTL
seconds (checker.py), and revocation still bites: at once through this process, within the
TTL through another process sharing the database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from flowforge.app import create_app
from flowforge_catalog.tokens.checker import CatalogTokenChecker
from flowforge_catalog.tokens.models import ApiToken
from flowforge_shared.auth.tokens import hash_token
from flowforge_shared.db.base import utcnow
from tests.conftest import ADMIN_TOKEN, make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(tmp_path):
    # A long TTL: what makes the token fail below is the revocation, not the TTL.
    app = create_app(make_settings(tmp_path, token_check_ttl=600))
    yield app
    app.state.database.dispose()


def new_token(client: TestClient) -> tuple[str, str]:
    response = client.post(
        "/api/tokens",
        json={"name": "cached", "role": "editor"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["token"]


def test_a_token_revoked_through_this_process_fails_on_the_next_request(app):
    client = TestClient(app)
    token_id, secret = new_token(client)
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/workflows", headers=headers).status_code == 200  # now kept
    revoked = client.delete(
        f"/api/tokens/{token_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert revoked.status_code == 204
    assert client.get("/api/workflows", headers=headers).status_code == 401


def test_a_token_revoked_elsewhere_fails_here_within_the_ttl(app):
    """Another process sharing the database (another replica) revokes it: this checker
    answers from memory until the TTL ends, then reads the table again."""
    client = TestClient(app)
    token_id, secret = new_token(client)
    clock = Clock()
    checker = CatalogTokenChecker(app.state.database, ttl=2.0, clock=clock)
    principal = checker.check(secret)
    assert principal is not None and principal.token_id == token_id

    with app.state.database.session() as session:  # the other process's revocation
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))
    clock.now += 1.9
    assert checker.check(secret) == principal  # still kept: within the documented bound
    clock.now += 0.2
    assert checker.check(secret) is None  # past the TTL: read again, refused
    clock.now += 100
    assert checker.check(secret) is None  # a refusal is never kept


def test_with_no_ttl_every_check_reads_the_table(app):
    client = TestClient(app)
    token_id, secret = new_token(client)
    checker = CatalogTokenChecker(app.state.database, ttl=0, clock=Clock())
    assert checker.check(secret) is not None
    with app.state.database.session() as session:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))
    assert checker.check(secret) is None


def test_forget_drops_the_kept_principal(app):
    client = TestClient(app)
    token_id, secret = new_token(client)
    checker = CatalogTokenChecker(app.state.database, ttl=600, clock=Clock())
    assert checker.check(secret) is not None
    with app.state.database.session() as session:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))
    assert checker.check(secret) is not None  # kept
    checker.forget(hash_token(secret))
    assert checker.check(secret) is None
