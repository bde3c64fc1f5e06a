"""Catalog service: workflows, jobs, API tokens and the audit log (and later connections,
templates and the data catalog)."""
