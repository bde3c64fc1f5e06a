"""Running job runs: the library the workers and the orchestrator's embedded mode share.

- :mod:`flowforge_runtime.job`: ``execute_job`` (one attempt: events, heartbeats, error
  classification, cancellation, tidying the tables written), the retry delay and the cancel
  flags.
- :mod:`flowforge_runtime.worker`: the body of a Celery job task (attempt counting, the
  event sink through the on-disk outbox, retries).

It imports ``flowforge_shared`` and no service: the ingest and transform workers wrap their
runners with it, and the orchestrator's in-process runtime runs the runners it is handed
with it.
"""
