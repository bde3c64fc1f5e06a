"""OpenLineage events from any producer (Airflow, Spark, dbt, ...), received by
``POST /api/v1/lineage``: read, validated against the spec (:mod:`.schemas`) and applied to
the graph as FlowForge's own run events are (:func:`flowforge_lineage.graph.consumer.record_event`:
once, in any order).

- A RunEvent is applied. Without a ``flowforge_run`` facet its job is
  ``<job namespace>/<job name>`` in the graph; its datasets join FlowForge's by namespace
  and name.
- A JobEvent or DatasetEvent (static metadata, no run) is valid OpenLineage and accepted,
  but not applied: the graph is built from runs.
- Events received here are not forwarded to ``FLOWFORGE_OPENLINEAGE_URL``
  (:mod:`.outbound`): that endpoint is where such producers send their own events, and
  forwarding them could loop between two systems that forward to each other."""

from __future__ import annotations

import copy
import json
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from flowforge_lineage.graph.apply import job_of
from flowforge_lineage.graph.consumer import record_event
from flowforge_lineage.openlineage.schemas import KINDS
from flowforge_shared.db.engine import Database
from flowforge_shared.errors import ApiError, Unprocessable
from flowforge_shared.storable import problems

# The longest names the graph's tables keep (lineage_jobs, lineage_datasets; migration 0010).
MAX_JOB_ID = 500
MAX_JOB_NAME = 300
MAX_NAMESPACE = 255
MAX_DATASET_NAME = 500
MAX_REPORTED = 20
# Deeper than any OpenLineage event needs (a schema facet's nested struct fields included);
# what reads the event after validation (copies, hashes) may recurse on it.
MAX_DEPTH = 100


class PayloadTooLarge(ApiError):
    status_code = 413


class UnsupportedEncoding(ApiError):
    status_code = 415


@dataclass(frozen=True)
class Received:
    """What became of one event: the HTTP status and the answer's body."""

    status: int
    body: dict[str, Any]


def read(body: bytes, *, encoding: str | None, max_bytes: int) -> Any:
    """The JSON document in a request body (gzip-compressed or not): 400 when it is not
    JSON, 413 beyond ``max_bytes`` (decompressed), 415 for another content encoding."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, max_bytes + 1)
        except zlib.error as error:
            raise ApiError(f"the body is not valid gzip: {error}") from None
        if len(body) > max_bytes or inflater.unconsumed_tail:
            raise PayloadTooLarge(too_large(max_bytes))
    elif encoding != "identity":
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding} is not supported: send the event as JSON, or gzip"
        )
    if len(body) > max_bytes:
        raise PayloadTooLarge(too_large(max_bytes))
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise ApiError("the body is not JSON: it is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ApiError(
            f"the body is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise ApiError("the body is not JSON FlowForge can read: it is nested too deeply") from None


def too_large(max_bytes: int) -> str:
    return (
        f"the event is larger than {max_bytes} bytes (FLOWFORGE_OPENLINEAGE_MAX_BYTES); "
        "send it without the largest facets"
    )


def validate(document: Any) -> str:
    """The kind of OpenLineage event ``document`` is (RunEvent, JobEvent, DatasetEvent), or
    422 naming each problem: where it is and what is wrong, against the kind the event looks
    like. Mirrors the spec's ``oneOf``: exactly one kind must match."""
    if not isinstance(document, dict):
        raise Unprocessable([((), "an OpenLineage event is a JSON object")])
    too_deep = _deeper_than(document, MAX_DEPTH)
    if too_deep is not None:
        raise Unprocessable([(too_deep, f"is nested deeper than {MAX_DEPTH} levels")])
    stored = [(path, f"value {message}") for path, message in problems(document)]
    if stored:
        raise Unprocessable(stored)
    matched, errors = [], {}
    for kind, model in KINDS.items():
        try:
            model.model_validate(document)
        except ValidationError as error:
            errors[kind] = error
        else:
            matched.append(kind)
    if len(matched) == 1:
        return matched[0]
    if matched:
        raise Unprocessable(
            [((), f"the event is both a {' and a '.join(matched)}; the spec allows one kind")]
        )
    intended = next((kind for kind, key in _LOOKS_LIKE if key in document), "RunEvent")
    raise Unprocessable(
        [(item["loc"], _message(item)) for item in errors[intended].errors()[:MAX_REPORTED]]
        + ([] if intended == "RunEvent" else [((), f"(read as an OpenLineage {intended})")])
    )


# The kind an invalid event looks like, by the first of these keys it has.
_LOOKS_LIKE = (("RunEvent", "run"), ("JobEvent", "job"), ("DatasetEvent", "dataset"))


def _deeper_than(document: Any, limit: int) -> tuple[str | int, ...] | None:
    """The path of a value nested deeper than ``limit``, or None. Iterative."""
    pending: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while pending:
        path, value = pending.pop()
        if len(path) > limit:
            return path[:limit]
        if isinstance(value, dict):
            pending.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend(((*path, index), item) for index, item in enumerate(value))
    return None


