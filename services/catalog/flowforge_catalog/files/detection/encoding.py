"""The file's text encoding, and the sample chunks cut at line breaks and decoded in it.

Order of evidence: a byte-order mark (UTF-8, UTF-16 LE/BE) is certain; NUL bytes on every
other position mean UTF-16 without a mark; any other NUL byte means a binary file. Otherwise
the sample must be valid UTF-8 — or UTF-8 but for a minority of its lines, when other lines
hold UTF-8 text beyond ASCII (those lines are then malformed rows, with a warning) — else it
is read as cp1252 (Windows exports), else latin-1 (which decodes any byte, so it is the last
resort, and the control-character check below keeps binaries out). ``Encoding.name`` is what ``fileConfig.encoding`` gets: names the
ingest reader resolves with :func:`codecs.lookup` (``utf-16`` reads the byte-order mark and
picks the byte order itself).

Cutting before decoding: a chunk read in the middle of the file starts and ends inside a
line, maybe inside a multi-byte character. It is cut after its first and last line break
(found as bytes, on code-unit boundaries for UTF-16), so every slice decodes on its own.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from flowforge_catalog.files.detection.errors import DetectionError
from flowforge_catalog.files.detection.sampling import RawChunk

_BINARY_CONTROL_SHARE = 0.01
# C0 controls other than tab, line breaks, form feed and escape; DEL; and the C1 range,
# which only appears when latin-1 decoded bytes that no text encoding uses.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
_UTF16_SNIFF_BYTES = 4096


@dataclass(frozen=True)
class Encoding:
    name: str  # for fileConfig.encoding
    codec: str  # decodes the bytes after the byte-order mark
    bom: bytes = b""

    @property
    def unit(self) -> int:
        return 2 if self.codec.startswith("utf-16") else 1


@dataclass(frozen=True)
class TextChunk:
    """Whole lines of one chunk: ``text`` decoded from ``byte_length`` bytes at ``offset``."""

    offset: int
    text: str
    byte_length: int
    at_start: bool
    at_end: bool


UTF8 = Encoding("utf-8", "utf-8")


def sniff_encoding(prefix: bytes) -> Encoding:
    """The encoding the first bytes prove (a BOM, UTF-16's NUL pattern), else UTF-8 for now.

    Raises :class:`DetectionError` for NUL bytes that are not UTF-16's.
    """
    if prefix.startswith(codecs.BOM_UTF8):
        return Encoding("utf-8-sig", "utf-8", codecs.BOM_UTF8)
    if prefix.startswith(codecs.BOM_UTF32_LE) or prefix.startswith(codecs.BOM_UTF32_BE):
        raise DetectionError(
            "the file is UTF-32 text, which FlowForge does not read: save it as UTF-8"
        )
    if prefix.startswith(codecs.BOM_UTF16_LE):
        return Encoding("utf-16", "utf-16-le", codecs.BOM_UTF16_LE)
    if prefix.startswith(codecs.BOM_UTF16_BE):
        return Encoding("utf-16", "utf-16-be", codecs.BOM_UTF16_BE)
    head = prefix[:_UTF16_SNIFF_BYTES]
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        even_nul = even.count(0) / max(len(even), 1)
        odd_nul = odd.count(0) / max(len(odd), 1)
        # ASCII-range text in UTF-16 has a NUL in (nearly) every high byte and none in the
        # low bytes; a binary file's NULs are not that tidy.
        if odd_nul > 0.3 and even_nul < 0.02:
            return Encoding("utf-16-le", "utf-16-le")
        if even_nul > 0.3 and odd_nul < 0.02:
            return Encoding("utf-16-be", "utf-16-be")
        raise _binary(head.index(0))
    return UTF8


@dataclass(frozen=True)
class Decoded:
    """The sample chunks as text, and how they were decoded."""

    encoding: Encoding
    texts: list[TextChunk]
    # Lines that were not valid in ``encoding`` were decoded with U+FFFD in place of their
    # bad bytes: the load treats those rows as malformed.
    replaced: bool = False
    warnings: tuple[str, ...] = ()


def decode_chunks(chunks: list[RawChunk], encoding: Encoding) -> Decoded:
    """The chunks cut at line breaks and decoded, and the encoding that decoded them.

    A provisional UTF-8 that does not decode every line stays UTF-8 when some lines hold
    UTF-8 text beyond ASCII and most lines decode (a UTF-8 file with a few lines pasted in
    from a Windows export): re-reading it as a single-byte code page would garble every
    accented letter of the good lines, while the load only sets the bad lines aside. Else
    it falls back to cp1252, then latin-1. Raises :class:`DetectionError` for a binary file
    or text that no candidate decodes.
    """
    newline = _newline_bytes(chunks, encoding)
    spans: list[tuple[RawChunk, int, int]] = []
    for chunk in chunks:
        span = _line_span(chunk, newline, encoding)
        if span is not None:
            spans.append((chunk, *span))
    if encoding.unit == 1:
        for chunk, start, end in spans:
            position = chunk.data.find(b"\x00", start, end)
            if position >= 0:
                raise _binary(chunk.offset + position)
    candidates = [encoding]
    if encoding == UTF8:
        candidates += [Encoding("cp1252", "cp1252"), Encoding("latin-1", "latin-1")]
    failure: UnicodeDecodeError | None = None
    for candidate in candidates:
        try:
            texts = _decode(spans, candidate.codec, "strict")
        except UnicodeDecodeError as error:
            failure = failure or error
            if candidate == UTF8:
                mostly = _mostly_utf8(spans, newline)
                if mostly is not None:
                    texts = _decode(spans, UTF8.codec, "replace")
                    _refuse_binary_text(texts)
                    return Decoded(UTF8, texts, replaced=True, warnings=(mostly,))
            continue
        _refuse_binary_text(texts)
        return Decoded(candidate, texts)
    assert failure is not None  # latin-1 decodes anything; only UTF-16/BOM files get here
    raise DetectionError(
        f"the file is not valid {encoding.name} text ({failure.reason}): re-save it as UTF-8"
    )


def _decode(spans: list[tuple[RawChunk, int, int]], codec: str, errors: str) -> list[TextChunk]:
    return [
        TextChunk(
            chunk.offset + start,
            chunk.data[start:end].decode(codec, errors),
            end - start,
            chunk.at_start,
            chunk.at_end and end == len(chunk.data),
        )
        for chunk, start, end in spans
    ]


def _mostly_utf8(spans: list[tuple[RawChunk, int, int]], newline: bytes) -> str | None:
    """A warning when the sampled lines are UTF-8 but for a few, else None."""
    total = invalid = beyond_ascii = 0
    first_invalid: int | None = None
    for chunk, start, end in spans:
        position = start
        for line in chunk.data[start:end].split(newline):
            if not line.strip(b"\r"):
                position += len(line) + len(newline)
                continue  # blank: the end of the span, or a line the reader skips
            total += 1
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                invalid += 1
                if first_invalid is None:
                    first_invalid = chunk.offset + position
            else:
                beyond_ascii += not line.isascii()
            position += len(line) + len(newline)
    if not beyond_ascii or invalid * 2 >= total:
        return None  # no UTF-8 text beyond ASCII, or mostly not UTF-8: a code page it is
    return (
        f"{invalid} of the {total} sampled lines are not valid UTF-8 (the first at byte "
        f"{first_invalid}), while the others are UTF-8 text: the file is read as UTF-8 and "
        "those rows are malformed rows (the load fails, or sets them aside with malformedRows "
        "'quarantine'). Re-save them as UTF-8 to load them"
    )


def _newline_bytes(chunks: list[RawChunk], encoding: Encoding) -> bytes:
    # A file with no "\n" at all uses old-Mac "\r" line endings.
    linefeed = "\n".encode(encoding.codec)
    if any(linefeed in chunk.data for chunk in chunks):
        return linefeed
    return "\r".encode(encoding.codec)


def _line_span(chunk: RawChunk, newline: bytes, encoding: Encoding) -> tuple[int, int] | None:
    """[start, end) of the whole lines in ``chunk``, or None if it holds no line break."""
    data = chunk.data
    if chunk.at_start:
        start = len(encoding.bom) if data.startswith(encoding.bom) else 0
    else:
        found = _find(data, newline, encoding.unit, 0, last=False)
        if found is None:
            return None
        start = found + len(newline)
    if chunk.at_end:
        end = len(data)
    else:
        found = _find(data, newline, encoding.unit, start, last=True)
        if found is None:
            return None
        end = found + len(newline)
    return (start, end) if end > start else None


def _find(data: bytes, needle: bytes, unit: int, start: int, *, last: bool) -> int | None:
    """Position of ``needle`` in ``data[start:]`` on a code-unit boundary."""
    end = len(data)
    while True:
        position = data.rfind(needle, start, end) if last else data.find(needle, start, end)
        if position < 0:
            return None
        if position % unit == 0:
            return position
        if last:
            end = position + len(needle) - 1
        else:
            start = position + 1


def _refuse_binary_text(texts: list[TextChunk]) -> None:
    total = sum(len(chunk.text) for chunk in texts)
    controls = sum(len(_CONTROL.findall(chunk.text)) for chunk in texts)
    if total and controls / total > _BINARY_CONTROL_SHARE:
        raise DetectionError(
            f"the file does not look like CSV text ({controls} control characters in the "
            f"first {total} characters sampled): it may be a binary file (a spreadsheet, an "
            "archive) renamed .csv. Export it as CSV and upload that"
        )


def _binary(offset: int) -> DetectionError:
    return DetectionError(
        f"the file contains a NUL byte (at byte {offset}), so it is not CSV text: it may be "
        "a binary file (an .xlsx workbook, an archive) renamed .csv. Export it as CSV "
        "(UTF-8) and upload that"
    )
