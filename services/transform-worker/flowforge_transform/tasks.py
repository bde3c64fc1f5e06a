"""Celery task of the transform worker: a thin wrapper around run_transform_job."""

from __future__ import annotations

from flowforge_runtime.worker import run_job_task
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.tasks import RUN_TRANSFORM_JOB
from flowforge_transform.runner import run_transform_job


@celery.task(name=RUN_TRANSFORM_JOB, bind=True)
def run_transform(self, payload: dict) -> str:
    return run_job_task(self, payload, run_transform_job)
