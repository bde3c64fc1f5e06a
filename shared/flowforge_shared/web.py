"""The skeleton every service's FastAPI app is built on: database, migrations on start in
embedded mode, ``/healthz`` and ``/readyz``, authentication over the whole ``/api`` tree (a
user's token, or the service secret on internal routes), the API docs (Swagger UI served from the installed package, no CDN), a
landing answer at ``/``, and the mapping of FlowForge errors to HTTP answers."""

from __future__ import annotations

import email.message
import html
import importlib.resources
import logging
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry import _logs, metrics, trace
from opentelemetry.trace import ProxyTracerProvider, SpanKind
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError

from flowforge_shared.auth.dependencies import authenticate
from flowforge_shared.auth.introspection import RemoteTokenChecker, require_service
from flowforge_shared.bus import Bus
from flowforge_shared.db.engine import Database
from flowforge_shared.db.migrate import Chain, upgrade
from flowforge_shared.errors import (
    ApiError,
    ConfigurationError,
    ServiceUnavailable,
    Unprocessable,
    dotted,
)
from flowforge_shared.outages import unavailable_message, unavailable_reason
from flowforge_shared.settings import Settings, UnsafeSettings
from flowforge_shared.storable import problems
from flowforge_shared.telemetry import continued, setup_tracing, tracer

log = logging.getLogger("flowforge.web")
OPENAPI_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"
# Swagger UI's files, from the fastapi-offline package (it ships Swagger UI 5, which reads the
# OpenAPI 3.1 documents FastAPI writes): /api/docs works on a network without the internet.
DOCS_ASSETS_URL = "/api/docs/assets"
API_POOL = 20
"""Database connections the API keeps (on a server, as many more for a while)."""
INTERNAL_ERROR = "internal error: FlowForge failed unexpectedly; the server log has the details"


def create_service_app(
    *,
    title: str,
    settings: Settings,
    api_routers: Sequence[APIRouter],
    database: Database | None = None,
    install: Sequence[Callable[[FastAPI], Callable[[], None] | None]] = (),
    internal_routers: Sequence[APIRouter] = (),
    public_routers: Sequence[APIRouter] = (),
    migrations: Sequence[Chain] = (),
) -> FastAPI:
    """One FastAPI app serving the given ``/api`` routers (one service, or all of them).

    ``install`` hooks add what a service needs on ``app.state`` (the orchestrator's task
    runtime); a hook may return a function to call at shutdown, and may append to
    ``app.state.starters`` what to start when the app starts serving (its lifespan).

    Tokens are checked by ``app.state.token_checker``: the catalog's install hook puts its
    own there; without it (a service running without the catalog) the catalog is asked over
    HTTP (FLOWFORGE_CATALOG_URL). ``internal_routers`` are mounted under ``/api`` too, behind
    the service secret instead of a user's token; ``public_routers`` under ``/api`` with no
    token at all (each route authenticates the request itself, e.g. a webhook's signature).

    ``migrations`` are the chains of the services served here: their database is the
    process's (:func:`database_url_of`), migrated on start when the settings say so.

    Outside the local environment, unsafe settings are refused first
    (:class:`~flowforge_shared.settings.UnsafeSettings`)."""
    settings.refuse_unsafe()
    setup_tracing(settings)
    # A pool of 20 for AnyIO's 40 threads running sync routes (SQLAlchemy's 5 (+10) kept
    # most threads queued for a connection). A request holds its connection until its answer
    # is validated, which needs a thread again: when every thread waited for a connection
    # and every connection was held by a request waiting for a thread, both waited until
    # the pool's timeout (503s after 30-60 s). On SQLite the pool has no limit, so that
    # cannot happen; on a server it is 20 (+20), and a request first takes one of 20
    # request slots on the event loop (flowforge_shared.deps.get_session), so no request
    # thread waits for the pool; see bench/README.md, bench_api.
    database = database or Database(database_url_of(settings, migrations), pool_size=API_POOL)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if "://" not in settings.landing_root:  # users drop files here before the first run
        Path(settings.landing_root).mkdir(parents=True, exist_ok=True)
    if settings.should_auto_migrate:
        upgrade(database.url, migrations)
    closers: list[Callable[[], None]] = []
    starters: list[Callable[[], None]] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        for start in starters:  # background work (the reaper) runs only in a serving app
            start()
        yield
        for close in reversed(closers):
            close()

    app = FastAPI(
        title=title,
        version="0.1.0",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # served below, from local files instead of a CDN
        redoc_url=None,
        lifespan=lifespan,
        telemetry=_native_telemetry(),
    )
    app.state.settings = settings
    app.state.database = database
    app.state.starters = starters
    app.state.closers = closers  # close_unserved: an app built but never served
    app.state.bus = Bus(settings)
    for hook in install:
        close = hook(app)
        if close:
            closers.append(close)
    if getattr(app.state, "token_checker", None) is None:
        if not settings.is_local and not (settings.catalog_url and settings.service_secret):
            for close in reversed(closers):
                close()
            database.dispose()
            raise UnsafeSettings(
                f"refusing to start with FLOWFORGE_ENVIRONMENT={settings.environment}: this "
                "process does not serve the catalog, so it checks tokens with it: set "
                "FLOWFORGE_CATALOG_URL and FLOWFORGE_SERVICE_SECRET"
            )
        remote = RemoteTokenChecker(settings)
        app.state.token_checker = remote
        closers.append(remote.close)

    api = APIRouter(
        prefix="/api", dependencies=[Depends(authenticate), Depends(refuse_unstorable_values)]
    )
    for router in api_routers:
        api.include_router(router)
    app.include_router(api)
    internal = APIRouter(
        prefix="/api", dependencies=[Depends(require_service), Depends(refuse_unstorable_values)]
    )
    for router in internal_routers:
        internal.include_router(router)
    app.include_router(internal)
    public = APIRouter(prefix="/api")  # each authenticates its own way (a webhook's signature)
    for router in public_routers:
        public.include_router(router)
    app.include_router(public)
    app.include_router(_health_router())
    _install_docs(app, title)
    _install_error_handlers(app)
    _install_tracing(app)
    return app


