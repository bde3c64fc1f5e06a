"""Getting a landing-area file to a local path the CSV reader can stream.

Locally the landing area is a directory and the file is read in place. On S3 the object at
``<storage root>/landing/<filePath>`` is streamed to a temporary file first (bounded memory),
after the same path checks: nothing outside the landing area can be named.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flowforge_ingest.csv_source import resolve_landing_path
from flowforge_ingest.errors import LandingPathError
from flowforge_shared.objectstore import landing_path
from flowforge_shared.settings import Settings

COPY_CHUNK = 8 * 1024 * 1024


@contextmanager
def local_copy(settings: Settings, file_path: str) -> Iterator[Path]:
    root = settings.landing_root
    if not root.startswith("s3://"):
        yield resolve_landing_path(Path(root), file_path)
        return
    key = safe_key(file_path)
    filesystem, source = landing_path(settings, key)
    with tempfile.TemporaryDirectory(prefix="flowforge-landing-") as directory:
        target = Path(directory) / Path(key).name
        try:
            with filesystem.open_input_stream(source) as stream, open(target, "wb") as out:
                shutil.copyfileobj(stream, out, COPY_CHUNK)
        except FileNotFoundError as error:
            raise LandingPathError(
                f"file {file_path!r} is not in the landing area ({root})"
            ) from error
        yield target


def safe_key(file_path: str) -> str:
    if "\x00" in file_path or file_path.startswith(("/", "\\")) or "://" in file_path:
        raise LandingPathError(f"filePath {file_path!r} must be relative to the landing area")
    normalised = posixpath.normpath(file_path.replace("\\", "/"))
    if normalised.startswith("..") or normalised in (".", ""):
        raise LandingPathError(f"filePath {file_path!r} leaves the landing area")
    return normalised
