"""The deployment files: docker-compose.yml parses, and the gateway routes what the apps serve."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from flowforge.app import SERVICES, create_app, create_single_service_app
from flowforge_shared.web import WEB_UI_ROUTES
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = ROOT / "deploy" / "gateway.conf"
INTERNAL = "/api/internal/"
# What an operator must set before `docker compose up` (values here only for parsing).
COMPOSE_SECRETS = {
    "FLOWFORGE_SECRET_KEY": "a-key-for-parsing-only",
    "FLOWFORGE_ADMIN_TOKEN": "a-token-for-parsing-only",
    "FLOWFORGE_SERVICE_SECRET": "a-secret-for-parsing-only",
}


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_file_is_valid():
    command = compose_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail(
                "neither 'docker compose' nor 'docker-compose' is installed (.ci/run installs it)"
            )
        pytest.skip("no docker compose here")
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **COMPOSE_SECRETS},
    )
    assert result.returncode == 0, result.stderr


def gateway_locations() -> list[tuple[str, str, str]]:
    """(modifier, pattern, upstream) for each proxied location."""
    text = GATEWAY.read_text()
    found = []
    for modifier, pattern, body in re.findall(r"location\s+(=|~|\^~)?\s*(\S+)\s*\{([^}]*)\}", text):
        upstream = re.search(r"proxy_pass\s+http://(\w+);", body)
        if upstream:
            found.append((modifier, pattern, upstream.group(1)))
    return found


def route(path: str, locations) -> str | None:
    """The upstream nginx would pick: exact, then regex in order, then the longest prefix."""
    for modifier, pattern, upstream in locations:
        if modifier == "=" and path == pattern:
            return upstream
    for modifier, pattern, upstream in locations:
        if modifier == "~" and re.search(pattern, path):
            return upstream
    prefixes = [(p, u) for m, p, u in locations if m in ("", "^~") and path.startswith(p)]
    return max(prefixes, key=lambda item: len(item[0]))[1] if prefixes else None


def sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "abc123", path)


@pytest.fixture(scope="module")
def service_paths() -> dict[str, set[str]]:
    paths = {}
    for name in SERVICES:
        # Served alone, a service reaches the workers through the broker (none is used here).
        settings = make_settings(Path(tempfile.mkdtemp()), broker_url="redis://127.0.0.1:6379/15")
        app = create_single_service_app(name, settings)
        paths[name] = {p for p in app.openapi()["paths"] if p.startswith("/api/")}
        app.state.database.dispose()
    return paths


def test_every_gateway_location_exists_in_the_embedded_app():
    app = create_app(make_settings(Path(tempfile.mkdtemp())))
    paths = [sample(p) for p in app.openapi()["paths"]] + ["/api/openapi.json", "/api/docs"]
    # The web UI's pages and assets (served when its bundle is built: tests/test_web_ui.py).
    paths += [f"/{route}" for route in WEB_UI_ROUTES] + ["/workflows/abc123", "/assets/x.js"]
    locations = gateway_locations()
    assert locations, "no proxied locations found in deploy/gateway.conf"
    for modifier, pattern, upstream in locations:
        assert upstream in SERVICES, f"{pattern} goes to unknown upstream {upstream}"
        if modifier == "~":
            matched = [p for p in paths if re.search(pattern, p)]
        elif modifier == "=":
            matched = [p for p in paths if p == pattern]
        else:
            matched = [p for p in paths if p.startswith(pattern)]
        assert matched, f"gateway location {pattern} matches no route of the embedded app"


def test_every_api_path_is_routed_to_the_service_that_serves_it(service_paths):
    locations = gateway_locations()
    for service, paths in service_paths.items():
        for path in paths:
            if path.startswith(INTERNAL):
                continue
            assert route(sample(path), locations) == service, (path, service)


def test_the_gateway_does_not_expose_internal_routes(service_paths):
    internal = [p for paths in service_paths.values() for p in paths if p.startswith(INTERNAL)]
    assert internal, "no internal route to check"
    assert re.search(r"location\s+/api/internal\s*\{\s*return 404;\s*\}", GATEWAY.read_text())
    for path in internal:
        assert route(sample(path), gateway_locations()) is None, path


@pytest.mark.parametrize("missing", sorted(COMPOSE_SECRETS))
def test_docker_compose_refuses_to_start_without_a_secret(missing):
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose here")
    env = {k: v for k, v in {**os.environ, **COMPOSE_SECRETS}.items() if k != missing}
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode != 0
    assert missing in result.stderr


def test_docker_compose_runs_the_stack_as_production_with_no_placeholder():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "FLOWFORGE_ENVIRONMENT: production" in text
    assert "change-me" not in text
