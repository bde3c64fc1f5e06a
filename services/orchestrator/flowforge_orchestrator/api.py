"""Every router of the orchestrator service, mounted under /api."""

from flowforge_orchestrator.dispatch import install_runtime
from flowforge_orchestrator.runs.router import router as runs_router

ROUTERS = [runs_router]
INSTALL = [install_runtime]
