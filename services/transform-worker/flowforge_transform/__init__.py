"""Transform worker: builds silver and gold tables from bronze (run-engine issue)."""