def close_unserved(app: FastAPI) -> None:
    """Release what building ``app`` took (its hooks' shutdowns, its database pool) when it
    is never served: nothing of it was started (its lifespan never ran)."""
    for close in reversed(app.state.closers):
        close()
    app.state.database.dispose()


def database_url_of(settings: Settings, migrations: Sequence[Chain]) -> str:
    """The one database of the services this process serves. Services served together
    share it: each may have a database of its own only when it runs apart."""
    urls = {settings.database_url_for(chain.service) for chain in migrations}
    if len(urls) > 1:
        names = ", ".join(chain.service for chain in migrations)
        raise ConfigurationError(
            f"this process serves {names} together, which share one database, but their "
            "FLOWFORGE_<SERVICE>_DATABASE_URL settings differ: run each service apart "
            "(flowforge service NAME) to give it a database of its own"
        )
    return urls.pop() if urls else settings.resolved_database_url


async def refuse_unstorable_values(request: Request) -> None:
    """422 for any path, query or JSON body value no database can store (a NUL, a lone
    surrogate, an integer beyond 64 bits, an infinite number), naming where it is.

    Done here once, for every route, rather than in each schema: such values used to pass
    validation and fail in the database or the driver as a 500."""
    found = [
        (("path", name), message)
        for name, value in request.path_params.items()
        for _, message in problems(value)
    ]
    for name, value in request.query_params.multi_items():
        found.extend((("query", name), message) for _, message in problems([name, value]))
    body = await _json_body(request)
    if body is not None:
        found.extend((("body", *path), message) for path, message in problems(body))
    if found:
        raise RequestValidationError(
            [{"loc": loc, "msg": message, "type": "value_error"} for loc, message in found]
        )


