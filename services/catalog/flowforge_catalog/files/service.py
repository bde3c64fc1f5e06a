"""Uploaded files: record, list, detect their schema, preview, delete.

Files live in the landing area under a generated name (``uploads/<id>.csv``); the name the
user gave is metadata only, so no upload can choose where it lands.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flowforge_catalog.audit import service as audit
from flowforge_catalog.files.models import UploadedFile
from flowforge_catalog.files.schemas import FilePreview, FilePublic
from flowforge_catalog.files.upload import Received
from flowforge_catalog.jobs.models import Job
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound, Unprocessable
from flowforge_shared.objectstore import landing_path
from flowforge_shared.settings import Settings

ENTITY = "file"
# Part of the key a detection is kept under: bump it when detection answers differently for
# the same file (a fix), so answers kept from before are computed again.
_DETECTION_VERSION = (
    "@4"  # @3: strict dates, emptyFields, one type inference; @4: skipRows, commentChar
)


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
        version=file.version or 1,
    )


def create(
    session: Session, *, file_id: str, path: str, received: Received, actor: str
) -> UploadedFile:
    """Record a file that is already stored at ``path``: the next version of its name."""
    previous = session.scalar(
        select(func.max(UploadedFile.version)).where(
            UploadedFile.original_name == received.original_name
        )
    )
    file = UploadedFile(
        version=(previous or 0) + 1,
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


def get_all(session: Session, *, name: str | None = None) -> list[UploadedFile]:
    """Newest first; with ``name``, the versions of that original name."""
    query = select(UploadedFile)
    if name is not None:
        query = query.where(UploadedFile.original_name == name)
    return list(
        session.scalars(query.order_by(UploadedFile.created_at.desc(), UploadedFile.version.desc()))
    )


def newest(session: Session, name: str, version: int | None = None) -> UploadedFile | None:
    """The newest upload of ``name`` (highest version), or that ``version`` of it."""
    query = select(UploadedFile).where(UploadedFile.original_name == name)
    if version is not None:
        query = query.where(UploadedFile.version == version)
    return session.scalars(query.order_by(UploadedFile.version.desc()).limit(1)).first()


def followed_file(session: Session, file_config: dict) -> UploadedFile | None:
    """The upload a CSV job's fileConfig (wire form) names now: its fileId, or the newest
    (or pinned) version of its fileName. None when there is none (or it names a path)."""
    if file_config.get("fileId"):
        return session.get(UploadedFile, file_config["fileId"])
    if file_config.get("fileName"):
        version = file_config.get("fileVersion", "latest")
        return newest(session, file_config["fileName"], None if version == "latest" else version)
    return None


def referring_jobs(session: Session, file_id: str) -> list[Job]:
    """The jobs that read this upload: by fileId, or by fileName when it is the version they
    follow now (deleting an older version leaves them the newest)."""
    jobs = []
    for job in session.scalars(select(Job)):
        file_config = job.config.get("sourceConfig", {}).get("fileConfig") or {}
        if file_config.get("fileId") == file_id:
            jobs.append(job)
        elif file_config.get("fileName"):
            followed = followed_file(session, file_config)
            if followed is not None and followed.id == file_id:
                jobs.append(job)
    return jobs


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


def _detection_key(allow_sample_values: bool) -> str:
    return ("withSampleValues" if allow_sample_values else "default") + _DETECTION_VERSION


def kept_detection(file: UploadedFile, allow_sample_values: bool = False) -> dict | None:
    """The file's detection already kept for this privacy mode, or None: then
    :func:`detection` has to detect, which can take seconds (a sample read from S3; the
    AI's answer, up to its timeout twice), and a route with nothing else to write closes its
    session first, so it holds neither a transaction nor its turn at the API's database
    (``flowforge_shared.deps.get_session``)."""
    return (file.detection or {}).get(_detection_key(allow_sample_values))


def detection(
    session: Session, *, file: UploadedFile, settings: Settings, allow_sample_values: bool = False
) -> dict[str, Any]:
    """The file's detected schema (wire form), computed once per privacy mode and kept (on
    the file as the session reads it then: ``file`` may be one the caller's session held
    before it closed it, see :func:`kept_detection`)."""
    # Detection (Arrow, the CSV rules) is imported when a file is first detected, not with
    # the API: the server at rest does not hold it (bench/bench_api.py, RSS at rest).
    from flowforge_catalog.files.detection import DetectionError, ai_settings_from_env, detect

    cached = kept_detection(file, allow_sample_values)
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
    current = get_or_raise(session, file_id=file.id)  # deleted meanwhile: 404
    detections = current.detection or {}
    kept = {k: v for k, v in detections.items() if k.endswith(_DETECTION_VERSION)}
    current.detection = {**kept, _detection_key(allow_sample_values): wire}
    session.flush()
    return wire


def file_preview(
    session: Session, *, file: UploadedFile, settings: Settings, rows: int
) -> FilePreview:
    from flowforge_catalog.files.detection import Detection, DetectionError, read_preview

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
    from flowforge_catalog.files.detection import LocalFileSource

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
    if not isinstance(source, CsvSource):
        return config
    if source.file_config.file_id is None and source.file_config.file_name is None:
        return config
    file = followed_file(session, source.file_config.to_wire())
    if file is None and source.file_config.file_id is not None:
        raise Unprocessable(
            [
                (
                    ("sourceConfig", "fileConfig", "fileId"),
                    f"no uploaded file {source.file_config.file_id}",
                )
            ]
        )
    if file is None:
        version, name = source.file_config.file_version, source.file_config.file_name
        message = (
            f"no upload is named {name!r}: upload it first (POST /api/files)"
            if version == "latest"
            else f"there is no version {version} of the upload {name!r}"
        )
        raise Unprocessable([(("sourceConfig", "fileConfig", "fileName"), message)])
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
    _check_skip_rows(settings, file, merged)
    wire = config.to_wire()
    wire["sourceConfig"]["fileConfig"] = merged
    return JobConfig.model_validate(wire)


def _check_skip_rows(settings: Settings, file: UploadedFile, file_config: dict) -> None:
    """Refuse a ``skipRows`` that leaves nothing of the file: the load would find no header
    and no rows, and the job would fail at its first run instead of now."""
    skip_rows = file_config.get("skipRows") or 0
    if not skip_rows:
        return
    lines = _count_lines(settings, file, file_config.get("encoding") or "utf-8", skip_rows + 1)
    if lines <= skip_rows:
        raise Unprocessable(
            [
                (
                    ("sourceConfig", "fileConfig", "skipRows"),
                    f"skipRows is {skip_rows}, but the file {file.original_name!r} has "
                    f"{lines} lines: nothing would be left to read. Lower skipRows",
                )
            ]
        )


def _count_lines(settings: Settings, file: UploadedFile, encoding: str, enough: int) -> int:
    """The file's physical lines (as :func:`flowforge_shared.csv_rules.table_lines` counts
    them), counting no further than ``enough``."""
    import codecs
    import re

    breaks = re.compile(r"\r\n|\n|\r")
    source = _source(settings, file)
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        lines, offset, last, tail = 0, 0, "", ""
        while offset < source.size and lines < enough:
            data = source.read_range(offset, min(1 << 20, source.size - offset))
            offset += len(data)
            text = last + decoder.decode(data, final=offset >= source.size)
            # A \r at the end may be the first half of \r\n: count it with the next read.
            last = text[-1] if text.endswith("\r") and offset < source.size else ""
            text = text[: len(text) - len(last)]
            lines += len(breaks.findall(text))
            tail = text
        if lines < enough and tail and tail[-1] not in "\r\n":
            lines += 1  # a last line without a line break
        return lines
    finally:
        _close(source)


def resolve_for_run(
    session: Session, job_name: str, config: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A CSV job's snapshot for a run, naming the exact upload it will read, and that file
    (id, name, version, sha256, size, path) for the job run's record. A job that follows
    ``fileName`` reads the newest version when the run starts; uploads are never changed in
    place (each is stored under its own generated name), so id and sha256 say what was read.
    A landing path (``filePath``) is recorded by path."""
    file_config = (config.get("sourceConfig") or {}).get("fileConfig")
    if not file_config:
        return config, []
    if file_config.get("filePath"):
        return config, [{"filePath": file_config["filePath"]}]
    file = followed_file(session, file_config)
    if file is None:
        wanted = file_config.get("fileId") or file_config.get("fileName")
        raise Unprocessable(
            [(("jobs", job_name, "sourceConfig", "fileConfig"), f"no uploaded file {wanted}")]
        )
    resolved = {
        key: value for key, value in file_config.items() if key not in ("fileName", "fileVersion")
    }
    resolved["fileId"] = file.id
    snapshot = {**config, "sourceConfig": {**config["sourceConfig"], "fileConfig": resolved}}
    record = {
        "fileId": file.id,
        "fileName": file.original_name,
        "version": file.version or 1,
        "sha256": file.sha256,
        "size": file.size,
        "filePath": file.path,
    }
    if file_config.get("fileName"):
        record["followed"] = {
            "fileName": file_config["fileName"],
            "fileVersion": file_config.get("fileVersion", "latest"),
        }
    return snapshot, [record]
