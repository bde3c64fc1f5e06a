"""A service running without the catalog checks tokens by asking the catalog, never by
reading the catalog's tables: here the catalog is served by uvicorn on a free port, and the
orchestrator runs on a database of its own that holds no token at all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from flowforge.app import create_single_service_app
from flowforge_shared.auth import introspection
from flowforge_shared.auth.introspection import RemoteTokenChecker
from flowforge_shared.settings import UnsafeSettings
from tests.conftest import ADMIN_TOKEN, free_port, make_settings, served

SERVICE_SECRET = "s" * 40
TTL = 1.0
BROKER = "redis://127.0.0.1:6379/14"
# The catalog here is a thread of this test process: on a loaded machine (CI, the whole
# suite) one of its answers has taken longer than httpx's 5 s, to the test's own calls as
# to the orchestrator's. How fast it answers is not what these tests are about.
PATIENT = httpx.Timeout(30.0)


@pytest.fixture(autouse=True)
def patient_introspection(monkeypatch) -> None:
    """The catalog here is a thread of this test process, sharing its interpreter with the
    orchestrator under test: on a loaded machine an answer has taken longer than a service's
    5 s, and the ReadTimeout became a 503 of its own ("does not answer") instead of the one
    a test asks about. The services' timeout is not what these tests are about."""
    monkeypatch.setattr(introspection, "TIMEOUT", PATIENT)


@pytest.fixture
def catalog_url(tmp_path) -> Iterator[str]:
    """The catalog alone, served for real on 127.0.0.1."""
    app = create_single_service_app(
        "catalog", make_settings(tmp_path / "catalog", service_secret=SERVICE_SECRET)
    )
    with served(app, "the catalog") as url:
        yield url


def orchestrator(tmp_path: Path, catalog_url: str, **extra) -> TestClient:
    """The orchestrator alone, on its own SQLite database (its FLOWFORGE_ADMIN_TOKEN is
    registered by the catalog only)."""
    # An orchestrator alone reaches its workers through a broker (nothing is sent here).
    options = {
        "service_secret": SERVICE_SECRET,
        "token_cache_ttl": TTL,
        "broker_url": BROKER,
        **extra,
    }
    settings = make_settings(tmp_path / "orchestrator", catalog_url=catalog_url, **options)
    return TestClient(create_single_service_app("orchestrator", settings))


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def new_token(catalog_url: str, role: str) -> tuple[str, str]:
    created = httpx.post(
        f"{catalog_url}/api/tokens",
        json={"name": f"a {role}", "role": role},
        headers=bearer(ADMIN_TOKEN),
        timeout=PATIENT,
    ).json()
    return created["id"], created["token"]


def test_a_valid_token_works_and_a_revoked_one_stops_within_the_ttl(tmp_path, catalog_url):
    token_id, token = new_token(catalog_url, "editor")
    with orchestrator(tmp_path, catalog_url) as client:
        assert client.get("/api/executions", headers=bearer(token)).status_code == 200
        assert client.get("/api/executions", headers=bearer(ADMIN_TOKEN)).status_code == 200
        # Roles come with the answer: a viewer may read, not write.
        _, viewer = new_token(catalog_url, "viewer")
        assert client.get("/api/executions", headers=bearer(viewer)).status_code == 200
        refused = client.post("/api/executions/x/cancel", headers=bearer(viewer))
        assert refused.status_code == 403 and "viewer" in refused.json()["detail"]

        revoked = httpx.delete(
            f"{catalog_url}/api/tokens/{token_id}", headers=bearer(ADMIN_TOKEN), timeout=PATIENT
        )
        assert revoked.status_code == 204
        # The catalog refuses it at once; the orchestrator trusts its answer until the TTL.
        refused = httpx.get(f"{catalog_url}/api/workflows", headers=bearer(token), timeout=PATIENT)
        assert refused.status_code == 401
        assert client.get("/api/executions", headers=bearer(token)).status_code == 200
        time.sleep(TTL + 0.2)
        answer = client.get("/api/executions", headers=bearer(token))
        assert answer.status_code == 401
        assert answer.json()["detail"] == "invalid or revoked token"
        assert client.get("/api/executions", headers=bearer("ff_nope")).status_code == 401

        # The orchestrator's own database has no token table at all: it asked the catalog.
        assert "api_tokens" not in inspect(client.app.state.database.engine).get_table_names()


def test_the_catalog_notes_a_token_used_on_another_service(tmp_path, catalog_url):
    token_id, token = new_token(catalog_url, "viewer")
    with orchestrator(tmp_path, catalog_url) as client:
        client.get("/api/executions", headers=bearer(token))
    listed = httpx.get(
        f"{catalog_url}/api/tokens", headers=bearer(ADMIN_TOKEN), timeout=PATIENT
    ).json()["data"]
    assert next(item for item in listed if item["id"] == token_id)["lastUsedAt"] is not None


