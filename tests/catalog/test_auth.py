import pytest

from tests.catalog.factories import csv_job, workflow

# Routes that authenticate the request themselves instead of with a token: a webhook
# trigger's signature (tests/orchestrator/test_webhooks.py). Nothing else may join them.
SIGNED_ROUTES = {("POST", "/api/hooks/{trigger_id}")}


def test_every_api_route_needs_a_token(backend, anonymous):
    checked = 0
    for path, operations in backend["app"].openapi()["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = path.replace("{workflow_id}", "x").replace("{job_id}", "y").replace("{token_id}", "z")
        for method in operations:
            response = anonymous.request(method.upper(), url)
            if (method.upper(), path) in SIGNED_ROUTES:  # unsigned: refused, nothing started
                assert response.status_code in (401, 404), (method, path, response.status_code)
                continue
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            checked += 1
    assert checked >= 15


def test_wrong_or_malformed_token_is_401(anonymous):
    assert (
        anonymous.get("/api/workflows", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert (
        anonymous.get("/api/workflows", headers={"Authorization": "Basic abc"}).status_code == 401
    )


def test_viewer_reads_but_cannot_change(viewer, editor):
    created = editor.post("/api/workflows", json=workflow()).json()
    url = f"/api/workflows/{created['id']}"
    assert viewer.get(url).status_code == 200
    assert viewer.get(f"{url}/jobs").status_code == 200
    for response in (
        viewer.post("/api/workflows", json=workflow()),
        viewer.patch(url, json={"description": "x"}),
        viewer.delete(url),
        viewer.post(f"{url}/pause"),
        viewer.post(f"{url}/clone"),
        viewer.post(f"{url}/jobs", json=csv_job()),
    ):
        assert response.status_code == 403
        assert "viewer" in response.json()["detail"]
    assert editor.get(url).json()["version"] == 1


def test_only_admin_manages_tokens(editor, viewer, admin):
    for api in (editor, viewer):
        assert api.get("/api/tokens").status_code == 403
        assert api.post("/api/tokens", json={"name": "x", "role": "admin"}).status_code == 403
    assert admin.get("/api/tokens").status_code == 200


def test_audit_is_for_auditors_editors_and_admins(viewer, editor, admin):
    assert viewer.get("/api/audit").status_code == 403
    assert editor.get("/api/audit").status_code == 200
    assert admin.get("/api/audit").status_code == 200


def test_token_is_shown_once_stored_hashed_and_revocable(backend, admin, anonymous):
    response = admin.post("/api/tokens", json={"name": "ci bot", "role": "editor"})
    assert response.status_code == 201
    created = response.json()
    secret = created["token"]
    assert secret.startswith("ff_") and created["prefix"] == secret[:8]
    listed = admin.get("/api/tokens").json()["data"]
    entry = next(item for item in listed if item["id"] == created["id"])
    assert "token" not in entry and secret not in str(listed)

    from sqlalchemy import text

    with backend["app"].state.database.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT token_hash FROM api_tokens WHERE id = :id"), {"id": created["id"]}
        ).scalar_one()
    assert stored != secret and len(stored) == 64

    headers = {"Authorization": f"Bearer {secret}"}
    assert anonymous.post("/api/workflows", json=workflow(), headers=headers).status_code == 201
    assert admin.delete(f"/api/tokens/{created['id']}").status_code == 204
    assert anonymous.get("/api/workflows", headers=headers).status_code == 401
    assert admin.delete(f"/api/tokens/{created['id']}").status_code == 409
    assert admin.delete("/api/tokens/unknown").status_code == 404
    revoked = next(i for i in admin.get("/api/tokens").json()["data"] if i["id"] == created["id"])
    assert revoked["revokedAt"] is not None


@pytest.mark.parametrize("body", [{"name": "x", "role": "root"}, {"name": "", "role": "viewer"}])
def test_token_creation_validates(admin, body):
    assert admin.post("/api/tokens", json=body).status_code == 422
