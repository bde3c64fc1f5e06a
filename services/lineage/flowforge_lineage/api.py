"""Every router of the lineage service, mounted under /api, and its install hooks."""

from flowforge_lineage.columns.router import router as columns_router
from flowforge_lineage.graph.consumer import install_event_consumer
from flowforge_lineage.graph.router import router as graph_router

ROUTERS = [graph_router, columns_router]
INTERNAL_ROUTERS: list = []
INSTALL = [install_event_consumer]
