"""Celery task of the ingest worker: a thin wrapper around run_ingest_job."""

from __future__ import annotations

from flowforge_ingest.runner import run_ingest_job
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.tasks import RUN_INGEST_JOB
from flowforge_shared.worker import run_job_task


@celery.task(name=RUN_INGEST_JOB, bind=True)
def run_ingest(self, payload: dict) -> str:
    return run_job_task(self, payload, run_ingest_job)
