"""/api/docs works on a network without the internet: its page names only this server's URLs
and each answers 200; ``/`` says where to go instead of 404 (issue 12)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from flowforge.app import create_app

    # No web UI bundle here: `/` answers where to go (tests/test_web_ui.py serves a bundle).
    data_dir = tmp_path_factory.mktemp("docs")
    app = create_app(make_settings(data_dir, web_dist=data_dir / "no-bundle"))
    with TestClient(app) as client:
        yield client
    app.state.database.dispose()


def referenced_urls(page: str) -> list[str]:
    """Every URL the page makes a browser load: src=, href=, and the Swagger UI ``url:``."""
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    urls += re.findall(r"""\burl\s*:\s*["']([^"']+)["']""", page)
    return urls


def test_the_docs_page_loads_only_local_files_and_each_answers(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = referenced_urls(page.text)
    assert any(url.endswith(".js") for url in urls) and any(url.endswith(".css") for url in urls)
    assert "/api/openapi.json" in urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not on this server"
        assert url.startswith("/"), url
        answer = client.get(urljoin("http://testserver/api/docs", url))
        assert answer.status_code == 200, url
        assert answer.content, url
    # No other host is named anywhere in the page (a CDN, the online validator).
    assert not re.search(r"https?://", page.text), page.text
    script = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
    assert "SwaggerUIBundle" in script.text


def test_the_root_says_where_to_go(client):
    answer = client.get("/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["links"]["docs"] == "/api/docs"
    assert "Bearer" in body["message"]
    for url in body["links"].values():
        assert client.get(url).status_code == 200, url
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/api/docs"' in page.text
    # ... and how to build the web UI, which is not built here.
    assert "make serve" in body["webUi"] and "make serve" in page.text