def _message(item: dict[str, Any]) -> str:
    message = str(item.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    if item.get("type") == "missing":
        return "is required"
    if item.get("type") == "model_type":
        return "must be an object"
    return message


def receive(database: Database, document: Any) -> Received:
    """Validate one event and apply it when it is a RunEvent: 201 applied, 200 applied
    before (nothing changed), 202 accepted and not applied (a JobEvent or DatasetEvent)."""
    kind = validate(document)
    if kind != "RunEvent":
        detail = (
            f"a valid {kind}, accepted and not applied: the lineage graph is built from run "
            "events (RunEvent)"
        )
        if kind == "JobEvent" and "eventType" in document:
            detail += "; this event has an eventType but no run, so the spec reads it as a JobEvent"
        return Received(202, {"kind": kind, "applied": False, "detail": detail})
    job_id, _ = job_of(document)
    _refuse_what_the_graph_cannot_keep(document, job_id)
    applied = record_event(database, _applicable(document))
    return Received(
        201 if applied else 200,
        {
            "kind": kind,
            "applied": applied,
            "jobId": job_id,
            "runId": document["run"]["runId"],
            **({} if applied else {"detail": "this event was applied before; nothing changed"}),
        },
    )


def _refuse_what_the_graph_cannot_keep(event: dict[str, Any], job_id: str) -> None:
    """422 for names longer than the graph's columns (valid OpenLineage, yet unstorable)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    try:
        _utc(event["eventTime"])
    except OverflowError:
        found.append((("eventTime",), "is out of range: in UTC it is before year 1 or after 9999"))
    job = event["job"]
    if len(job_id) > MAX_JOB_ID:
        found.append((("job",), f"namespace/name is longer than {MAX_JOB_ID} characters"))
    if len(job["name"]) > MAX_JOB_NAME:
        found.append((("job", "name"), f"is longer than {MAX_JOB_NAME} characters"))
    if len(job["namespace"]) > MAX_NAMESPACE:
        found.append((("job", "namespace"), f"is longer than {MAX_NAMESPACE} characters"))
    for side in ("inputs", "outputs"):
        for index, dataset in enumerate(event.get(side) or []):
            if len(dataset["namespace"]) > MAX_NAMESPACE:
                found.append(
                    ((side, index, "namespace"), f"is longer than {MAX_NAMESPACE} characters")
                )
            if len(dataset["name"]) > MAX_DATASET_NAME:
                found.append(
                    ((side, index, "name"), f"is longer than {MAX_DATASET_NAME} characters")
                )
    ours = (event["run"].get("facets") or {}).get("flowforge_run") or {}
    for key, limit in (("eventId", 64), ("jobId", MAX_JOB_ID), ("workflowId", 36)):
        value = ours.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            found.append(
                (("run", "facets", "flowforge_run", key), f"must be text of at most {limit}")
            )
    if found:
        raise Unprocessable(found[:MAX_REPORTED])


def _applicable(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the graph reads it: what the spec allows and the graph's reader does
    not take is made plain (nothing else changes, so the same event stays the same):

    - an eventTime Python does not parse (``t``/``z`` in lower case, a leap second) is
      written as the same instant in the usual form;
    - a dataset version that is not a whole number (the graph keeps Delta table versions)
      is left out;
    - a row count written ``5.0`` is ``5``."""
    applied = copy.deepcopy(event)  # valid: the shape read below is guaranteed
    try:
        datetime.fromisoformat(applied["eventTime"])
    except ValueError:
        applied["eventTime"] = _instant(applied["eventTime"])
    for dataset in applied.get("outputs") or []:
        facets = dataset.get("facets") or {}
        version = (facets.get("version") or {}).get("datasetVersion")
        if version is not None and not _whole_number(version):
            del facets["version"]
        stats = (dataset.get("outputFacets") or {}).get("outputStatistics") or {}
        if isinstance(stats.get("rowCount"), float):
            stats["rowCount"] = int(stats["rowCount"])
    for dataset in applied.get("inputs") or []:
        metrics = (dataset.get("inputFacets") or {}).get("dataQualityMetrics") or {}
        if isinstance(metrics.get("rowCount"), float):
            metrics["rowCount"] = int(metrics["rowCount"])
    return applied


def _whole_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?[0-9]{1,19}", text.strip())) and -(2**63) <= int(text) < 2**63


def _utc(text: str) -> datetime:
    """An RFC 3339 date-time (as the schema checked it) in UTC; OverflowError beyond the
    years 1 to 9999."""
    text = text.upper()
    date, _, rest = text.partition("T")
    leap = rest[6:8] == "60"
    if leap:  # 23:59:60 is the last moment of the minute
        rest = rest[:6] + "59" + rest[8:]
    parsed = datetime.fromisoformat(f"{date}T{rest}").astimezone(UTC)
    return parsed.replace(microsecond=999_999) if leap else parsed


def _instant(text: str) -> str:
    """An RFC 3339 date-time Python's fromisoformat refuses, in a form it reads."""
    return _utc(text).isoformat()
