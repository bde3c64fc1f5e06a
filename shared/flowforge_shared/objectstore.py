"""Files next to the lake: the landing area on the local disk or on S3, through one
``pyarrow.fs`` filesystem, so uploads, detection and ingest read and write it the same way."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from flowforge_shared.settings import Settings

if TYPE_CHECKING:  # imported where used: the API process at rest does not load Arrow
    from pyarrow import fs


def s3_filesystem(settings: Settings) -> fs.S3FileSystem:
    return s3_filesystem_from(settings.storage_options)


def s3_filesystem_from(options: dict[str, str]) -> fs.S3FileSystem:
    """The S3 filesystem of deltalake-style storage options."""
    from pyarrow import fs

    endpoint = options.get("AWS_ENDPOINT_URL")
    scheme = None
    if endpoint:
        scheme, _, endpoint = endpoint.partition("://")
    return fs.S3FileSystem(
        access_key=options.get("AWS_ACCESS_KEY_ID"),
        secret_key=options.get("AWS_SECRET_ACCESS_KEY"),
        region=options.get("AWS_REGION"),
        endpoint_override=endpoint or None,
        scheme=scheme or "https",
        connect_timeout=10,
        request_timeout=60,
    )


def landing_filesystem(settings: Settings) -> tuple[fs.FileSystem, str]:
    """(filesystem, root path inside it) of the landing area."""
    from pyarrow import fs

    root = settings.landing_root
    if root.startswith("s3://"):
        return s3_filesystem(settings), root.removeprefix("s3://")
    return fs.LocalFileSystem(), root


def landing_dataset(settings: Settings, relative: str) -> tuple[str, str]:
    """(namespace, name) of a landing file by the OpenLineage naming conventions: ``file``
    and its absolute path, or ``s3://bucket`` and its key."""
    root = settings.landing_root
    if root.startswith("s3://"):
        bucket, _, prefix = root.removeprefix("s3://").partition("/")
        return f"s3://{bucket}", posixpath.join(prefix, relative) if prefix else relative
    return "file", posixpath.join(root, relative)


def landing_path(settings: Settings, relative: str) -> tuple[fs.FileSystem, str]:
    """Where a landing-relative path lives; the caller has checked it stays inside."""
    filesystem, root = landing_filesystem(settings)
    return filesystem, posixpath.join(root, relative)
