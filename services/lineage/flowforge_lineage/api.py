"""Every router of the lineage service, mounted under /api, and its install hooks."""

from flowforge_lineage.graph.consumer import install_event_consumer

ROUTERS: list = []
INTERNAL_ROUTERS: list = []
INSTALL = [install_event_consumer]
