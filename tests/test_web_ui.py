"""The web UI's bundle is served by FlowForge itself (issue 16): index.html at ``/`` and at
every UI route (a reload or a shared link of ``/workflows/{id}?tab=lineage`` works), the
hashed assets under ``/assets``, while ``/api``, ``/healthz`` and unknown paths are as before."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from flowforge_shared.web import WEB_UI_ROUTES
from tests.conftest import ADMIN_TOKEN, make_settings

INDEX = '<!doctype html><html><body><div id="root"></div><script src="/assets/app-1.js"></script>'


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from flowforge.app import create_app

    data_dir = tmp_path_factory.mktemp("web")
    bundle = data_dir / "dist"
    (bundle / "assets").mkdir(parents=True)
    (bundle / "index.html").write_text(INDEX)
    (bundle / "assets" / "app-1.js").write_text("console.log('ui')")
    app = create_app(make_settings(data_dir, web_dist=bundle))
    with TestClient(app) as client:
        yield client
    app.state.database.dispose()


HTML = {"Accept": "text/html,application/xhtml+xml"}


def test_the_ui_answers_at_the_root_and_every_ui_route(client):
    for url in [
        "/",
        "/login",
        "/workflows",
        "/workflows/abc?tab=lineage",
        "/executions/e1",
        "/catalog/gold_customer_360",
        "/templates/bfsi-customer-360",
        "/connections",
        "/audit",
    ]:
        page = client.get(url, headers=HTML)
        assert page.status_code == 200, url
        assert page.text == INDEX, url
        assert page.headers["cache-control"] == "no-cache"
    assert {"workflows", "templates", "catalog", "executions", "login"} <= set(WEB_UI_ROUTES)
    asset = client.get("/assets/app-1.js")
    assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]


def test_the_api_and_health_checks_stay_as_they_were(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/api/workflows").status_code == 401  # JSON, not the UI
    assert client.get("/nope").status_code == 404
    assert client.get("/assets/missing.js").status_code == 404
    body = client.get("/").json()  # a program (no text/html) still gets where to go
    assert body["links"]["ui"] == "/workflows" and "webUi" not in body


def test_who_am_i_names_the_role_of_any_token(client):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.get("/api/tokens/me", headers=admin).json()["role"] == "admin"
    viewer = client.post("/api/tokens", json={"name": "v", "role": "viewer"}, headers=admin)
    token = viewer.json()["token"]
    me = client.get("/api/tokens/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me == {"tokenId": viewer.json()["id"], "name": "v", "role": "viewer"}
    assert client.get("/api/tokens/me").status_code == 401
