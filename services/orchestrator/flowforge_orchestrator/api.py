"""Every router of the orchestrator service, mounted under /api."""

from flowforge_orchestrator.dispatch import install_runtime
from flowforge_orchestrator.runs.router import router as runs_router
from flowforge_orchestrator.tables.router import install_table_writers
from flowforge_orchestrator.tables.router import router as tables_router
from flowforge_orchestrator.triggers.router import router as triggers_router
from flowforge_orchestrator.triggers.scheduler import install_scheduler
from flowforge_orchestrator.watermarks.router import router as watermarks_router

ROUTERS = [runs_router, watermarks_router, triggers_router]
INTERNAL_ROUTERS = [tables_router]
INSTALL = [install_runtime, install_table_writers, install_scheduler]
