"""Every router of the catalog service, in the order they are mounted under /api."""

from pathlib import Path

from flowforge_catalog.assets.consumer import install_outputs_consumer
from flowforge_catalog.assets.router import router as assets_router
from flowforge_catalog.audit.consumer import install_audit_consumer
from flowforge_catalog.audit.router import router as audit_router
from flowforge_catalog.connections.router import router as connections_router
from flowforge_catalog.files.router import router as files_router
from flowforge_catalog.jobs.router import router as jobs_router
from flowforge_catalog.runs.requests import install_run_requests
from flowforge_catalog.runs.requests import internal_router as runs_internal_router
from flowforge_catalog.runs.router import router as runs_router
from flowforge_catalog.templates.router import router as templates_router
from flowforge_catalog.tokens import checker
from flowforge_catalog.tokens.router import internal_router as tokens_internal_router
from flowforge_catalog.tokens.router import router as tokens_router
from flowforge_catalog.validation.router import router as validation_router
from flowforge_catalog.workflows.router import router as workflows_router
from flowforge_catalog.workflows.schedule import install_schedule_consumer
from flowforge_shared.db.migrate import Chain
from flowforge_shared.operations import install_operations

# The catalog's own tables, in a migration chain of its own.
MIGRATIONS = Chain("catalog", Path(__file__).parent / "migrations")
ROUTERS = [
    workflows_router,
    jobs_router,
    runs_router,
    tokens_router,
    audit_router,
    assets_router,
    files_router,
    connections_router,
    templates_router,
    validation_router,
]
# Mounted under /api behind the service secret: what the other services ask the catalog.
INTERNAL_ROUTERS = [tokens_internal_router, runs_internal_router]


def install_secrets(app):
    """The SecretBox that encrypts connection passwords (FLOWFORGE_SECRET_KEY or a key file)."""
    from flowforge_shared.secrets import SecretBox

    settings = app.state.settings
    app.state.secret_box = SecretBox.from_setting(
        settings.secret_key, settings.data_dir, allow_key_file=settings.is_local
    )


def sync_templates(app):
    """Upgrade built-in templates whose shipped version is newer (migrations seed them)."""
    from sqlalchemy import inspect

    from flowforge_catalog.templates.builtin import sync

    engine = app.state.database.engine
    if inspect(engine).has_table("workflow_templates"):
        sync(engine)


INSTALL = [
    checker.install,
    install_secrets,
    install_operations,
    sync_templates,
    install_outputs_consumer,
    install_audit_consumer,
    install_run_requests,
    install_schedule_consumer,
]
