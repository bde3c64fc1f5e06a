"""`flowforge serve --workers N`: whether this deployment may serve the API from several
processes, and the start-up each process would otherwise do, done once. Light on purpose:
uvicorn's supervisor imports this, not the app, so it does not hold the app's ~140 MiB of
modules while the worker processes serve."""

from __future__ import annotations

from flowforge_shared.settings import SERVICES_WITH_DATABASES, Settings, UnsafeSettings


def replicas_refused(settings: Settings) -> str | None:
    """Why this deployment cannot serve the API from several processes (``flowforge serve
    --workers N``), or None when it can. What each process starts, and why N copies of it
    are safe or not, is listed in docs/architecture.md, "Several API processes"."""
    if settings.embedded_tasks:
        return (
            "--workers needs FLOWFORGE_BROKER_URL: without a broker, jobs, the reaper and the "
            "scheduler run inside the server process, once per process (run `flowforge worker "
            "ingest|transform|events|catalog|lineage` and `flowforge scheduler` beside the API)"
        )
    on_sqlite = [
        name
        for name in SERVICES_WITH_DATABASES
        if settings.database_url_for(name).startswith("sqlite")
    ]
    if on_sqlite:
        names = ", ".join(on_sqlite[:-1]) + " and " * (len(on_sqlite) > 1) + on_sqlite[-1]
        return (
            f"--workers needs PostgreSQL: the {names} database"
            f"{'s are' if len(on_sqlite) > 1 else ' is'} SQLite, which has no row locks to keep "
            "processes apart and takes one writer at a time (set FLOWFORGE_DATABASE_URL)"
        )
    return None


def prepare_deployment() -> str | None:
    """Build the app once, unserved, and release it: the migrations (when on), the first
    admin token, the local key file, the built-in templates' upgrade, and every refusal of
    the settings, before any worker process starts (run in a process of its own: see
    :func:`prepare_apart`). Returns the refusal (one line), or None."""
    from flowforge.app import create_app
    from flowforge_shared.web import close_unserved

    try:
        application = create_app(Settings())
    except UnsafeSettings as error:
        return str(error)
    close_unserved(application)
    return None


def prepare_apart() -> str | None:
    """:func:`prepare_deployment` in a fresh process (spawned, as uvicorn's workers are)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(prepare_deployment)
