"""Orchestrator service: runs, triggers, scheduling and dispatch (built by the run-engine issue)."""
