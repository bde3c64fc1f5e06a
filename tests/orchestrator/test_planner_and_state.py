"""The orchestrator's plain functions: planning a run, the state machine, recording events."""

import pytest

from flowforge_orchestrator.runs import planner
from flowforge_orchestrator.runs.state import EXECUTION_MOVES, JOB_MOVES, Status, can_move
from flowforge_shared.errors import Unprocessable
from tests.catalog.factories import csv_job, gold_job


def wire(job: dict) -> dict:
    return {k: v for k, v in job.items() if k != "name"}


def three_layer():
    silver = gold_job("bronze_tx", "unused", "silver")
    silver["destinationConfig"] = {"silverConfig": {"tableName": "silver_tx", "primaryKey": "id"}}
    del silver["transformationConfig"]
    return [
        ("a", "ingest", 0, wire(csv_job("bronze_tx", "ingest"))),
        ("b", "silver", 1, wire(silver)),
        ("c", "gold", 2, wire(gold_job("silver_tx", "gold_tx", "gold"))),
        ("d", "other", 3, wire(csv_job("bronze_other", "other"))),
    ]


def test_plan_infers_dependencies_from_tables_and_queues_by_type():
    planned = {job.job_id: job for job in planner.plan(three_layer())}
    assert planned["a"].needs == [] and planned["a"].queue == "ingest"
    assert planned["b"].needs == ["a"] and planned["b"].queue == "transform"
    assert planned["c"].needs == ["b"]
    assert planned["d"].needs == []


def test_plan_of_a_subset_takes_what_it_needs():
    planned = planner.plan(three_layer(), selected=["c"])
    assert sorted(job.job_id for job in planned) == ["a", "b", "c"]


def test_plan_refuses_unknown_jobs_and_empty_workflows():
    with pytest.raises(Unprocessable) as error:
        planner.plan(three_layer(), selected=["zzz"])
    assert error.value.errors[0][0] == ("jobs", 0)
    with pytest.raises(Unprocessable):
        planner.plan([])


def test_state_machine_refuses_moves_out_of_terminal_states():
    assert can_move(JOB_MOVES, "queued", Status.RUNNING)
    assert can_move(JOB_MOVES, "running", Status.SUCCEEDED)
    assert not can_move(JOB_MOVES, "succeeded", Status.FAILED)
    assert not can_move(JOB_MOVES, "skipped", Status.RUNNING)
    assert not can_move(EXECUTION_MOVES, "cancelled", Status.SUCCEEDED)
    assert not can_move(EXECUTION_MOVES, "failed", Status.RUNNING)
