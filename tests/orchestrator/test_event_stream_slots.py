"""An open run event stream (server-sent events) holds none of the API's request slots: the
browser keeps one open per run page, and the API's requests take a slot each before their
session (flowforge_shared.deps.get_session)."""

from __future__ import annotations

import threading
import time

import httpx

from flowforge.app import create_app
from flowforge_orchestrator.runs.models import Execution
from flowforge_shared import deps, web
from tests.conftest import ADMIN_TOKEN, make_settings, served

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_an_open_event_stream_leaves_the_request_slots_to_other_requests(
    tmp_path, fresh_postgres_url, monkeypatch
):
    monkeypatch.setattr(web, "API_POOL", 1)  # one request slot
    monkeypatch.setattr(deps, "ADMISSION_WAIT", 1.0)
    app = create_app(make_settings(tmp_path, database_url=fresh_postgres_url))
    with served(app) as url:
        # Made once the app serves: at start an embedded app fails the runs it finds running.
        with app.state.database.session() as session:
            running = Execution(
                workflow_id="w", workflow_name="w", status="running", trigger="manual"
            )
            session.add(running)
            session.flush()
            execution_id = running.id
        opened = threading.Event()
        streamed: list[int] = []

        def follow() -> None:
            with httpx.stream(
                "GET", f"{url}/api/executions/{execution_id}/events", headers=HEADERS, timeout=30
            ) as response:
                streamed.append(response.status_code)
                opened.set()
                for _ in response.iter_bytes():  # until the run ends, below
                    pass

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        assert opened.wait(15)
        time.sleep(0.5)  # the stream is open (a running execution's: it does not end)
        answers = [
            httpx.get(f"{url}/api/executions", headers=HEADERS, timeout=30).status_code
            for _ in range(3)
        ]
        with app.state.database.session() as session:
            session.get(Execution, running.seq).status = "succeeded"
        follower.join(15)  # the stream said execution.finished and ended
        assert not follower.is_alive()
    assert streamed == [200]
    assert answers == [200, 200, 200]
