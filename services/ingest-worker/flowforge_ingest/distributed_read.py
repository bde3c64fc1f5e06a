"""The distributed mode of a parallel read (docs/connectors.md, "Distributed"): on a Celery
deployment the key ranges of a table become ``flowforge.ingest.read_range`` tasks on the
ingest queue, each staging a Delta table of its own (:mod:`.staged`), and the job's task —
the coordinator — commits them into bronze once.

Plain functions, testable without a broker: :func:`coordinate` (claim, wait, take over),
:func:`read_range` (open a range's statement and stage it) and :func:`run_range_task` (what
the Celery task does with one message). The claims live in Redis (:mod:`.range_claims`);
what a range task needs travels in a JSON *spec* built by the coordinator (:func:`range_spec`).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from flowforge_ingest.bronze import AuditContext
from flowforge_ingest.errors import Cancelled
from flowforge_ingest.range_claims import ClaimKeeper, RangeClaims
from flowforge_ingest.staged import StagedRange, stage_range
from flowforge_shared.errors import PermanentError
from flowforge_shared.lake import Lake
from flowforge_shared.settings import Settings

log = logging.getLogger("flowforge.ingest")


@dataclass(frozen=True)
class RangeDispatch:
    """What a Celery deployment hands the job: a Redis client for the claims and a way to
    send one range task (``send(spec, index)``). Without one (the embedded default), ranges
    are threads of the job (:class:`~flowforge_ingest.parallel_read.ParallelStream`)."""

    client: Any
    send: Callable[[dict, int], None]
    claim_ttl: float
    poll: float = 0.2

    def claims(self, execution_id: str, run_sequence: int, attempt: int) -> RangeClaims:
        return RangeClaims(self.client, execution_id, run_sequence, attempt, self.claim_ttl)


class RangeFailed(PermanentError):
    """A range task failed for good; its message is the job's."""


# --------------------------------------------------------------------------- the spec


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def range_spec(
    *,
    execution_id: str,
    run_sequence: int,
    attempt: int,
    job_name: str,
    bronze_table: str,
    folder: str,
    connection: dict,
    read_arguments: dict,
    ranges: list,
    snapshot: str | None,
    batch_size: int,
    columns: list | None,
    audit: AuditContext | None,
    claim_ttl: float,
) -> dict:
    """Everything a range task needs, as JSON (the schemas are added once planned)."""
    read = dict(read_arguments)
    for bound in ("lower", "upper"):
        if read.get(bound) is not None:
            read[bound] = read[bound].to_dict()
    return {
        "executionId": execution_id,
        "runSequence": run_sequence,
        "attempt": attempt,
        "jobName": job_name,
        "bronzeTable": bronze_table,
        "folder": folder,
        "connection": connection,
        "read": read,
        "ranges": [asdict(key_range) for key_range in ranges],
        "snapshot": snapshot,
        "batchSize": batch_size,
        "columns": [asdict(column) for column in columns] if columns is not None else None,
        "audit": {
            "executionId": audit.execution_id,
            "jobId": audit.job_id,
            "source": audit.source,
            "ingestedAt": audit.ingested_at.isoformat() if audit.ingested_at else None,
        }
        if audit is not None
        else None,
        "claimTtl": claim_ttl,
    }


def _audit(spec: dict) -> AuditContext | None:
    data = spec.get("audit")
    if data is None:
        return None
    at = data.get("ingestedAt")
    return AuditContext(
        execution_id=data["executionId"],
        job_id=data["jobId"],
        source=data["source"],
        ingested_at=datetime.fromisoformat(at) if at else None,
    )


# --------------------------------------------------------------------------- one range


def open_range(spec: dict, index: int, settings: Settings):
    """Range ``index``'s statement on a connection of its own (in the run's PostgreSQL
    snapshot): ``(stream, close_connection)``; no row read yet."""
    from flowforge_ingest.connectors import postgresql, sql
    from flowforge_ingest.connectors.base import ColumnInfo
    from flowforge_ingest.connectors.registry import connector_for
    from flowforge_ingest.connectors.sql import KeyRange
    from flowforge_ingest.connectors.watermark import Watermark
    from flowforge_ingest.operations import connection_params

    params = connection_params(spec["connection"], settings)
    connector = connector_for(params.db_type)
    read = dict(spec["read"])
    for bound in ("lower", "upper"):
        if read.get(bound) is not None:
            read[bound] = Watermark.from_dict(read[bound])
    plan = sql.plan_read(params.db_type, key_range=KeyRange(**spec["ranges"][index]), **read)
    columns = [ColumnInfo(**column) for column in spec["columns"]] if spec["columns"] else None
    conn = connector.connect(params)
    try:
        if spec["snapshot"]:
            postgresql.use_snapshot(conn, spec["snapshot"])
        stream = connector.execute_batches(conn, plan.sql, plan.params, spec["batchSize"], columns)
    except BaseException:
        conn.close()
        raise
    return stream, conn.close


