"""The ``flowforge`` command."""

from __future__ import annotations

import typer
import uvicorn

from flowforge_shared.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="FlowForge data pipelines")
db_app = typer.Typer(no_args_is_help=True, help="The catalog database")
app.add_typer(db_app, name="db")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
) -> None:
    """Run every service's API in one process (the embedded default)."""
    from flowforge.app import create_app

    uvicorn.run(create_app(Settings()), host=host, port=port, log_level="info")


@app.command()
def service(
    name: str = typer.Argument(..., help="catalog, orchestrator or lineage"),
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
) -> None:
    """Run one service's API alone."""
    from flowforge.app import SERVICES, create_single_service_app

    if name not in SERVICES:
        _fail(f"unknown service {name!r}; choose one of {', '.join(SERVICES)}")
    uvicorn.run(create_single_service_app(name, Settings()), host=host, port=port)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (the embedded SQLite database migrates on start)."""
    from sqlalchemy.exc import SQLAlchemyError

    from flowforge_shared.db.migrate import upgrade

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(settings.resolved_database_url)
    except SQLAlchemyError as error:
        _fail(
            f"could not migrate {_safe_url(settings.resolved_database_url)}: {error.__class__.__name__}"
        )
    typer.echo(f"database at {_safe_url(settings.resolved_database_url)} is up to date")


@app.command()
def demo() -> None:
    """Run the end-to-end demo on the embedded default and check every step."""
    from flowforge.demo import DemoFailed, run_demo

    try:
        run_demo()
    except DemoFailed as error:
        _fail(f"demo failed: {error}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    app()
