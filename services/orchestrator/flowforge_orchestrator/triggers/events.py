"""Event triggers: a file arriving in the landing area starts a run that reads it.

Each scheduler pass (:func:`poll`) lists, for every enabled event trigger, the files under
its ``prefix`` — locally with the landing directory, on S3 under ``<storage root>/landing``,
both through the one ``pyarrow.fs`` filesystem uploads and ingest use
(:func:`flowforge_shared.objectstore.landing_filesystem`) — and records one ``pending``
firing per new file (:func:`arrivals` says which count). The scheduler then settles it like
any firing: the catalog's ``REQUEST_RUN`` names the file, and the receiving CSV job's
snapshot reads it (``fileConfig.filePath``).

A trigger is listed at most every ``pollSeconds`` (its ``next_fire_at`` says when next: for
an event trigger it is the next listing, not a firing time).

Exactly once: a file's firing is keyed by its path, size and modification time
(``unique(trigger_id, firing_key)``): found again by the next pass, or by another scheduler,
it records nothing. On PostgreSQL the trigger's row is locked ``FOR UPDATE SKIP LOCKED``
while its files are listed and recorded, so two schedulers never list one trigger at the
same time; the unique key refuses a second record whatever happens. A file rewritten with
other content (another size or time) is a new arrival and fires again; the same bytes
copied again with the same time do not.

Settling: a file counts once its last change is ``settleSeconds`` old (by the scheduler's
clock), so a file still being written — its time moving — is not read half-written.
Files changed before the trigger was created, enabled again or had its settings changed
(``watch_from``) do not fire unless ``includeExisting``. Hidden files (a name starting with
``.``, as many tools name a file while they write it) never fire.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowforge_orchestrator.triggers.models import Trigger, TriggerFiring
from flowforge_orchestrator.triggers.schemas import TriggerKind
from flowforge_shared.contracts.landing import landing_path_problem
from flowforge_shared.db.engine import Database
from flowforge_shared.objectstore import landing_filesystem
from flowforge_shared.settings import Settings

log = logging.getLogger("flowforge.scheduler")

FILES_PER_PASS = 500  # new files recorded per trigger and pass; more: the next pass
# Open (pending or queued) firings of one trigger at most: more files wait in the folder,
# recorded as earlier ones start, rather than being skipped "queue full" (the scheduler's
# EVENT_QUEUE_LIMIT is this, so a file is never dropped for want of room).
MAX_WAITING = 1000
KEY_CHUNK = 500
TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class LandingFile:
    path: str  # relative to the landing area, as fileConfig.filePath names it
    size: int
    modified: datetime  # UTC

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


def list_files(settings: Settings, prefix: str, *, recursive: bool) -> list[LandingFile]:
    """The files under ``prefix`` of the landing area (an absent folder: none)."""
    from pyarrow import fs  # imported when an event trigger is first listed, not at start

    filesystem, root = landing_filesystem(settings)
    root = root.rstrip("/")
    base = posixpath.join(root, prefix).rstrip("/") if prefix else root
    selector = fs.FileSelector(base, allow_not_found=True, recursive=recursive)
    found = []
    for info in filesystem.get_file_info(selector):
        if info.type != fs.FileType.File or not info.path.startswith(root + "/"):
            continue
        modified = info.mtime
        if modified is None:
            continue
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        found.append(LandingFile(info.path[len(root) + 1 :], int(info.size or 0), modified))
    return found


def arrivals(
    files: Iterable[LandingFile],
    *,
    pattern: str,
    watch_from: datetime,
    include_existing: bool,
    settle: timedelta,
    now: datetime,
) -> list[LandingFile]:
    """The files that count as arrived now, oldest first: the name matches ``pattern``
    (case-sensitive glob), not hidden, a path a job may read, unchanged for ``settle``, and
    changed at or after ``watch_from`` (unless ``include_existing``). S3 keeps times to the
    second: ``watch_from`` is compared cut to its second, so an upload in the very second the
    trigger was created counts."""
    since = watch_from.replace(microsecond=0)
    chosen = [
        file
        for file in files
        if fnmatch.fnmatchcase(file.name, pattern)
        and not file.name.startswith(".")
        and landing_path_problem(file.path) is None
        and now - file.modified >= settle
        and (include_existing or file.modified >= since)
    ]
    return sorted(chosen, key=lambda file: (file.modified, file.path))


def firing_key(file: LandingFile) -> str:
    """What makes an arrival one: path, size and modification time (hashed: paths are long)."""
    identity = f"{file.path}\0{file.size}\0{file.modified.isoformat()}"
    return "file:" + hashlib.sha256(identity.encode("utf-8")).hexdigest()


def _due(now: datetime):
    return (
        Trigger.kind == TriggerKind.EVENT.value,
        Trigger.enabled.is_(True),
        Trigger.next_fire_at.is_(None) | (Trigger.next_fire_at <= now),
    )


def _locked(session: Session, trigger_id: str, now: datetime) -> Trigger | None:
    statement = select(Trigger).where(Trigger.id == trigger_id, *_due(now))
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    return session.scalar(statement)


def record(session: Session, trigger: Trigger, files: list[LandingFile], *, now: datetime) -> int:
    """Record a ``pending`` firing for each of ``files`` no firing of the trigger is keyed
    by yet, oldest first, while fewer than :data:`MAX_WAITING` of its firings are open (the
    caller holds the trigger's row and commits); returns how many."""
    keyed = {firing_key(file): file for file in files}
    known: set[str] = set()
    keys = list(keyed)
    for start in range(0, len(keys), KEY_CHUNK):
        known.update(
            session.scalars(
                select(TriggerFiring.firing_key).where(
                    TriggerFiring.trigger_id == trigger.id,
                    TriggerFiring.firing_key.in_(keys[start : start + KEY_CHUNK]),
                )
            )
        )
    waiting = session.scalar(
        select(func.count())
        .select_from(TriggerFiring)
        .where(
            TriggerFiring.trigger_id == trigger.id,
            TriggerFiring.outcome.in_(("pending", "queued")),
        )
    )
    room = min(FILES_PER_PASS, max(0, MAX_WAITING - waiting))
    new = [(key, file) for key, file in keyed.items() if key not in known][:room]
    if not new:
        return 0
    # fire_time is unique per trigger too: one microsecond apart, after the trigger's last.
    last = session.scalar(
        select(func.max(TriggerFiring.fire_time)).where(TriggerFiring.trigger_id == trigger.id)
    )
    time = now if last is None or last < now else last + TICK
    job_id = trigger.settings.get("jobId")
    for key, file in new:
        session.add(
            TriggerFiring(
                trigger_id=trigger.id,
                workflow_id=trigger.workflow_id,
                fire_time=time,
                outcome="pending",
                reason=f"file {file.path} arrived ({file.size} bytes)",
                firing_key=key,
                cause={
                    "file": {
                        "path": file.path,
                        "size": file.size,
                        "modified": file.modified.isoformat(),
                        "jobId": job_id,
                    }
                },
            )
        )
        time += TICK
    session.flush()
    return len(new)


def poll_trigger(database: Database, settings: Settings, trigger_id: str, *, now: datetime) -> int:
    """List one event trigger's prefix and record its new files; 0 when another scheduler
    holds it or has just listed it, or it is no longer an enabled event trigger. Its
    ``next_fire_at`` is when it is next listed (``pollSeconds`` from now)."""
    with database.session() as session:
        trigger = _locked(session, trigger_id, now)
        if trigger is None:
            return 0
        options = trigger.settings
        trigger.next_fire_at = now + timedelta(seconds=int(options.get("pollSeconds", 5)))
        files = list_files(
            settings, options.get("prefix", ""), recursive=options.get("recursive", False)
        )
        arrived = arrivals(
            files,
            pattern=options.get("pattern", "*"),
            watch_from=trigger.watch_from or trigger.created_at,
            include_existing=bool(options.get("includeExisting", False)),
            settle=timedelta(seconds=int(options.get("settleSeconds", 10))),
            now=now,
        )
        return record(session, trigger, arrived, now=now)


def poll(database: Database, settings: Settings, *, now: datetime) -> int:
    """Every enabled event trigger's new files become firings; returns how many. A trigger
    whose folder cannot be listed (S3 down, no permission) is logged and tried next pass."""
    with database.session() as session:
        trigger_ids = list(
            session.scalars(
                select(Trigger.id).where(*_due(now)).order_by(Trigger.created_at, Trigger.id)
            )
        )
    recorded = 0
    for trigger_id in trigger_ids:
        try:
            recorded += poll_trigger(database, settings, trigger_id, now=now)
        except IntegrityError:  # recorded meanwhile (a bug if it happens): next pass
            log.warning("event trigger %s: a file was recorded already; next pass", trigger_id)
        except (OSError, ValueError) as error:  # pyarrow raises OSError for S3 and disk errors
            log.warning("event trigger %s: cannot list its files (%s)", trigger_id, error)
    return recorded
