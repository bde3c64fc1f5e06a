"""The run state machine, declared as data: which status may follow which.

Every status change of an execution or a job run goes through :func:`move`; an event that
asks for a transition the table does not allow (a late or repeated event) changes nothing.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    CANCELLING = "cancelling"  # executions only: cancel asked, a job still has to stop


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED})

EXECUTION_MOVES: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset(
        {Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELLING, Status.CANCELLED}
    ),
    Status.RUNNING: frozenset(
        {Status.SUCCEEDED, Status.FAILED, Status.CANCELLING, Status.CANCELLED}
    ),
    # A cancelled execution keeps its workflow until its last running job has stopped (or
    # its worker is found lost): only then may another run write the same tables.
    Status.CANCELLING: frozenset({Status.CANCELLED}),
}

JOB_MOVES: dict[Status, frozenset[Status]] = {
    # A COMPLETE whose START was lost still counts: queued may go straight to succeeded.
    Status.QUEUED: frozenset(
        {Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED}
    ),
    # running -> running is a redelivered task starting a new attempt; running -> queued is
    # a job whose worker was lost, queued again for its next attempt by the reaper.
    Status.RUNNING: frozenset(
        {Status.RUNNING, Status.QUEUED, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}
    ),
}


def can_move(moves: dict[Status, frozenset[Status]], current: str, new: Status) -> bool:
    return new in moves.get(Status(current), frozenset())


def move(obj, moves: dict[Status, frozenset[Status]], new: Status) -> bool:
    """Set ``obj.status`` to ``new`` when allowed; report whether it changed."""
    if not can_move(moves, obj.status, new):
        return False
    obj.status = new.value
    return True
