"""The ``flowforge`` command."""

from __future__ import annotations

import os

import typer
import uvicorn

from flowforge_shared.settings import Settings, UnsafeSettings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="FlowForge data pipelines")
db_app = typer.Typer(no_args_is_help=True, help="The catalog database")
app.add_typer(db_app, name="db")
secrets_app = typer.Typer(no_args_is_help=True, help="Encrypted connection secrets")
app.add_typer(secrets_app, name="secrets")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="API processes on the one port (uvicorn workers); more than 1 needs "
        "FLOWFORGE_BROKER_URL and PostgreSQL",
    ),
) -> None:
    """Run every service's API in one process (the embedded default), or in several."""
    from flowforge import KEEP_ALIVE_SECONDS

    settings = Settings()
    if workers == 1:
        from flowforge.app import create_app

        try:
            application = create_app(settings)
        except UnsafeSettings as error:
            _fail(str(error))
        uvicorn.run(
            application,
            host=host,
            port=port,
            log_level="info",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        return
    from flowforge.replicas import prepare_apart, replicas_refused, serve_replicas

    refused = replicas_refused(settings) or prepare_apart()
    if refused:
        _fail(refused)
    # Each worker process builds its own app (uvicorn starts them afresh, not forked) and
    # finds the start-up done by prepare_apart; none of them migrates again.
    os.environ["FLOWFORGE_AUTO_MIGRATE"] = "false"
    serve_replicas(
        uvicorn.Config(
            "flowforge.app:create_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="info",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )


@app.command()
def service(
    name: str = typer.Argument(..., help="catalog, orchestrator or lineage"),
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
) -> None:
    """Run one service's API alone."""
    from flowforge import KEEP_ALIVE_SECONDS
    from flowforge.app import SERVICES, create_single_service_app
    from flowforge_shared.errors import ConfigurationError

    if name not in SERVICES:
        _fail(f"unknown service {name!r}; choose one of {', '.join(SERVICES)}")
    try:
        service_app = create_single_service_app(name, Settings())
    except (UnsafeSettings, ConfigurationError) as error:
        _fail(str(error))
    uvicorn.run(service_app, host=host, port=port, timeout_keep_alive=KEEP_ALIVE_SECONDS)


@app.command()
def worker(
    queue: str = typer.Argument(
        ...,
        help="ingest, transform, events (the orchestrator's), catalog (its assets) or lineage",
    ),
    concurrency: int = typer.Option(None, "--concurrency", "-c", help="Worker processes"),
    loglevel: str = typer.Option("INFO", help="Celery log level"),
) -> None:
    """Run a Celery worker on one queue (needs FLOWFORGE_BROKER_URL)."""
    from flowforge_shared.celery_app import configure
    from flowforge_shared.telemetry import setup_tracing

    modules = {
        "ingest": "flowforge_ingest.tasks",
        "transform": "flowforge_transform.tasks",
        "events": "flowforge_orchestrator.tasks",
        "catalog": "flowforge_catalog.tasks",
        "lineage": "flowforge_lineage.tasks",
    }
    if queue not in modules:
        _fail(f"unknown queue {queue!r}; choose one of {', '.join(modules)}")
    settings = Settings()
    try:
        settings.refuse_unsafe()
    except UnsafeSettings as error:
        _fail(str(error))
    if not settings.broker_url:
        _fail("set FLOWFORGE_BROKER_URL (e.g. redis://127.0.0.1:6379/0) to run workers")
    import importlib

    celery = configure(settings, queue=queue)
    setup_tracing(settings, service_name=f"flowforge-{queue}-worker")
    importlib.import_module(modules[queue])
    # The events, catalog and lineage queues are consumed by one process unless asked otherwise.
    processes = concurrency or (1 if queue in ("events", "catalog", "lineage") else 2)
    celery.worker_main(
        [
            "worker",
            "--queues",
            queue,
            "--concurrency",
            str(processes),
            "--pool",
            "prefork",
            "--loglevel",
            loglevel,
            "--hostname",
            f"{queue}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@app.command()
def scheduler(
    loglevel: str = typer.Option("INFO", help="Log level"),
) -> None:
    """Run the trigger scheduler: due cron triggers become runs (needs FLOWFORGE_BROKER_URL;
    `flowforge serve` runs one in its own process). Any number may run on one PostgreSQL."""
    import logging

    from flowforge_orchestrator.audit.service import AuditSweep
    from flowforge_orchestrator.audit.service import install as send_audit_at_commit
    from flowforge_orchestrator.triggers.scheduler import Scheduler
    from flowforge_shared.bus import Bus
    from flowforge_shared.db.engine import Database
    from flowforge_shared.telemetry import setup_tracing

    settings = Settings()
    try:
        settings.refuse_unsafe()
    except UnsafeSettings as error:
        _fail(str(error))
    if settings.embedded_tasks:
        _fail(
            "set FLOWFORGE_BROKER_URL (the scheduler asks the catalog's worker for runs), or "
            "use `flowforge serve`, which runs a scheduler in its own process"
        )
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(name)s %(message)s")
    setup_tracing(settings, service_name="flowforge-scheduler")
    logging.getLogger("flowforge.scheduler").info(
        "scheduler started (a pass every %g s)", settings.scheduler_interval
    )
    database, bus = Database(settings.database_url_for("orchestrator")), Bus(settings)
    AuditSweep(send_audit_at_commit(database, bus)).start()
    Scheduler(database, bus, settings).run_forever()


@app.command()
def run(
    workflow: str = typer.Argument(..., help="Workflow id or name"),
    wait: bool = typer.Option(False, "--wait", help="Follow progress until the run ends"),
    job: list[str] = typer.Option(None, "--job", help="Run only this job id (repeatable)"),
    force: bool = typer.Option(False, "--force", help="Run a paused workflow anyway (audited)"),
    url: str = typer.Option("http://127.0.0.1:8000", envvar="FLOWFORGE_URL", help="API address"),
    token: str = typer.Option(None, envvar="FLOWFORGE_TOKEN", help="API token"),
) -> None:
    """Start a workflow run; with --wait show live progress and exit non-zero if it fails."""
    import httpx
    from rich.console import Console

    from flowforge.run_client import RunFailed, follow, resolve_workflow, start_run

    token = token or _token_from_data_dir()
    if not token:
        _fail("no token: pass --token, set FLOWFORGE_TOKEN, or run where the data dir holds one")
    console = Console()
    try:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            found = resolve_workflow(client, workflow)
            execution_id = start_run(client, found["id"], job, force=force)
            console.print(f"started execution {execution_id} of workflow {found['name']!r}")
            if not wait:
                return
            summary = follow(client, execution_id, console)
    except RunFailed as error:
        _fail(str(error))
    except httpx.HTTPError as error:
        _fail(f"cannot reach FlowForge at {url}: {error}")
    if summary["status"] != "succeeded":
        _fail(f"execution {execution_id} {summary['status']}: {summary.get('error') or ''}".strip())


def _token_from_data_dir() -> str | None:
    path = Settings().data_dir / "admin-token"
    return path.read_text().strip() if path.exists() else None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply each service's migrations to its database (the embedded SQLite database
    migrates on start)."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from flowforge.app import SERVICES, migrate
    from flowforge_catalog.templates.builtin import sync

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        url = settings.database_url_for(service)
        try:
            migrate(settings, [service])
            if service == "catalog":
                engine = create_engine(url)
                sync(engine)
                engine.dispose()
        except SQLAlchemyError as error:
            _fail(f"could not migrate the {service}'s {_safe_url(url)}: {error.__class__.__name__}")
        typer.echo(f"the {service}'s database at {_safe_url(url)} is up to date")


@app.command()
def demo(
    serve: bool = typer.Option(False, "--serve", help="Leave the API running afterwards"),
    stack: bool = typer.Option(
        False, "--stack", help="Use the configured PostgreSQL, Redis and S3 instead of embedded"
    ),
    port: int = typer.Option(None, help="Port of the API (default: a free one)"),
) -> None:
    """The BFSI Customer 360 pipeline end to end, checked at every step."""
    from flowforge.demo import DemoFailed, run_demo

    try:
        run_demo(stack=stack, serve=serve, port=port)
    except DemoFailed as error:
        _fail(f"demo failed: {error}")


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret (connection passwords, webhook secrets) with the first
    key of FLOWFORGE_SECRET_KEY."""
    import flowforge_catalog.api  # noqa: F401 - registers every model the ORM needs
    import flowforge_orchestrator.api  # noqa: F401
    from flowforge_catalog.connections.service import rotate_secrets
    from flowforge_orchestrator.triggers.service import reencrypt_secrets
    from flowforge_shared.db.engine import Database
    from flowforge_shared.secrets import SecretBox, SecretKeyError

    settings = Settings()
    try:
        box = SecretBox.from_setting(
            settings.secret_key, settings.data_dir, allow_key_file=settings.is_local
        )
        count = 0
        for service, rotate in (("catalog", rotate_secrets), ("orchestrator", reencrypt_secrets)):
            database = Database(settings.database_url_for(service))
            try:
                with database.session() as session:
                    count += rotate(session, box=box)
            finally:
                database.dispose()
    except SecretKeyError as error:
        _fail(str(error))
    typer.echo(f"re-encrypted {count} secret(s) with the first key")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    app()
