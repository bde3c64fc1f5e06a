"""Uploaded files: record, list, detect their schema, preview, delete.

Files live in the landing area under a generated name (``uploads/<id>.csv``); the name the
user gave is metadata only, so no upload can choose where it lands.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_catalog.files.detection import (
    DetectionError,
    LocalFileSource,
    ai_settings_from_env,
    detect,
    read_preview,
)
from flowforge_catalog.files.models import UploadedFile
from flowforge_catalog.files.schemas import FilePreview, FilePublic
from flowforge_catalog.files.upload import Received
from flowforge_catalog.jobs.models import Job
from flowforge_shared import audit
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound, Unprocessable
from flowforge_shared.objectstore import landing_path
from flowforge_shared.settings import Settings

ENTITY = "file"
# Part of the key a detection is kept under: bump it when detection answers differently for
# the same file (a fix), so answers kept from before are computed again.
_DETECTION_VERSION = "@3"  # @3: strict dates, emptyFields, one type inference


def to_public(file: UploadedFile) -> FilePublic:
    return FilePublic(
        id=file.id,
        original_name=file.original_name,
        file_path=file.path,
        size=file.size,
        sha256=file.sha256,
        content_type=file.content_type,
        uploaded_by=file.uploaded_by,
        created_at=file.created_at,
    )


def create(
    session: Session, *, file_id: str, path: str, received: Received, actor: str
) -> UploadedFile:
    """Record a file that is already stored at ``path``."""
    file = UploadedFile(
        id=file_id,
        original_name=received.original_name,
        path=path,
        size=received.size,
        sha256=received.sha256,
        content_type=received.content_type,
        uploaded_by=actor,
        created_at=utcnow(),
    )
    session.add(file)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="file.upload",
        entity_type=ENTITY,
        entity_id=file.id,
        after=to_public(file).model_dump(mode="json", by_alias=True),
    )
    return file


def get_or_raise(session: Session, *, file_id: str) -> UploadedFile:
    file = session.get(UploadedFile, file_id)
    if file is None:
        raise NotFound(f"file {file_id} not found")
    return file


def get_all(session: Session) -> list[UploadedFile]:
    """Newest first."""
    return list(session.scalars(select(UploadedFile).order_by(UploadedFile.created_at.desc())))


def referring_jobs(session: Session, file_id: str) -> list[Job]:
    return [
        job
        for job in session.scalars(select(Job))
        if (job.config.get("sourceConfig", {}).get("fileConfig") or {}).get("fileId") == file_id
    ]


def delete(session: Session, *, file: UploadedFile, settings: Settings, actor: str) -> None:
    """Delete the file and its record, unless a job still reads it."""
    jobs = referring_jobs(session, file.id)
    if jobs:
        names = ", ".join(sorted(job.name for job in jobs))
        raise Conflict(f"file {file.original_name} is used by job(s) {names}; change them first")
    before = to_public(file).model_dump(mode="json", by_alias=True)
    session.delete(file)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="file.delete",
        entity_type=ENTITY,
        entity_id=file.id,
        before=before,
    )
    filesystem, location = landing_path(settings, file.path)
    try:
        filesystem.delete_file(location)
    except FileNotFoundError:
        pass


class LandingSource:
    """A stored file as the detector samples it (random access, local or S3)."""

    def __init__(self, settings: Settings, path: str) -> None:
        filesystem, location = landing_path(settings, path)
        self._file = filesystem.open_input_file(location)
        self.size = self._file.size()

    def read_range(self, offset: int, length: int) -> bytes:
        return self._file.read_at(length, offset)

    def close(self) -> None:
        self._file.close()


def detection(
    session: Session, *, file: UploadedFile, settings: Settings, allow_sample_values: bool = False
) -> dict[str, Any]:
    """The file's detected schema (wire form), computed once per privacy mode and kept."""
    key = ("withSampleValues" if allow_sample_values else "default") + _DETECTION_VERSION
    cached = (file.detection or {}).get(key)
    if cached is not None:
        return cached
    source = _source(settings, file)
    try:
        result = detect(
            source,
            sample_bytes=settings.detection_sample_bytes,
            ai=ai_settings_from_env(),
            allow_sample_values=allow_sample_values,
        )
    except DetectionError as error:
        raise Unprocessable([(("file",), str(error))]) from error
    finally:
        _close(source)
    wire = result.model_dump(mode="json", by_alias=True)
    kept = {k: v for k, v in (file.detection or {}).items() if k.endswith(_DETECTION_VERSION)}
    file.detection = {**kept, key: wire}
    session.flush()
    return wire


def file_preview(
    session: Session, *, file: UploadedFile, settings: Settings, rows: int
) -> FilePreview:
    from flowforge_catalog.files.detection import Detection

    detected = Detection.model_validate(detection(session, file=file, settings=settings))
    source = _source(settings, file)
    try:
        parsed = read_preview(source, detected, rows=rows)
    except DetectionError as error:
        raise Unprocessable([(("file",), str(error))]) from error
    finally:
        _close(source)
    return FilePreview(
        columns=[column.name for column in detected.columns],
        rows=parsed.rows,
        warnings=parsed.warnings,
    )


def _source(settings: Settings, file: UploadedFile):
    if settings.landing_root.startswith("s3://"):
        return LandingSource(settings, file.path)
    _, location = landing_path(settings, file.path)
    return LocalFileSource(location)


def _close(source) -> None:
    close = getattr(source, "close", None)
    if close:
        close()


def complete_job_config(session: Session, settings: Settings, config):
    """A CSV job reading an uploaded file gets the file's detected dialect and column types
    as its defaults; anything the job sets itself (a column's name or type) wins."""
    from flowforge_catalog.files.detection import Detection, to_file_config
    from flowforge_shared.contracts.jobs import CsvSource, JobConfig

    source = config.source_config
    if not isinstance(source, CsvSource) or source.file_config.file_id is None:
        return config
    file = session.get(UploadedFile, source.file_config.file_id)
    if file is None:
        raise Unprocessable(
            [
                (
                    ("sourceConfig", "fileConfig", "fileId"),
                    f"no uploaded file {source.file_config.file_id}",
                )
            ]
        )
    detected = to_file_config(
        Detection.model_validate(detection(session, file=file, settings=settings))
    )
    given = source.file_config.to_wire()
    merged = {**detected, **given}
    overrides = {column["name"]: column for column in given.get("columns", [])}
    if detected.get("columns") is not None:
        merged["columns"] = [
            overrides.pop(column["name"], column) for column in detected["columns"]
        ] + list(overrides.values())
    wire = config.to_wire()
    wire["sourceConfig"]["fileConfig"] = merged
    return JobConfig.model_validate(wire)
