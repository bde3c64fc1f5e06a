"""Every router of the orchestrator service, mounted under /api."""

from flowforge_orchestrator.dispatch import install_runtime
from flowforge_orchestrator.runs.router import router as runs_router
from flowforge_orchestrator.watermarks.router import router as watermarks_router

ROUTERS = [runs_router, watermarks_router]
INTERNAL_ROUTERS: list = []
INSTALL = [install_runtime]