def read_range(
    spec: dict,
    index: int,
    *,
    lake: Lake,
    settings: Settings,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[int], None] | None = None,
    opened=None,
) -> StagedRange:
    """Read range ``index`` (``opened``: its statement already open) into a staged table."""
    stream, close_connection = opened or open_range(spec, index, settings)
    try:
        if not stream.schema.equals(decode_schema(spec["source"])):
            raise PermanentError(
                "the ranges of a parallel read came back with different columns (the table "
                "changed while the read started); the job will be run again"
            )
        return stage_range(
            lake,
            spec["bronzeTable"],
            spec["folder"],
            index,
            stream,
            decode_schema(spec["target"]),
            _audit(spec),
            on_batch=on_batch,
            should_stop=should_stop,
        )
    finally:
        # A close that fails must not hide the read's own error.
        with contextlib.suppress(Exception):
            stream.close()
        with contextlib.suppress(Exception):
            close_connection()


def run_range_task(
    spec: dict,
    index: int,
    holder: str,
    *,
    lake: Lake,
    settings: Settings,
    claims: RangeClaims,
    cancelled: Callable[[], bool],
) -> str:
    """What a ``read_range`` task does: claim the range (a range claimed by another, already
    answered, or of a run that stopped ends at once), read and stage it while keeping the
    claim alive, record the staged table — or the error, when it is permanent. A transient
    failure releases the claim: the coordinator (or a redelivery) reads the range again.
    Returns what happened, for the task's result."""
    from flowforge_runtime.job import classify

    if claims.stopped() or index in claims.results():
        return "not needed"
    if not claims.claim(index, holder):
        return "claimed by another"
    with ClaimKeeper(claims, index, holder) as keeper:
        try:
            staged = read_range(
                spec,
                index,
                lake=lake,
                settings=settings,
                should_stop=lambda: keeper.lost or claims.stopped() or cancelled(),
                on_batch=claims.add_rows,
            )
        except Cancelled:
            claims.release(index, holder)
            return "stopped"
        except Exception as raw:  # noqa: BLE001 - recorded for the coordinator, or released
            error = classify(raw)
            if error.retryable:
                log.warning("range %s of %s: %s", index, spec["executionId"], error.message)
                claims.release(index, holder)
                return "released"
            claims.finish(index, {"error": error.message, "detail": error.detail})
            return "failed"
    claims.finish(index, {"staged": staged.to_dict()})
    return "staged"


# --------------------------------------------------------------------------- the coordinator


def coordinate(
    count: int,
    claims: RangeClaims,
    holder: str,
    *,
    read_own: Callable[[int], StagedRange],
    dispatch: Callable[[list[int]], None],
    should_stop: Callable[[], bool],
    deadline: float,
    poll: float = 0.2,
    on_wait: Callable[[], None] | None = None,
) -> list[StagedRange]:
    """Range 0 read by the coordinator itself, ranges 1.. sent as tasks; then, until every
    range has a staged table: a range answered is taken, a range nobody holds (never
    claimed, or its claim expired) is claimed and read here, one by one, so the read always
    finishes (at worst at one stream's speed, when no worker is free). A range that failed
    raises its error; the cancel flag and ``deadline`` (``time.monotonic()``) end the wait.
    Any exception raises the stop flag first, so range tasks stop at their next batch.

    ``read_own(index)`` reads a range here, its claim kept alive meanwhile."""
    done: dict[int, StagedRange] = {}

    def own(index: int) -> StagedRange:
        with ClaimKeeper(claims, index, holder):
            staged = read_own(index)
        claims.finish(index, {"staged": staged.to_dict()})
        return _answer(index, claims.results().get(index)) or staged

    try:
        if not claims.claim(0, holder):
            raise PermanentError("range 0 of this run is claimed by another coordinator")
        dispatch(list(range(1, count)))
        done[0] = own(0)
        while len(done) < count:
            answers = claims.results()
            for index in range(1, count):
                if index in done:
                    continue
                answer = _answer(index, answers.get(index))
                if answer is not None:
                    done[index] = answer
                elif claims.claim(index, holder):
                    done[index] = own(index)
            if len(done) == count:
                break
            if should_stop():
                raise Cancelled("the load was cancelled before its commit; nothing was written")
            if time.monotonic() > deadline:
                raise PermanentError(
                    "the ranges of the parallel read did not finish within the task time "
                    "limit; nothing was written"
                )
            if on_wait is not None:
                on_wait()
            time.sleep(poll)
    except BaseException:
        claims.stop()
        raise
    return [done[index] for index in range(count)]


def _answer(index: int, answer: dict | None) -> StagedRange | None:
    if answer is None:
        return None
    if "error" in answer:
        raise RangeFailed(answer["error"], answer.get("detail"))
    return StagedRange.from_dict(answer["staged"])
