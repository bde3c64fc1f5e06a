"""execute_job: events reported, errors classified, retries bounded — without a broker."""

import pickle

import pytest

from flowforge_runtime.job import (
    Cancelled,
    JobContext,
    JobOutcome,
    LocalCancelFlags,
    classify,
    execute_job,
    retry_delay,
)
from flowforge_shared.contracts.tasks import JobTask
from flowforge_shared.errors import PermanentError, TransientError
from flowforge_shared.lake import Lake
from flowforge_shared.settings import Settings


class ListSink:
    def __init__(self):
        self.events = []
        self.beats = []

    def emit(self, event):
        self.events.append(event)

    def heartbeat(self, beat):
        self.beats.append(beat)

    @property
    def types(self):
        return [event["eventType"] for event in self.events]


EXECUTION = "e1e1e1e1-0000-4000-8000-000000000001"
RUN = "a1a1a1a1-0000-4000-8000-000000000001"


def context(tmp_path, sink, attempt=1, flags=None, **settings):
    task = JobTask(
        execution_id=EXECUTION,
        run_sequence=3,
        job_run_id=RUN,
        job_id="j1",
        workflow_id="w1",
        workflow_name="wf",
        job={"name": "job one"},
    )
    return JobContext(
        task=task,
        attempt=attempt,
        settings=Settings(data_dir=tmp_path, **settings),
        lake=Lake(str(tmp_path / "lake")),
        sink=sink,
        cancel_flags=flags or LocalCancelFlags(),
        owner="worker@test",
    )


def test_success_reports_start_progress_and_complete(tmp_path):
    sink = ListSink()

    def runner(ctx):
        ctx.progress(10, staged=10)
        return JobOutcome(rows_read=10, rows_written=10)

    assert execute_job(context(tmp_path, sink), runner, final_attempt=False) == "succeeded"
    assert sink.types == ["START", "RUNNING", "COMPLETE"]
    progress = sink.events[1]["run"]["facets"]["flowforge_progress"]
    # Rows in data files are staged, not written: only COMPLETE says what was committed.
    assert progress["rowsRead"] == 10 and progress["rowsStaged"] == 10
    assert "rowsWritten" not in progress
    assert sink.events[0]["run"]["facets"]["flowforge_run"]["owner"] == "worker@test"
    complete = sink.events[-1]
    assert complete["run"]["runId"] == RUN
    assert (complete["job"]["namespace"], complete["job"]["name"]) == ("flowforge", "wf.job one")
    assert complete["job"]["facets"]["jobType"]["jobType"] == "JOB"
    assert complete["run"]["facets"]["parent"]["run"]["runId"] == EXECUTION
    assert complete["run"]["facets"]["flowforge_result"]["rowsWritten"] == 10
    assert len({event["run"]["facets"]["flowforge_run"]["eventId"] for event in sink.events}) == 3


def test_a_running_attempt_beats_until_it_ends(tmp_path):
    import time

    sink = ListSink()

    def runner(ctx):
        time.sleep(0.55)
        return JobOutcome()

    ctx = context(tmp_path, sink, attempt=2, heartbeat_interval=0.1, heartbeat_timeout=1)
    assert execute_job(ctx, runner, final_attempt=False) == "succeeded"
    assert 3 <= len(sink.beats) <= 6
    assert sink.beats[0] == {
        "jobRunId": RUN,
        "executionId": EXECUTION,
        "attempt": 2,
        "owner": "worker@test",
    }
    beats = len(sink.beats)
    time.sleep(0.3)
    assert len(sink.beats) == beats  # no beat once the attempt has ended


def test_transient_error_asks_for_a_retry_until_the_last_attempt(tmp_path):
    def runner(ctx):
        raise ConnectionResetError("connection reset by peer")

    sink = ListSink()
    assert execute_job(context(tmp_path, sink), runner, final_attempt=False) == "retry"
    assert sink.types == ["START"]
    sink = ListSink()
    assert execute_job(context(tmp_path, sink, attempt=6), runner, final_attempt=True) == "failed"
    error = sink.events[-1]["run"]["facets"]["flowforge_error"]
    assert "gave up after 6 attempts" in error["message"] and error["retryable"] is True


def test_permanent_error_fails_at_once_with_message_and_detail_apart(tmp_path):
    def runner(ctx):
        raise ValueError("file tx.csv, row 3, column amount: 'abc' is not a decimal")

    sink = ListSink()
    assert execute_job(context(tmp_path, sink), runner, final_attempt=False) == "failed"
    error = sink.events[-1]["run"]["facets"]["flowforge_error"]
    assert error["message"] == "file tx.csv, row 3, column amount: 'abc' is not a decimal"
    assert error["detail"].startswith("ValueError")


def test_cancelled_execution_aborts_before_running(tmp_path):
    flags = LocalCancelFlags()
    flags.cancel(EXECUTION)
    ran = []
    sink = ListSink()
    outcome = execute_job(
        context(tmp_path, sink, flags=flags), lambda ctx: ran.append(1), final_attempt=False
    )
    assert outcome == "cancelled" and ran == [] and sink.types == ["START", "ABORT"]


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TimeoutError("read timed out"), True),
        (OSError("Generic S3 error: 503 Service Unavailable"), True),
        (KeyError("x"), False),
        (PermanentError("bad"), False),
        (TransientError("later"), True),
    ],
)
def test_classify(error, retryable):
    assert classify(error).retryable is retryable


def test_task_errors_pickle_with_their_detail():
    error = pickle.loads(pickle.dumps(PermanentError("message", "detail")))
    assert (error.message, error.detail) == ("message", "detail")
    assert isinstance(pickle.loads(pickle.dumps(Cancelled("stop"))), Cancelled)


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap():
    for attempt in range(1, 12):
        delay = retry_delay(attempt, 2.0, 60.0)
        ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