def test_introspection_needs_the_service_secret(catalog_url):
    url = f"{catalog_url}/api/internal/tokens/introspect"
    for headers in ({}, bearer("wrong-secret"), bearer(ADMIN_TOKEN)):
        answer = httpx.post(url, json={"token": ADMIN_TOKEN}, headers=headers, timeout=PATIENT)
        assert answer.status_code == 401, headers
        assert ADMIN_TOKEN not in answer.text
    answer = httpx.post(
        url, json={"token": ADMIN_TOKEN}, headers=bearer(SERVICE_SECRET), timeout=PATIENT
    )
    assert answer.status_code == 200
    assert answer.json()["active"] is True and answer.json()["role"] == "admin"
    answer = httpx.post(
        url, json={"token": "ff_nope"}, headers=bearer(SERVICE_SECRET), timeout=PATIENT
    )
    assert answer.json() == {"active": False, "tokenId": None, "name": None, "role": None}


def test_a_wrong_service_secret_is_a_clear_503(tmp_path, catalog_url):
    with orchestrator(tmp_path, catalog_url, service_secret="w" * 40) as client:
        answer = client.get("/api/executions", headers=bearer(ADMIN_TOKEN))
    assert answer.status_code == 503
    assert "FLOWFORGE_SERVICE_SECRET" in answer.json()["detail"]


def test_the_catalog_down_is_a_503_saying_so(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    with orchestrator(tmp_path, down) as client:
        answer = client.get("/api/executions", headers=bearer(ADMIN_TOKEN))
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith(f"cannot check the token: the catalog at {down}")
    assert int(answer.headers["Retry-After"]) > 0


def test_without_a_catalog_url_the_answer_says_what_to_set(tmp_path):
    with orchestrator(tmp_path, None) as client:
        answer = client.get("/api/executions", headers=bearer(ADMIN_TOKEN))
    assert answer.status_code == 503
    assert "FLOWFORGE_CATALOG_URL" in answer.json()["detail"]


def test_production_refuses_a_service_that_cannot_ask_the_catalog(tmp_path, postgres_url):
    settings = make_settings(
        tmp_path,
        postgres_url,
        environment="production",
        secret_key=Fernet.generate_key().decode(),
        broker_url=BROKER,
    )
    with pytest.raises(UnsafeSettings, match="FLOWFORGE_CATALOG_URL and FLOWFORGE_SERVICE_SECRET"):
        create_single_service_app("orchestrator", settings)


def test_answers_are_cached_for_the_ttl_under_the_token_hash(tmp_path):
    asked = []

    def catalog(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(
            200, json={"active": True, "tokenId": "t1", "name": "bot", "role": "editor"}
        )

    settings = make_settings(
        tmp_path, catalog_url="http://catalog", service_secret=SERVICE_SECRET, token_cache_ttl=60
    )
    checker = RemoteTokenChecker(settings, transport=httpx.MockTransport(catalog))
    first = checker.check("ff_secret")
    assert checker.check("ff_secret") == first and first.role == "editor"
    assert len(asked) == 1
    assert asked[0].headers["Authorization"] == f"Bearer {SERVICE_SECRET}"
    assert "ff_secret" not in repr(checker._cache)


def test_a_nonsense_answer_is_a_503_not_a_500(tmp_path):
    from flowforge_shared.errors import ServiceUnavailable

    settings = make_settings(tmp_path, catalog_url="http://catalog", service_secret=SERVICE_SECRET)
    checker = RemoteTokenChecker(
        settings, transport=httpx.MockTransport(lambda _: httpx.Response(200, text="<html>"))
    )
    with pytest.raises(ServiceUnavailable, match="answered 200"):
        checker.check("ff_secret")


@pytest.mark.parametrize("stale_ttl", [900.0, 0.0])
def test_while_the_catalog_is_down_the_last_answer_is_used_for_the_stale_ttl(tmp_path, stale_ttl):
    from flowforge_shared.errors import ServiceUnavailable

    up = {"answering": True}

    def catalog(request: httpx.Request) -> httpx.Response:
        if not up["answering"]:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(
            200, json={"active": True, "tokenId": "t1", "name": "bot", "role": "viewer"}
        )

    settings = make_settings(
        tmp_path,
        catalog_url="http://catalog",
        service_secret=SERVICE_SECRET,
        token_cache_ttl=0.05,
        token_stale_ttl=stale_ttl,
    )
    checker = RemoteTokenChecker(settings, transport=httpx.MockTransport(catalog))
    assert checker.check("ff_known").role == "viewer"
    up["answering"] = False
    time.sleep(0.1)  # past the TTL: the checker asks again, and the catalog is down
    if stale_ttl:
        assert checker.check("ff_known").role == "viewer"
    else:
        with pytest.raises(ServiceUnavailable, match="does not answer"):
            checker.check("ff_known")
    with pytest.raises(ServiceUnavailable, match="does not answer"):
        checker.check("ff_never_seen")  # no earlier answer to fall back on