async def _json_body(request: Request) -> object | None:
    """The request's JSON body as FastAPI parsed it (Starlette caches it), else None."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return None
    header = email.message.Message()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    if header.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        return None
    try:
        return await request.json() if await request.body() else None
    except (ValueError, RecursionError):  # not JSON (or nested beyond the parser): the
        return None  # route's own body validation answers that, not a 500 here


def _native_telemetry() -> dict:
    """FastAPI's own request telemetry. Its spans are off: FlowForge makes one server span
    per API request (:func:`_install_tracing`), and FastAPI's, with its dependency, endpoint
    and serialisation spans, would double it. Its request metrics and exception logs are on
    only when this process has a meter (logger) provider when the app is built: an agent's
    (``opentelemetry-instrument``) or the host application's; FlowForge sets up neither.
    Left on without one, FastAPI asked on every request whether one had appeared since (an
    ``os.environ`` look-up each; bench/README.md, bench_api)."""
    return {
        "tracing": False,
        "metrics": _configured(metrics.get_meter_provider()),
        "logs": _configured(_logs.get_logger_provider()),
    }


def _configured(provider: object) -> bool:
    """False for OpenTelemetry's placeholder provider (the API's proxy, before any SDK
    provider is set); OpenTelemetry has no public question for it."""
    return type(provider).__name__ not in {"_ProxyMeterProvider", "ProxyLoggerProvider"}


def _install_tracing(app: FastAPI) -> None:
    """A server span per API request: the root of a run's trace in FlowForge, the child of
    the caller's span when the request carries a W3C ``traceparent`` (a gateway's, a
    browser's).

    A plain ASGI middleware, not ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware
    runs the app in a task of its own and streams the answer through a memory channel, a
    cost every request paid (measured in bench/bench_api.py)."""
    app.add_middleware(_TraceRequests)


class _TraceRequests:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        # every header, as before: the configured propagators pick theirs (W3C, B3...)
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        if isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
            # No tracer provider (no exporter configured, none installed since): a span
            # would be OpenTelemetry's no-op one, which only keeps the caller's context
            # current. Keep that (a run still records the caller's trace id and hands its
            # context on) without the span's own machinery, a measurable share of a small
            # request (bench/README.md, bench_api). A provider installed later is used
            # from the next request on.
            with continued(headers):
                await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        with (
            continued(headers),
            tracer.start_as_current_span(
                f"{method} {path}",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": method, "url.path": path},
            ) as span,
        ):

            async def traced_send(message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            await self.app(scope, receive, traced_send)


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    def healthz() -> dict:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        """The database answers."""
        try:
            request.app.state.database.ping()
        except SQLAlchemyError as error:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "detail": f"database unreachable: {type(error).__name__}",
                },
                status_code=503,
            )
        return JSONResponse({"status": "ok"})

    return router


# The web UI's routes (services/web/src/routes.tsx): each answers the bundle's index.html,
# and the browser's router shows the page. Anything else that is not /api stays a 404.
WEB_UI_ROUTES = (
    "login",
    "templates",
    "workflows",
    "executions",
    "catalog",
    "connections",
    "audit",
)
# services/web/dist of this checkout: shared/flowforge_shared/web.py -> the repository root.
DEFAULT_WEB_DIST = Path(__file__).resolve().parents[2] / "services" / "web" / "dist"
BUILD_HINT = (
    "the web UI is not built: run `make serve` (or `make web`: npm ci and vite build in "
    "services/web, Node 20 and npm needed), or set FLOWFORGE_WEB_DIST to a built bundle"
)


def web_bundle(settings: Settings) -> Path | None:
    """The web UI's built bundle directory, or None when it was not built."""
    dist = settings.web_dist or DEFAULT_WEB_DIST
    return dist if (dist / "index.html").is_file() else None


def _install_web_ui(app: FastAPI, bundle: Path) -> None:
    """The web UI at ``/``: its hashed assets under ``/assets``, and index.html for ``/``
    and every UI route (``/workflows/123?tab=lineage``), so links and reloads work."""
    index = bundle / "index.html"
    if (bundle / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=str(bundle / "assets")), name="web-assets")

    def page() -> FileResponse:
        # index.html names the hashed assets of this build: never cached, so a new build shows.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    for route in WEB_UI_ROUTES:
        app.add_api_route(f"/{route}", page, include_in_schema=False, methods=["GET"])
        app.add_api_route(f"/{route}/{{rest:path}}", page, include_in_schema=False, methods=["GET"])
    app.state.web_ui = index


