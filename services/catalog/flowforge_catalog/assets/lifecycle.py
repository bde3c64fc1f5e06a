"""A table's lifecycle on request: its Delta history, restore a version, reset (delete every
row, keep the schema and history), drop (remove the table and its catalog entry), and
maintenance (compaction, a checkpoint, vacuum with a retention).

Changes are admin-only, confirmed by the table's name in the body, audited, and refused
(409) while an execution that writes the table is active: a job mid-write would commit on
top of, or into the hole of, what the request just did.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from flowforge_catalog.assets import pii
from flowforge_catalog.assets.models import Asset
from flowforge_catalog.assets.writers import WritersOf, refuse_while_written
from flowforge_catalog.audit import service as audit
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound, Unprocessable
from flowforge_shared.lake import LAYERS, Lake
from flowforge_shared.maintenance import clustering_key, keep_clustered

if TYPE_CHECKING:  # delta-rs is loaded by the lake when a table is opened
    from deltalake import DeltaTable

ENTITY = "table"
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def layers_of(session: Session, table: str) -> list[str]:
    """The layers ``table`` may be in: the catalog's, else every layer in order; NotFound
    for a name that cannot be a table's."""
    if not TABLE_NAME.fullmatch(table):  # never a path: the name becomes one in the lake
        raise NotFound(f"no table {table!r} in the lake")
    asset = session.get(Asset, table)
    return [asset.layer] if asset is not None else list(LAYERS)


def locate_in(lake: Lake, table: str, layers: list[str]) -> tuple[str, DeltaTable]:
    """(layer, Delta table) of ``table``: the first of ``layers`` that holds it; NotFound
    when none does."""
    for layer in layers:
        found = lake.load(layer, table)
        if found is not None:
            return layer, found
    raise NotFound(f"no table {table} in the lake")


def locate(session: Session, lake: Lake, table: str) -> tuple[str, DeltaTable]:
    """(layer, Delta table) of ``table``: the catalog's layer, else the first layer that
    holds it; NotFound when the lake has no such table."""
    return locate_in(lake, table, layers_of(session, table))


def history(lake: Lake, table: str, layers: list[str], limit: int) -> list[dict[str, Any]]:
    """The table's Delta commits, newest first (``layers``: :func:`layers_of`)."""
    _, delta = locate_in(lake, table, layers)
    entries = []
    for entry in delta.history(limit=limit):
        entries.append(
            {
                "version": entry.get("version"),
                "timestamp": entry.get("timestamp"),
                "operation": entry.get("operation"),
                "operationParameters": entry.get("operationParameters") or {},
                "operationMetrics": entry.get("operationMetrics") or {},
                "executionId": entry.get("flowforge.execution_id"),
                "jobAppId": entry.get("flowforge.app_id"),
                "runSequence": entry.get("flowforge.run_sequence"),
                "flowforgeAction": entry.get("flowforge.action"),
                "actor": entry.get("flowforge.actor"),
            }
        )
    return entries


def sample(
    lake: Lake, table: str, layers: list[str], limit: int, *, reveal_pii: bool = False
) -> dict[str, Any]:
    """The first ``limit`` rows of the table's current version, as the web UI's catalog page
    shows them: ``{"table", "layer", "version", "columns", "rows", "pii", "masked"}``;
    values JSON cannot carry exactly (decimals, dates, timestamps, bytes) are given as text.
    ``pii`` names the columns that identify a person (:mod:`.pii`); unless ``reveal_pii``,
    their values are masked and ``masked`` is true. ``layers``: :func:`layers_of`."""
    layer, delta = locate_in(lake, table, layers)
    head = delta.to_pyarrow_dataset().head(limit)
    rows = [[_json_value(value) for value in row.values()] for row in head.to_pylist()]
    found = pii.pii_columns(head.schema, rows)
    masked = bool(found) and not reveal_pii
    return {
        "table": table,
        "layer": layer,
        "version": delta.version(),
        "columns": head.column_names,
        "rows": pii.mask(rows, head.column_names, found) if masked else rows,
        "pii": found,
        "masked": masked,
    }


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return str(value)  # Decimal and anything else: its exact text


def confirm(table: str, given: str) -> None:
    if given != table:
        raise Unprocessable(
            [(("confirm",), f"type the table's name ({table}) to confirm; got {given!r}")]
        )


def _metadata(action: str, actor: str) -> dict[str, str]:
    return {"flowforge.action": action, "flowforge.actor": actor}


def restore(
    session: Session, lake: Lake, table: str, *, version: int, actor: str, writers: WritersOf
) -> dict[str, Any]:
    from deltalake import CommitProperties

    refuse_while_written(writers, table)
    layer, delta = locate(session, lake, table)
    current = delta.version()
    if version < 0 or version > current:
        raise Unprocessable([(("version",), f"table {table} has versions 0 to {current}")])
    if version == current:
        raise Conflict(f"table {table} is at version {version} already")
    try:
        metrics = delta.restore(
            version,
            commit_properties=CommitProperties(custom_metadata=_metadata("restore", actor)),
        )
    except Exception as error:  # noqa: BLE001 - e.g. the files of that version were vacuumed
        raise Conflict(f"table {table} cannot be restored to version {version}: {error}") from None
    result = _refresh(session, lake, layer, table)
    _audit(session, actor, "table.restore", table, {"from": current, "to": version}, result)
    return {**result, "restoredFrom": current, "restoredTo": version, "metrics": metrics}


