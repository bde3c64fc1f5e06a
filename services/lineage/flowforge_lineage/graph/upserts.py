"""The write side's SQL: one conditional upsert per kind of row, built once per dialect.

Each statement inserts the row an event describes or, when the row exists, changes only
the values this event is newer for (``excluded.<key> > <key>``, the order keys of
:mod:`.models`), so the database itself decides, row by row, what an event may change: no
read before a write, no race between two appliers, the same graph in any order. On
PostgreSQL ``ON CONFLICT DO UPDATE`` locks the row it looked at (even when its ``WHERE``
says no), so two events writing the same dataset take their turns; the column edges of a
dataset are replaced after its upsert, under that lock. SQLite has one writer at a time.

Statements (:func:`statements`):

- ``event``: the applied-once ledger, ``ON CONFLICT DO NOTHING RETURNING`` (no row: seen
  before; a RETURNING row rather than the rowcount, which psycopg leaves at -1 here).
- ``job``, ``run``, ``edge``: status, start/end/outcome, job name per newest event.
- ``source_input``: a source a job read, with that run's status (status events only).
- ``named``: a dataset only named (a lake table read, any dataset of an OTHER event).
- ``output_seen`` / ``output_written``: a dataset a job is writing / wrote (COMPLETE).
- ``columns_clear``, ``columns_add``: a (target, job)'s column edges, replaced.

Every dataset statement also takes a better description of the dataset than the one kept
(:func:`_becomes_lake_table`, :func:`_file_label`), so the first event to name a dataset
does not fix its layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Executable, and_, bindparam, case, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from flowforge_lineage.graph.models import (
    LineageColumnEdge,
    LineageDataset,
    LineageEdge,
    LineageEvent,
    LineageJob,
    LineageRun,
)

# A writer named by an event other than COMPLETE keeps "~" + the event's key: "~" sorts
# after every character of a key, so any COMPLETE's written key outranks it.
SEEN = "~"
DATASET_KEYS = ["namespace", "name"]
DATASET_COLUMNS = [c.name for c in LineageDataset.__table__.columns]


@dataclass(frozen=True)
class Statements:
    event: Executable
    job: Executable
    run: Executable
    edge: Executable
    source_input: Executable
    named: Executable
    output_seen: Executable
    output_written: Executable
    columns_clear: Executable
    columns_add: Executable


def dataset_row(namespace: str, name: str, **values: Any) -> dict[str, Any]:
    """Parameters of a dataset statement: every column (executemany wants the same keys)."""
    return {**dict.fromkeys(DATASET_COLUMNS), "namespace": namespace, "name": name, **values}


@cache
def statements(dialect: str) -> Statements:
    """The statements for ``dialect`` (``sqlite`` or ``postgresql``), built once."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return Statements(
        event=insert(LineageEvent)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(LineageEvent.event_id),
        job=_job(insert),
        run=_run(insert),
        edge=_edge(insert),
        source_input=_source_input(insert),
        named=_named(insert),
        output_seen=_output_seen(insert),
        output_written=_output_written(insert),
        **_columns(insert),
    )


def _newer(new, old, key: str):
    return new[key] > old[key]


def _nullable_newer(new, old, key: str):
    """The event carries the value (its key is given) and no newer event set it."""
    return and_(new[key].is_not(None), or_(old[key].is_(None), new[key] > old[key]))


def _take(when, new, old, *columns: str) -> dict[str, Any]:
    return {column: case((when, new[column]), else_=old[column]) for column in columns}


def _job(insert):
    statement = insert(LineageJob)
    new, old = statement.excluded, LineageJob.__table__.c
    columns = [c.name for c in LineageJob.__table__.columns if c.name != "job_id"]
    return statement.on_conflict_do_update(
        index_elements=["job_id"],
        set_={column: new[column] for column in columns},
        where=_newer(new, old, "status_key"),
    )


def _run(insert):
    statement = insert(LineageRun)
    new, old = statement.excluded, LineageRun.__table__.c
    newer = _newer(new, old, "status_key")
    earlier = and_(
        new.started_at.is_not(None),
        or_(old.started_at.is_(None), new.started_at < old.started_at),
    )
    return statement.on_conflict_do_update(
        index_elements=["run_id"],
        set_={
            **_take(newer, new, old, "status", "ended_at", "error_message", "status_key"),
            **_take(earlier, new, old, "started_at"),
        },
        where=or_(newer, earlier),
    )


