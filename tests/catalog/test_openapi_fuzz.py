"""Schemathesis generates requests from our OpenAPI document; no request may end in a 5xx.

The app is built at import time (schemathesis' fixture loader does not work with pytest 9),
in a temporary data dir of its own, on the embedded SQLite database."""

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from flowforge.app import create_app
from tests.conftest import ADMIN_TOKEN, make_settings

app = create_app(make_settings(Path(tempfile.mkdtemp(prefix="flowforge-fuzz-"))))


async def requests_only(scope, receive, send):
    """The app without its lifespan: schemathesis ends an app's lifespan after every test
    item, which would close the job and database-operation pools the next items use."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": f"{message['type']}.complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await app(scope, receive, send)


schema = schemathesis.openapi.from_asgi("/api/openapi.json", requests_only)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_ends_in_a_server_error(case):
    response = case.call(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code < 500, (case.method, case.path, response.text)
