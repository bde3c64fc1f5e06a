"""Lineage service: the source -> bronze -> silver -> gold graph built from run events."""
