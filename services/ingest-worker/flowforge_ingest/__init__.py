"""Ingest worker: reads CSV files and databases into bronze tables (run-engine issue)."""
