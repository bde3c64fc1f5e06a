"""Every router of the orchestrator service, mounted under /api (none yet: a later issue builds them)."""

ROUTERS: list = []
