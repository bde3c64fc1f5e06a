"""What the embedded mode (no broker) runs of the ingest worker inside the API process.

The composition root (``flowforge/app.py``) hands these to the services that need them: the
job runner to the orchestrator's in-process runtime, the database operations to the
catalog's in-process operations. No service imports this worker; with a broker, the same
functions run in ``flowforge worker ingest`` behind the Celery tasks of :mod:`.tasks`.
"""

from flowforge_ingest.operations import perform
from flowforge_ingest.runner import run_ingest_job
from flowforge_shared.contracts.tasks import INGEST_QUEUE

JOB_RUNNERS = {INGEST_QUEUE: run_ingest_job}
DATABASE_OPERATIONS = perform
