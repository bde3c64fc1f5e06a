"""Who writes and who reads a FlowForge table, across every workflow.

A table name is unique across the lake (a ``multi-table`` source names tables, not layers),
so a table has one owner: the one job that writes it. The only exception is a bronze table
both (all) of whose writers declare ``bronzeConfig.sharedAppend: true`` and append to it.
A job that other jobs read cannot be deleted (or stop writing that table) without
``force``; a job cannot read a table that no job writes and no catalog asset holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_catalog.jobs.models import Job
from flowforge_shared.contracts.jobs import JobConfig
from flowforge_shared.errors import Conflict

MISSING_INPUT = (
    "input table {name!r} does not exist in bronze, silver or gold: "
    "run the job that writes it first, or fix the table name"
)
"""The transform worker's words for a missing input (flowforge_transform.inputs)."""


@dataclass(frozen=True)
class Holder:
    """A job as the table rules see it."""

    job_id: str
    job_name: str
    workflow_id: str
    workflow_name: str
    config: JobConfig

    def describe(self) -> str:
        return (
            f"job {self.job_name!r} ({self.job_id}) of workflow "
            f"{self.workflow_name!r} ({self.workflow_id})"
        )


def all_jobs(session: Session) -> list[Holder]:
    """Every saved job with its workflow's name (configs that no longer parse are skipped)."""
    from flowforge_catalog.workflows.models import Workflow

    rows = session.execute(
        select(Job, Workflow.name).join(Workflow, Workflow.id == Job.workflow_id)
    ).all()
    holders = []
    for job, workflow_name in rows:
        try:
            config = JobConfig.model_validate({"name": job.name, **job.config})
        except ValueError:
            continue
        holders.append(Holder(job.id, job.name, job.workflow_id, workflow_name, config))
    return holders


def shared_append(config: JobConfig) -> bool:
    bronze = config.destination_config.bronze_config
    return bool(bronze and bronze.shared_append and bronze.write_mode == "append")


def owner_conflict(session: Session, *, job_id: str | None, config: JobConfig) -> None:
    """Conflict when another job writes the table this job would write."""
    destination = config.destination
    if destination is None:
        return
    table = destination[1]
    writers = [
        holder
        for holder in all_jobs(session)
        if holder.job_id != job_id
        and holder.config.destination
        and holder.config.destination[1] == table
    ]
    if not writers:
        return
    if shared_append(config) and all(shared_append(writer.config) for writer in writers):
        return
    owner = writers[0]
    raise Conflict(
        f"table {table!r} is already written by {owner.describe()}: a table has one owner "
        "job. Give this job another tableName, or, for a bronze table several jobs append "
        "to, set bronzeConfig.sharedAppend: true (and writeMode append) on every job that "
        "writes it"
    )


def missing_inputs(session: Session, *, job_id: str | None, config: JobConfig, siblings=()):
    """(field path, message) for each table the job reads that no job writes and no catalog
    asset holds. ``siblings`` are configs about to be saved with this one (a clone or a
    template), which count as writers."""
    from flowforge_catalog.assets.models import Asset

    if not config.input_tables:
        return []
    written = {
        holder.config.destination[1]
        for holder in all_jobs(session)
        if holder.job_id != job_id and holder.config.destination
    }
    written |= {other.destination[1] for other in siblings if other.destination}
    errors = []
    source = config.source_config
    paths: list[tuple[tuple[str | int, ...], str]] = []
    if getattr(source, "tables", None):
        paths += [(("sourceConfig", "tables", i), t) for i, t in enumerate(source.tables)]
    transformation = config.transformation_config
    for index, join in enumerate((transformation.joins if transformation else None) or []):
        paths.append((("transformationConfig", "joins", index, "table"), join.table))
    for path, name in paths:
        if name in written or session.get(Asset, name) is not None:
            continue
        errors.append((path, MISSING_INPUT.format(name=name)))
    return errors


def readers_of(session: Session, tables: set[str], *, excluding: set[str]) -> list[Holder]:
    """The jobs (other than ``excluding``) that read any of ``tables``."""
    return [
        holder
        for holder in all_jobs(session)
        if holder.job_id not in excluding and tables & set(holder.config.input_tables)
    ]


def other_writers(session: Session, table: str, *, excluding: set[str]) -> list[Holder]:
    return [
        holder
        for holder in all_jobs(session)
        if holder.job_id not in excluding
        and holder.config.destination
        and holder.config.destination[1] == table
    ]


def orphaned_readers(
    session: Session, *, tables: set[str], leaving: set[str]
) -> dict[str, list[Holder]]:
    """Per table that the jobs ``leaving`` write and no other job does: the other jobs that
    read it."""
    found: dict[str, list[Holder]] = {}
    for table in sorted(tables):
        if other_writers(session, table, excluding=leaving):
            continue
        readers = [h for h in readers_of(session, {table}, excluding=leaving)]
        if readers:
            found[table] = readers
    return found


def refuse_orphaning(
    session: Session, *, tables: set[str], leaving: set[str], what: str, force: bool
) -> dict[str, list[str]]:
    """Conflict listing the dependants, unless ``force``; returns them (for the audit)."""
    found = orphaned_readers(session, tables=tables, leaving=leaving)
    listed = {table: [h.describe() for h in readers] for table, readers in found.items()}
    if found and not force:
        parts = "; ".join(
            f"table {table!r} is read by {', '.join(r)}" for table, r in listed.items()
        )
        raise Conflict(
            f"{what}: {parts}. Change or delete those jobs first, or repeat with ?force=true "
            "(their runs will fail until another job writes the table)"
        )
    return listed


_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """A table-name suffix from a name: lower case, runs of other characters as one '_'."""
    return _SLUG.sub("_", text.lower()).strip("_") or "copy"


def free_table_name(taken: set[str], base: str, suffix: str) -> str:
    """``base_suffix`` (within the 128-character limit), numbered when that is taken."""
    number = 1
    while True:
        tail = f"_{suffix}" if number == 1 else f"_{suffix}_{number}"
        candidate = (base[: 128 - len(tail)] + tail) if len(base + tail) > 128 else base + tail
        if candidate not in taken:
            return candidate
        number += 1


def taken_table_names(session: Session) -> set[str]:
    """Every table a job writes or a catalog asset holds."""
    from flowforge_catalog.assets.models import Asset

    names = {h.config.destination[1] for h in all_jobs(session) if h.config.destination}
    names |= set(session.scalars(select(Asset.table_name)))
    return names
