"""Every router of the lineage service, mounted under /api (none yet: a later issue builds them)."""

ROUTERS: list = []
INTERNAL_ROUTERS: list = []
INSTALL: list = []