def _edge(insert):
    statement = insert(LineageEdge)
    new, old = statement.excluded, LineageEdge.__table__.c
    return statement.on_conflict_do_update(
        index_elements=[c.name for c in LineageEdge.__table__.primary_key],
        set_={column: new[column] for column in ("job_name", "workflow_id", "seen_key")},
        where=_newer(new, old, "seen_key"),
    )


def _becomes_lake_table(new, old):
    """Named before without FlowForge's facet (by another producer), now a lake table: what
    was told of it as a source is dropped, as if this event had named it first."""
    return and_(old.alias.is_(None), new.alias.is_not(None))


def _file_label(new, old):
    """A file's label (its file name, from ``flowforge_file``) over its bare name."""
    return and_(
        old.alias.is_(None),
        new.alias.is_(None),
        new.label != new.name,
        old.label == old.name,
    )


def _dataset_upsert(insert, *changes: tuple[Any, tuple[str, ...]]):
    """``changes``: (condition of ``(new, old)``, the columns it lets the event set)."""
    statement = insert(LineageDataset)
    new, old = statement.excluded, LineageDataset.__table__.c
    renamed = _becomes_lake_table(new, old)
    whens: dict[str, list] = {c: [renamed] for c in DATASET_COLUMNS if c not in DATASET_KEYS}
    whens["label"].append(_file_label(new, old))
    # A lake table takes state only from events that name it as one (another producer
    # naming its location bare does not write it), whatever came first.
    as_known = or_(old.alias.is_(None), new.alias.is_not(None))
    for condition, columns in changes:
        when = and_(as_known, condition(new, old))
        for column in columns:
            whens[column].append(when)
    conditions = list({id(w): w for column in whens.values() for w in column}.values())
    return statement.on_conflict_do_update(
        index_elements=DATASET_KEYS,
        set_={c: case((or_(*w), new[c]), else_=old[c]) for c, w in whens.items()},
        where=or_(*conditions),
    )


def _is_source(old):
    return old.layer == "source"


def _source_input(insert):
    return _dataset_upsert(
        insert,
        (
            lambda new, old: and_(_is_source(old), _newer(new, old, "state_key")),
            ("status", "last_updated", "state_key"),
        ),
        (
            lambda new, old: and_(_is_source(old), _nullable_newer(new, old, "count_key")),
            ("row_count", "count_key"),
        ),
        (
            lambda new, old: and_(_is_source(old), _nullable_newer(new, old, "schema_key")),
            ("schema_json", "schema_key"),
        ),
    )


def _named(insert):
    return _dataset_upsert(insert)


def _first_writer(new, old):
    """No writer yet, or one named (not by a COMPLETE) by an event newer than this one."""
    return or_(
        old.producer_job_id.is_(None),
        and_(old.writer_key.startswith(SEEN), new.writer_key < old.writer_key),
    )


_WRITER = ("producer_job_id", "workflow_id", "writer_key")


def _output_seen(insert):
    return _dataset_upsert(insert, (_first_writer, _WRITER))


def _output_written(insert):
    return _dataset_upsert(
        insert,
        (
            lambda new, old: _newer(new, old, "state_key"),
            ("version", "last_updated", "state_key"),
        ),
        (
            lambda new, old: or_(_newer(new, old, "state_key"), old.producer_job_id.is_(None)),
            _WRITER,
        ),
        (lambda new, old: _nullable_newer(new, old, "count_key"), ("row_count", "count_key")),
        (
            lambda new, old: _nullable_newer(new, old, "schema_key"),
            ("schema_json", "schema_key"),
        ),
    )


def _columns(insert) -> dict[str, Executable]:
    """A (target, job)'s column edges: those older than the event go, the event's go in
    unless a newer event's are there (``INSERT ... SELECT ... WHERE NOT EXISTS``)."""
    table = LineageColumnEdge.__table__
    c = table.c
    mine = (
        c.target_namespace == bindparam("target_namespace"),
        c.target_name == bindparam("target_name"),
        c.job_id == bindparam("job_id"),
    )
    newer = select(c.seen_key).where(*mine, c.seen_key > bindparam("seen_key")).exists()
    values = select(*[bindparam(column.name, type_=column.type) for column in table.columns])
    return {
        "columns_clear": delete(table).where(*mine, c.seen_key < bindparam("seen_key")),
        "columns_add": insert(table)
        .from_select([column.name for column in table.columns], values.where(~newer))
        .on_conflict_do_nothing(),
    }
