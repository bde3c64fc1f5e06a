"""Streaming a multipart upload straight to the landing area.

The body is parsed as it arrives (python-multipart's push parser), each chunk of the file
part is hashed, counted and written to its destination; nothing holds the whole file, and the
upload stops with 413 as soon as it passes the size limit (the partial file is removed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from anyio import to_thread
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from flowforge_shared.errors import ApiError, Unprocessable
from flowforge_shared.objectstore import landing_path
from flowforge_shared.settings import Settings

FIELD = "file"


class TooLarge(ApiError):
    status_code = 413


@dataclass
class Received:
    original_name: str = ""
    content_type: str | None = None
    size: int = 0
    sha256: str = ""
    found: bool = False
    _hash: object = field(default_factory=hashlib.sha256)


def clean_name(name: str) -> str:
    """The original name as metadata only: control characters dropped, last path part kept."""
    name = "".join(ch for ch in name if ch.isprintable())
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] or "upload.csv"


async def receive(request: Request, settings: Settings, relative_path: str) -> Received:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise Unprocessable(
            [((FIELD,), "send the file as multipart/form-data in a field named 'file'")]
        )
    limit = settings.upload_max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge(f"the file is larger than the upload limit of {limit:,} bytes")

    filesystem, destination = landing_path(settings, relative_path)
    await to_thread.run_sync(filesystem.create_dir, destination.rsplit("/", 1)[0])
    received = Received()
    state = {"header_field": b"", "headers": {}, "in_file": False, "pending": []}

    def on_header_field(data, start, end):
        state["header_field"] += data[start:end]

    def on_header_value(data, start, end):
        key = state["header_field"].lower()
        state["headers"][key] = state["headers"].get(key, b"") + data[start:end]

    def on_header_end():
        state["header_field"] = b""

    def on_headers_finished():
        disposition, params = parse_options_header(
            state["headers"].get(b"content-disposition", b"")
        )
        is_file = (
            params.get(b"name") == FIELD.encode() and b"filename" in params and not received.found
        )
        state["in_file"] = is_file
        if is_file:
            received.found = True
            received.original_name = clean_name(params[b"filename"].decode("utf-8", "replace"))
            part_type = state["headers"].get(b"content-type")
            received.content_type = part_type.decode("latin-1")[:200] if part_type else None

    def on_part_data(data, start, end):
        if state["in_file"]:
            chunk = bytes(data[start:end])
            received.size += len(chunk)
            if received.size > limit:
                raise TooLarge(f"the file is larger than the upload limit of {limit:,} bytes")
            received._hash.update(chunk)
            state["pending"].append(chunk)

    def on_part_end():
        state["in_file"] = False
        state["headers"] = {}

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    stream = await to_thread.run_sync(filesystem.open_output_stream, destination)
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except MultipartParseError as error:
                raise Unprocessable(
                    [((FIELD,), f"the multipart body is malformed: {error}")]
                ) from None
            if state["pending"]:
                data, state["pending"] = b"".join(state["pending"]), []
                await to_thread.run_sync(stream.write, data)
        try:
            parser.finalize()
        except MultipartParseError as error:
            raise Unprocessable([((FIELD,), f"the multipart body is malformed: {error}")]) from None
        await to_thread.run_sync(stream.close)
    except BaseException:
        await to_thread.run_sync(_discard, stream, filesystem, destination)
        raise
    if not received.found:
        await to_thread.run_sync(filesystem.delete_file, destination)
        raise Unprocessable([((FIELD,), "no file in the upload: send it in a field named 'file'")])
    received.sha256 = received._hash.hexdigest()
    return received


def _discard(stream, filesystem, destination: str) -> None:
    try:
        stream.close()
    finally:
        try:
            filesystem.delete_file(destination)
        except OSError:
            pass
