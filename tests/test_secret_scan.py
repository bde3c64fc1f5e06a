"""The session-wide secret scan of tests/conftest.py really sees logs and responses."""

import logging

from fastapi.testclient import TestClient

from tests.conftest import SEEN_TEXTS, leaked_secrets, make_settings


def test_the_scan_records_log_lines_and_response_bodies(tmp_path):
    from flowforge.app import create_app

    logging.getLogger("flowforge.test").warning("scan-marker-%s", "4711")
    app = create_app(make_settings(tmp_path))
    with TestClient(app) as client:
        client.get("/healthz")
    app.state.database.dispose()
    assert any("scan-marker-4711" in text for text in SEEN_TEXTS)
    assert any('"status":"ok"' in text for text in SEEN_TEXTS)


def test_the_scan_would_catch_a_leak():
    SEEN_TEXTS.append("connecting with password=hunter2")
    try:
        assert leaked_secrets() and leaked_secrets()[0][0] == "hunter2"
    finally:
        SEEN_TEXTS.pop()
