"""Every router of the catalog service, in the order they are mounted under /api."""

from flowforge_catalog.assets.router import router as assets_router
from flowforge_catalog.audit.router import router as audit_router
from flowforge_catalog.files.router import router as files_router
from flowforge_catalog.jobs.router import router as jobs_router
from flowforge_catalog.tokens.router import router as tokens_router
from flowforge_catalog.workflows.router import router as workflows_router

ROUTERS = [workflows_router, jobs_router, tokens_router, audit_router, assets_router, files_router]
INSTALL: list = []
