"""What the embedded mode (no broker) runs of the transform worker inside the API process.

The composition root (``flowforge/app.py``) hands the job runner to the orchestrator's
in-process runtime. No service imports this worker; with a broker, the same function runs
in ``flowforge worker transform`` behind the Celery task of :mod:`.tasks`.
"""

from flowforge_shared.contracts.tasks import TRANSFORM_QUEUE
from flowforge_transform.runner import run_transform_job

JOB_RUNNERS = {TRANSFORM_QUEUE: run_transform_job}
