"""What the embedded mode (no broker) runs of the transform worker inside the API process.

The composition root (``flowforge/app.py``) hands the job runner to the orchestrator's
in-process runtime. No service imports this worker; with a broker, the same function runs
in ``flowforge worker transform`` behind the Celery task of :mod:`.tasks`.
"""

from flowforge_shared.contracts.tasks import TRANSFORM_QUEUE


def run_transform_job(*args, **kwargs):
    """:func:`flowforge_transform.runner.run_transform_job`, imported at the first job: the
    API process does not load DuckDB, polars and delta-rs until it runs one."""
    from flowforge_transform.runner import run_transform_job as run

    return run(*args, **kwargs)


JOB_RUNNERS = {TRANSFORM_QUEUE: run_transform_job}
