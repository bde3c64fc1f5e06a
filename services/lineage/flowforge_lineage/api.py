"""Every router of the lineage service, mounted under /api, and its install hooks."""

from pathlib import Path

from flowforge_lineage.columns.router import router as columns_router
from flowforge_lineage.graph.consumer import install_event_consumer
from flowforge_lineage.graph.router import router as graph_router
from flowforge_lineage.openlineage.outbound import install_outbound
from flowforge_lineage.openlineage.router import install_body_limit
from flowforge_lineage.openlineage.router import router as openlineage_router
from flowforge_shared.db.migrate import Chain

# The lineage service's own tables, in a migration chain of its own.
MIGRATIONS = Chain("lineage", Path(__file__).parent / "migrations")
ROUTERS = [graph_router, columns_router, openlineage_router]
INTERNAL_ROUTERS: list = []
# The forwarder first: the event consumer hands it what it applies.
INSTALL = [install_outbound, install_event_consumer, install_body_limit]
