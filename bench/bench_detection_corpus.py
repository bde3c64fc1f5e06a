"""CSV dialect detection on a public corpus nobody on the team wrote: FlowForge's ``detect()``
against clevercsv (Sniffer) and Python's ``csv.Sniffer``, file by file.

The corpus: the table-like data files shipped in the wheels of two well-known packages,
``statsmodels`` and ``scikit-learn`` (test results, datasets: comma, tab, semicolon and
whitespace-separated tables, with and without titles), fetched once with ``pip download``
into ``bench/.out/detection-corpus`` (``SKIPPED`` when the registry cannot be reached), plus
those of this environment's site-packages. A ``.txt`` file counts only when it looks like a
table (five or more lines, 80% of them with the same number of fields, more than one).

For each file, from its first 64 kB: the delimiter and whether the first line holds column
titles, by each of the three. There is no hand-made answer key, so two measures stand in:

- **consensus**: where clevercsv and ``csv.Sniffer`` agree, FlowForge should too (a person
  would): the share of those files where it does, target 100%;
- **agreement** with each of the two over all files, and how often each pair agrees.

The files where FlowForge departs from the consensus are listed (at most 12), so a reader can
judge who is right. Times: FlowForge's total and slowest file, and the two baselines' totals
(ratios against clevercsv, the careful one). ``clevercsv`` is a dev dependency; without it
that column prints ``SKIPPED (pip install clevercsv)``.
"""

from __future__ import annotations

import csv
import importlib.util
import site
import subprocess
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench._common import check, line, out_dir, report

PACKAGES = ("statsmodels", "scikit-learn")
SUFFIXES = (".csv", ".tsv", ".tab", ".dat", ".txt")
SAMPLE_BYTES = 64 * 1024
MIN_BYTES, MAX_BYTES = 64, 4 << 20
SHOWN_DISAGREEMENTS = 12
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", " ": "space"}


@dataclass
class Verdict:
    delimiter: str | None
    header: bool | None
    seconds: float


def _download(folder: Path) -> list[Path]:
    """The wheels of PACKAGES, downloaded once (no dependencies, binary only)."""
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) >= len(PACKAGES):
        return wheels
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
    command += ["--only-binary=:all:", "-d", str(folder), *PACKAGES]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=600)  # noqa: S603
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return []
    return sorted(folder.glob("*.whl"))


def _tabular_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "\x00" in text:
        return None
    return text


def _looks_like_a_table(text: str) -> bool:
    lines = [row for row in text.splitlines()[:200] if row.strip()]
    if len(lines) < 5:
        return False
    widths = Counter(len(row.split()) for row in lines)
    width, count = widths.most_common(1)[0]
    return width > 1 and count >= 0.8 * len(lines)


