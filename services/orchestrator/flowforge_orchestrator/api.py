"""Every router of the orchestrator service, mounted under /api."""

from pathlib import Path

from flowforge_orchestrator.audit.service import install_audit
from flowforge_orchestrator.dispatch import install_runtime
from flowforge_orchestrator.runs.router import router as runs_router
from flowforge_orchestrator.tables.router import install_table_writers
from flowforge_orchestrator.tables.router import router as tables_router
from flowforge_orchestrator.triggers.lifecycle import install_workflow_deletions
from flowforge_orchestrator.triggers.router import next_runs_router
from flowforge_orchestrator.triggers.router import router as triggers_router
from flowforge_orchestrator.triggers.scheduler import install_scheduler
from flowforge_orchestrator.triggers.webhooks import hooks_router
from flowforge_orchestrator.watermarks.router import router as watermarks_router
from flowforge_shared.db.migrate import Chain

# The orchestrator's own tables, in a migration chain of its own.
MIGRATIONS = Chain("orchestrator", Path(__file__).parent / "migrations")
ROUTERS = [runs_router, watermarks_router, triggers_router, next_runs_router]
INTERNAL_ROUTERS = [tables_router]
# Mounted under /api without an API token: each authenticates its own way (a webhook by its
# signature).
PUBLIC_ROUTERS = [hooks_router]


def install_secrets(app) -> None:
    """The SecretBox that encrypts webhook secrets: the catalog's where this process serves
    it (installed first), else one from the same setting."""
    from flowforge_shared.secrets import SecretBox

    if getattr(app.state, "secret_box", None) is None:
        settings = app.state.settings
        app.state.secret_box = SecretBox.from_setting(
            settings.secret_key, settings.data_dir, allow_key_file=settings.is_local
        )


INSTALL = [
    install_secrets,
    install_audit,
    install_runtime,
    install_table_writers,
    install_scheduler,
    install_workflow_deletions,
]