def reset(
    session: Session, lake: Lake, table: str, *, actor: str, writers: WritersOf
) -> dict[str, Any]:
    """Every row deleted in one commit; schema and history stay (restore undoes it)."""
    from deltalake import CommitProperties

    refuse_while_written(writers, table)
    layer, delta = locate(session, lake, table)
    before = delta.version()
    delta.delete(commit_properties=CommitProperties(custom_metadata=_metadata("reset", actor)))
    result = _refresh(session, lake, layer, table)
    _audit(session, actor, "table.reset", table, {"version": before}, result)
    return result


def drop(
    session: Session, lake: Lake, table: str, *, actor: str, writers: WritersOf
) -> dict[str, Any]:
    """The table's files and its catalog entry removed; jobs that write it make it again."""
    refuse_while_written(writers, table)
    layer, delta = locate(session, lake, table)
    before = {"layer": layer, "version": delta.version(), "location": lake.uri(layer, table)}
    filesystem, base = lake._filesystem(layer, table)  # noqa: SLF001 - the lake's own store
    filesystem.delete_dir(base)
    for extra in (f"{table}__quarantine",):  # the bronze quarantine goes with its table
        if layer == "bronze" and lake.load(layer, extra) is not None:
            quarantine_fs, quarantine_base = lake._filesystem(layer, extra)  # noqa: SLF001
            quarantine_fs.delete_dir(quarantine_base)
    asset = session.get(Asset, table)
    if asset is not None:
        session.delete(asset)
    session.flush()
    _audit(session, actor, "table.drop", table, before, {"dropped": True})
    return {"table": table, "layer": layer, "dropped": True}


def maintain(
    session: Session,
    lake: Lake,
    table: str,
    *,
    compact: bool,
    checkpoint: bool,
    vacuum_hours: int | None,
    min_vacuum_hours: int,
    actor: str,
    writers: WritersOf,
) -> dict[str, Any]:
    if vacuum_hours is not None and vacuum_hours < min_vacuum_hours:
        raise Unprocessable(
            [
                (
                    ("vacuum", "retentionHours"),
                    f"keep at least {min_vacuum_hours} hours: a write may last that long, "
                    "and vacuum must not take the files of a write in flight",
                )
            ]
        )
    refuse_while_written(writers, table)
    layer, delta = locate(session, lake, table)
    done: dict[str, Any] = {"table": table, "layer": layer}
    if compact:
        done["compact"] = _compact(delta, _metadata("compact", actor))
        delta = lake.load(layer, table)
    if checkpoint:
        delta.create_checkpoint()
        done["checkpoint"] = {"version": delta.version()}
    if vacuum_hours is not None:
        removed = delta.vacuum(
            retention_hours=vacuum_hours, dry_run=False, enforce_retention_duration=False
        )
        done["vacuum"] = {"retentionHours": vacuum_hours, "filesRemoved": len(removed)}
    result = _refresh(session, lake, layer, table)
    done["version"] = result["version"]
    _audit(session, actor, "table.maintain", table, None, done)
    return done


def _compact(delta: DeltaTable, metadata: dict[str, str]) -> dict[str, Any]:
    """Compaction on request. A table kept clustered on a key (a silver table merged on its
    primaryKey) is re-clustered on it, as the automatic maintenance does (the same
    function): compacting it by size would merge its key ranges back together, and every
    later merge would rewrite (and read) the whole table again. Left alone when at most one
    file is out of place (the last file of a clustered table is usually the small rest).
    Any other table is compacted by size."""
    from deltalake import CommitProperties

    key = clustering_key(delta)
    if key:
        clustered = keep_clustered(delta, key, min_files=1, custom_metadata=metadata)
        if clustered is None:
            return {"filesAdded": 0, "filesRemoved": 0, "clusteredBy": key[:1]}
        answer = {
            "filesAdded": clustered["filesAdded"],
            "filesRemoved": clustered["filesRemoved"],
            "clusteredBy": clustered["columns"],
        }
        if "targetFileSize" in clustered:  # a table merged before the clustered layout
            answer["targetFileSize"] = clustered["targetFileSize"]
        return answer
    metrics = delta.optimize.compact(commit_properties=CommitProperties(custom_metadata=metadata))
    return {
        "filesAdded": metrics.get("numFilesAdded"),
        "filesRemoved": metrics.get("numFilesRemoved"),
    }


def _refresh(session: Session, lake: Lake, layer: str, table: str) -> dict[str, Any]:
    delta = lake.load(layer, table)
    assert delta is not None
    rows = delta.count() if hasattr(delta, "count") else None
    asset = session.get(Asset, table)
    if asset is not None:
        asset.version = delta.version()
        asset.row_count = rows
        asset.last_updated = utcnow()
        session.flush()
    return {"table": table, "layer": layer, "version": delta.version(), "rowCount": rows}


def _audit(session, actor, action, table, before, after) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type=ENTITY,
        entity_id=table,
        before=before,
        after=after,
    )