def _install_docs(app: FastAPI, title: str) -> None:
    """``/api/docs``: Swagger UI from files in the installed package; ``/``: the web UI when
    it is built, else where to go (and how to build the UI)."""
    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")
    bundle = web_bundle(app.state.settings)
    app.state.web_ui = None
    if bundle is not None:
        _install_web_ui(app, bundle)

    @app.get(DOCS_URL, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{title}: API",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            # No online validator badge: the page asks nothing of any other host.
            swagger_ui_parameters={**swagger_ui_default_parameters, "validatorUrl": None},
        )

    @app.get("/", tags=["health"], summary="Where to go: the API docs and health checks")
    def landing(request: Request):
        """The web UI for a browser when it is built; else what this server is and where to
        go, and how to build the web UI."""
        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html and app.state.web_ui is not None:
            return FileResponse(app.state.web_ui, headers={"Cache-Control": "no-cache"})
        links = {
            "docs": DOCS_URL,
            "openapi": OPENAPI_URL,
            "health": "/healthz",
            "ready": "/readyz",
        }
        body = {
            "name": title,
            "version": app.version,
            "message": "FlowForge's API. The API is described at "
            f"{DOCS_URL}, and every /api route needs 'Authorization: Bearer <token>'.",
            "links": links,
        }
        if app.state.web_ui is None:
            body["webUi"] = BUILD_HINT
        else:
            links["ui"] = "/workflows"
        if not wants_html:
            return JSONResponse(body)
        items = "".join(
            f'<li><a href="{html.escape(url)}">{html.escape(name)}</a></li>'
            for name, url in links.items()
        )
        return HTMLResponse(
            f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(body['message'])}</p>"
            f"<p>{html.escape(body.get('webUi', ''))}</p><ul>{items}</ul></body></html>"
        )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Unprocessable)
    async def unprocessable(_request: Request, error: Unprocessable) -> JSONResponse:
        return JSONResponse({"detail": error.detail()}, status_code=422)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError) -> JSONResponse:
        headers = {}
        if isinstance(error, ServiceUnavailable):
            headers["Retry-After"] = str(error.retry_after)
        return JSONResponse(
            {"detail": error.message}, status_code=error.status_code, headers=headers
        )

    async def storage_error(request: Request, error: Exception) -> JSONResponse:
        """A database or disk error that escaped a route: 503 when it is an outage of our
        own storage (full disk, database down), else a 500 in the one error shape."""
        reason = unavailable_reason(error)
        if reason is None:
            log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=error)
            return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)
        # The driver's own words for the operator; not SQLAlchemy's text, which adds the
        # statement and its parameters.
        cause = getattr(error, "orig", None) or error
        log.warning(
            "%s %s: 503, %s (%s: %s)",
            request.method,
            request.url.path,
            reason,
            type(cause).__name__,
            cause,
        )
        return await api_error(request, ServiceUnavailable(unavailable_message(reason)))

    # Handled here, not by Starlette's last-resort handler, so the answer is JSON and the
    # error is not re-raised into the server (it is logged above instead).
    for kind in (SQLAlchemyError, OSError, sqlite3.Error, psycopg.Error):
        app.add_exception_handler(kind, storage_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        """Anything else: the same JSON shape as every error (Starlette still logs it)."""
        reason = unavailable_reason(error)
        if reason is not None:
            return await api_error(request, ServiceUnavailable(unavailable_message(reason)))
        return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)

    @app.exception_handler(StaleDataError)
    async def stale(_request: Request, _error: StaleDataError) -> JSONResponse:
        return JSONResponse(
            {"detail": "this resource was changed by someone else; reload it and try again"},
            status_code=409,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        detail = []
        for item in error.errors():
            loc = list(item.get("loc", ()))
            field_path = loc[1:] if loc and loc[0] in {"body", "query", "path", "header"} else loc
            detail.append(
                {
                    "loc": loc,
                    "field": dotted(field_path),
                    "msg": item.get("msg", "invalid"),
                    "type": item.get("type", "value_error"),
                }
            )
        return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)
