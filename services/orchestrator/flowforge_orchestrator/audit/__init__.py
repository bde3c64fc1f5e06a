"""The orchestrator's audit entries: kept in its own outbox, sent to the catalog's audit log."""
