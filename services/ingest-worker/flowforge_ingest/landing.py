"""Getting a landing-area file to a local copy the CSV reader can stream, and saying exactly
which bytes that copy holds.

The file (a local path, or the object at ``<storage root>/landing/<filePath>`` on S3) is
streamed once to a private temporary file, and its sha256 and size are computed from the very
bytes written there. The reader then only reads that copy, so the digest a run records is the
digest of what it read, even when the landing file is replaced while the run goes on (the CSV
reader opens its input more than once; reading the landing file in place could mix two
versions). Before anything is opened the path passes the job contract's rule
(:mod:`flowforge_shared.contracts.landing`): nothing outside the landing area can be named.
"""

from __future__ import annotations

import hashlib
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flowforge_ingest.csv_source import resolve_landing_path
from flowforge_ingest.errors import LandingPathError
from flowforge_shared.contracts.landing import landing_path_problem, shown
from flowforge_shared.objectstore import landing_path
from flowforge_shared.settings import Settings

COPY_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class StagedFile:
    """The private copy a job reads, and the digest and size of its bytes."""

    path: Path
    sha256: str
    size: int


@contextmanager
def local_copy(settings: Settings, file_path: str) -> Iterator[StagedFile]:
    root = settings.landing_root
    with tempfile.TemporaryDirectory(prefix="flowforge-landing-") as directory:
        try:
            if root.startswith("s3://"):
                key = safe_key(file_path)
                filesystem, location = landing_path(settings, key)
                target = Path(directory) / Path(key).name
                with filesystem.open_input_stream(location) as stream:
                    staged = _copied(stream, target)
            else:
                source = resolve_landing_path(Path(root), file_path)  # rule, links, regular
                with open(source, "rb") as stream:
                    staged = _copied(stream, Path(directory) / source.name)
        except FileNotFoundError as error:  # absent, or removed between check and open
            raise LandingPathError(
                f"file {file_path!r} is not in the landing area ({root})"
            ) from error
        yield staged


def _copied(stream: BinaryIO, target: Path) -> StagedFile:
    """Copy ``stream`` to ``target``, hashing each chunk as it is written."""
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as out:
        while chunk := stream.read(COPY_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return StagedFile(path=target, sha256=digest.hexdigest(), size=size)


def safe_key(file_path: str) -> str:
    """``file_path`` as a key under the landing prefix, after the job contract's own rule
    (a job saved before the contract checked it is refused here, not read)."""
    problem = landing_path_problem(file_path)
    if problem is not None:
        raise LandingPathError(f"fileConfig.filePath {shown(file_path)} {problem}")
    return posixpath.normpath(file_path)
