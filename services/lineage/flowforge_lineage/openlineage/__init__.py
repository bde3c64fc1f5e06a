"""OpenLineage in (POST /api/v1/lineage) and out (FLOWFORGE_OPENLINEAGE_URL)."""