def corpus(folder: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every table-like data file in the wheels and in site-packages."""
    found: dict[str, bytes] = {}
    for wheel in _download(folder / "wheels"):
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.filename.lower().endswith(SUFFIXES) and (
                    MIN_BYTES <= info.file_size <= MAX_BYTES
                ):
                    found[f"{wheel.name.split('-')[0]}:{info.filename}"] = archive.read(info)
    for root in site.getsitepackages():
        for path in Path(root).rglob("*"):
            if path.suffix.lower() in SUFFIXES and path.is_file():
                size = path.stat().st_size
                if MIN_BYTES <= size <= MAX_BYTES:
                    found[f"site-packages:{path.relative_to(root)}"] = path.read_bytes()
    kept = []
    for name, data in sorted(found.items()):
        text = _tabular_text(data)
        if text is None:
            continue
        if name.lower().endswith(".txt") and not _looks_like_a_table(text):
            continue
        kept.append((name, data))
    return kept


def flowforge(path: Path) -> Verdict:
    from flowforge_catalog.files.detection import LocalFileSource, detect

    started = time.perf_counter()
    try:
        found = detect(LocalFileSource(path))
        delimiter, header = found.delimiter, found.has_header
    except Exception:  # noqa: BLE001 (a refusal is a verdict: no table found)
        delimiter, header = None, None
    return Verdict(delimiter, header, time.perf_counter() - started)


def python_sniffer(sample: str) -> Verdict:
    started = time.perf_counter()
    sniffer = csv.Sniffer()
    try:
        delimiter = sniffer.sniff(sample, delimiters=",;\t| ").delimiter
    except csv.Error:
        delimiter = None
    try:
        header = sniffer.has_header(sample)
    except csv.Error:
        header = None
    return Verdict(delimiter, header, time.perf_counter() - started)


def clever(sample: str) -> Verdict:
    import clevercsv

    started = time.perf_counter()
    sniffer = clevercsv.Sniffer()
    try:
        dialect = sniffer.sniff(sample, delimiters=[",", ";", "\t", "|", " "])
        delimiter = dialect.delimiter if dialect is not None else None
    except Exception:  # noqa: BLE001 (no dialect found)
        delimiter = None
    try:
        header = sniffer.has_header(sample)
    except Exception:  # noqa: BLE001
        header = None
    return Verdict(delimiter or None, header, time.perf_counter() - started)


def _share(hits: int, total: int) -> str:
    return f"{hits}/{total} ({100 * hits / total:.0f}%)" if total else "0/0"


def _name(delimiter: str | None) -> str:
    return DELIMITER_NAMES.get(delimiter, repr(delimiter)) if delimiter else "none"


def main() -> None:
    folder = out_dir("detection-corpus")
    files = corpus(folder)
    if not files:
        line("corpus", "SKIPPED (no wheels: the package registry cannot be reached)")
        return
    has_clever = importlib.util.find_spec("clevercsv") is not None
    work = folder / "files"
    work.mkdir(exist_ok=True)
    rows = []
    for index, (name, data) in enumerate(files):
        path = work / f"{index:04d}{Path(name).suffix}"
        path.write_bytes(data)
        sample = (_tabular_text(data[:SAMPLE_BYTES]) or "").rsplit("\n", 1)[0]
        rows.append(
            (
                name,
                flowforge(path),
                clever(sample) if has_clever else None,
                python_sniffer(sample),
            )
        )
    line("corpus", f"{len(rows)} table-like files from {', '.join(PACKAGES)} and site-packages")
    delimiters = Counter(_name(ff.delimiter) for _, ff, _, _ in rows)
    line("FlowForge's delimiters", ", ".join(f"{k} {v}" for k, v in delimiters.most_common()))
    ff_time = sum(ff.seconds for _, ff, _, _ in rows)
    slowest = max(rows, key=lambda row: row[1].seconds)
    py_time = sum(py.seconds for _, _, _, py in rows)
    line("FlowForge detect() time", f"{ff_time:.2f} s in all; slowest {slowest[1].seconds:.2f} s")
    line("csv.Sniffer time", f"{py_time:.2f} s in all")
    if not has_clever:
        line("clevercsv", "SKIPPED (pip install clevercsv)")
        for what in ("delimiter", "header"):
            hits = sum(getattr(ff, what) == getattr(py, what) for _, ff, _, py in rows)
            line(f"{what}: FlowForge = csv.Sniffer", _share(hits, len(rows)))
        return
    cc_time = sum(cc.seconds for _, _, cc, _ in rows)
    line(
        "clevercsv time", f"{cc_time:.2f} s in all (FlowForge / clevercsv {ff_time / cc_time:.2f})"
    )
    departures = []
    for what in ("delimiter", "header"):
        both = [row for row in rows if getattr(row[2], what) == getattr(row[3], what)]
        with_consensus = sum(getattr(row[1], what) == getattr(row[2], what) for row in both)
        check(
            f"{what}: FlowForge = consensus",
            f"{_share(with_consensus, len(both))} of the files where clevercsv and "
            "csv.Sniffer agree",
            ok=with_consensus == len(both),
            target="all",
        )
        for label, index in (("clevercsv", 2), ("csv.Sniffer", 3)):
            hits = sum(getattr(row[1], what) == getattr(row[index], what) for row in rows)
            line(f"{what}: FlowForge = {label}", _share(hits, len(rows)))
        hits = sum(getattr(row[2], what) == getattr(row[3], what) for row in rows)
        line(f"{what}: clevercsv = csv.Sniffer", _share(hits, len(rows)))
        departures += [
            (row[0], what, getattr(row[1], what), getattr(row[2], what))
            for row in both
            if getattr(row[1], what) != getattr(row[2], what)
        ]
    for name, what, ours, theirs in departures[:SHOWN_DISAGREEMENTS]:
        shown = (_name(ours), _name(theirs)) if what == "delimiter" else (ours, theirs)
        line(f"  departs: {what}", f"{name}: FlowForge {shown[0]}, both others {shown[1]}")
    if len(departures) > SHOWN_DISAGREEMENTS:
        line("  departs", f"... and {len(departures) - SHOWN_DISAGREEMENTS} more")
    report(__name__)


if __name__ == "__main__":
    main()
