"""What the embedded mode (no broker) runs of the ingest worker inside the API process.

The composition root (``flowforge/app.py``) hands these to the services that need them: the
job runner to the orchestrator's in-process runtime, the database operations to the
catalog's in-process operations. No service imports this worker; with a broker, the same
functions run in ``flowforge worker ingest`` behind the Celery tasks of :mod:`.tasks`.
"""

from flowforge_shared.contracts.tasks import INGEST_QUEUE


def run_ingest_job(*args, **kwargs):
    """:func:`flowforge_ingest.runner.run_ingest_job`, imported at the first job: the API
    process does not load the readers, drivers and delta-rs until it runs one."""
    from flowforge_ingest.runner import run_ingest_job as run

    return run(*args, **kwargs)


def perform(*args, **kwargs):
    """:func:`flowforge_ingest.operations.perform`, imported at the first operation (it
    loads the database drivers)."""
    from flowforge_ingest.operations import perform as run

    return run(*args, **kwargs)


JOB_RUNNERS = {INGEST_QUEUE: run_ingest_job}
DATABASE_OPERATIONS = perform
