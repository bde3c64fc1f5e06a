"""The reaper: a thread that applies :mod:`flowforge_orchestrator.runs.liveness` every
``reaper_interval`` seconds, in the embedded server and in every ``flowforge worker
events`` process (several reapers are safe: each execution is settled under its row lock,
and a second reaper skips a locked one).

Heartbeats are judged only once they can be trusted: the reaper and the broker must have
been up for a whole ``heartbeat_timeout`` (beats sent while the broker was down are lost,
by design), and the events queue must not be backed up (beats wait behind events there).
A process of this host that has ended is settled at once, without waiting for the lease:
that is how a restarted embedded server settles what the previous one left.
"""

from __future__ import annotations

import logging
import time

from flowforge_orchestrator import dispatch
from flowforge_orchestrator.periodic import PeriodicPass
from flowforge_orchestrator.runs import liveness
from flowforge_shared.db.engine import Database
from flowforge_shared.identity import is_gone
from flowforge_shared.settings import Settings

log = logging.getLogger("flowforge.reaper")

BACKLOG_LIMIT = 200
"""Events waiting on the broker above which heartbeats are not judged (they may be queued)."""


class Reaper(PeriodicPass):
    thread_name = "flowforge-reaper"
    log = log

    def __init__(self, database: Database, runtime, settings: Settings) -> None:
        self.database = database
        self.runtime = runtime
        self.settings = settings
        self.lease = liveness.Lease.from_settings(settings)
        self._up_since: float | None = None
        super().__init__()

    @property
    def interval(self) -> float:
        return self.settings.reaper_interval

    def run_pass(self) -> int:
        return self.sweep()

    def sweep(self) -> int:
        """One pass; returns how many job runs it settled or resent."""
        try:
            epoch = self.runtime.epoch()
            backlog = self.runtime.backlog()
        except Exception as error:  # noqa: BLE001 - broker down: nothing can be sent now
            log.warning("reaper: broker unreachable (%s); waiting", error)
            self._up_since = None
            return 0
        now = time.monotonic()
        if self._up_since is None:
            self._up_since = now
        judge = now - self._up_since >= self.settings.heartbeat_timeout and backlog < BACKLOG_LIMIT
        with dispatch.record_lock, self.database.session() as session:
            execution_ids = liveness.candidates(session)
        settled = 0
        for execution_id in execution_ids:
            if self._stop.is_set():
                break
            settled += self._settle(execution_id, epoch, judge)
        return settled

    def _settle(self, execution_id: str, epoch: str | None, judge: bool) -> int:
        with dispatch.record_lock, self.database.session() as session:
            execution = liveness.lock(session, execution_id)
            if execution is None:
                return 0
            sweep = liveness.reap(
                session,
                execution,
                lease=self.lease,
                epoch=epoch,
                gone=is_gone,
                judge_heartbeats=judge,
            )
            queues = {job.id: job.queue for job in execution.jobs}
        for line in sweep.settled:
            log.warning("execution %s: %s", execution_id, line)
        dispatch.send_and_mark(self.database, self.runtime, sweep.resent + sweep.tasks, queues)
        for cancelling in sweep.cancelling:
            try:
                self.runtime.cancel(cancelling, [])
            except Exception:  # noqa: BLE001 - raised again next pass
                log.warning("could not raise the cancel flag of %s", cancelling)
        return len(sweep.settled)


def start_for_worker(settings: Settings) -> Reaper:
    """The reaper of a ``flowforge worker events`` process (its own engine and broker
    client, never shared with the pool processes it forks)."""
    import os

    database = Database(settings.database_url_for("orchestrator"))
    os.register_at_fork(after_in_child=lambda: database.engine.dispose(close=False))
    reaper = Reaper(database, dispatch.CeleryRuntime(settings), settings)
    reaper.start()
    return reaper
