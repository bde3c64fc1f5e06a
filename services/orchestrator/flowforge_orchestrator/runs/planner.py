"""Turning a workflow's jobs into the job runs of an execution: the DAG, the subset a user
asked for (with everything it needs), and which job runs are ready to go."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flowforge_shared import dag
from flowforge_shared.contracts.jobs import JobConfig, JobType
from flowforge_shared.contracts.tasks import INGEST_QUEUE, TRANSFORM_QUEUE
from flowforge_shared.errors import Unprocessable


@dataclass(frozen=True)
class PlannedJob:
    job_id: str
    name: str
    position: int
    config: dict
    needs: list[str]
    queue: str


def queue_for(config: JobConfig) -> str:
    return TRANSFORM_QUEUE if config.type == JobType.GOLD_ANALYTICS else INGEST_QUEUE


def plan(
    jobs: Sequence[tuple[str, str, int, dict]], selected: Iterable[str] | None = None
) -> list[PlannedJob]:
    """jobs: (id, name, position, wire config without name). ``selected`` narrows the run to
    those jobs plus what they need, transitively."""
    configs = {
        job_id: JobConfig.model_validate({"name": name, **cfg}) for job_id, name, _, cfg in jobs
    }
    graph = dag.dependencies(configs)
    wanted = set(configs)
    if selected is not None:
        selected = list(selected)
        unknown = [job_id for job_id in selected if job_id not in configs]
        if unknown:
            raise Unprocessable(
                [
                    (("jobs", index), f"no job {job_id} in this workflow")
                    for index, job_id in enumerate(selected)
                    if job_id in unknown
                ]
            )
        wanted = dag.upstream_closure(graph, set(selected))
    if not wanted:
        raise Unprocessable([(("jobs",), "the workflow has no jobs to run")])
    return [
        PlannedJob(
            job_id=job_id,
            name=name,
            position=position,
            config={"name": name, **cfg},
            needs=sorted(graph[job_id] & wanted),
            queue=queue_for(configs[job_id]),
        )
        for job_id, name, position, cfg in jobs
        if job_id in wanted
    ]
