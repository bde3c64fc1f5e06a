"""docs/api.md describes every route the API serves (issue 12: templates, database and
watermark routes were missing), and names no route that does not exist."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from flowforge.app import create_app
from tests.conftest import make_settings

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0]).rstrip("/")


def test_every_route_is_in_api_md_and_every_documented_route_exists():
    app = create_app(make_settings(Path(tempfile.mkdtemp())))
    served = {
        (method.upper(), shape(path))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in operations
    }
    app.state.database.dispose()
    text = API_DOC.read_text()
    documented_paths = {shape(path) for path in re.findall(r"/api(?:/(?:[\w.-]+|\{\w*\}))+", text)}
    documented_paths -= {shape("/api/docs"), shape("/api/openapi.json")}
    missing = sorted(f"{method} {path}" for method, path in served if path not in documented_paths)
    assert not missing, f"routes docs/api.md does not describe: {missing}"
    unknown = sorted(
        path
        for path in documented_paths
        if path not in {p for _, p in served} and not path.startswith("/api/docs/")
    )
    assert not unknown, f"docs/api.md names routes that do not exist: {unknown}"
    # Each route's method is named in its table row or sentence.
    for method, path in served:
        pattern = re.escape(path).replace(r"\{\}", r"\{[^}]*\}")
        lines = [line for line in text.splitlines() if re.search(pattern + r"[`?]", line)]
        assert any(method in line for line in lines), (method, path)
