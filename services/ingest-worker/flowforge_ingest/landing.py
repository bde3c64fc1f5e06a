"""Getting a landing-area file to a local path the CSV reader can stream.

Locally the landing area is a directory and the file is read in place. On S3 the object at
``<storage root>/landing/<filePath>`` is streamed to a temporary file first (bounded memory).
Either way the path first passes the job contract's rule
(:mod:`flowforge_shared.contracts.landing`): nothing outside the landing area can be named.
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
from flowforge_shared.contracts.landing import landing_path_problem, shown
from flowforge_shared.objectstore import landing_path
from flowforge_shared.settings import Settings

COPY_CHUNK = 8 * 1024 * 1024


@contextmanager
def local_copy(settings: Settings, file_path: str) -> Iterator[Path]:
    root = settings.landing_root
    if not root.startswith("s3://"):
        yield resolve_landing_path(Path(root), file_path)  # the rule, links, regular files
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
    """``file_path`` as a key under the landing prefix, after the job contract's own rule
    (a job saved before the contract checked it is refused here, not read)."""
    problem = landing_path_problem(file_path)
    if problem is not None:
        raise LandingPathError(f"fileConfig.filePath {shown(file_path)} {problem}")
    return posixpath.normpath(file_path)
