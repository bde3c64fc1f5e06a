"""Helpers shared by the benchmarks: the scale knob, where generated data goes, timing, peak
memory of a child process, and one way of printing a figure next to its target.

Every benchmark prints ratios against a raw baseline measured in the same run (these machines
are noisy, so an absolute time from another run says little), plus the absolute numbers. A
figure that misses its target is printed with ``TARGET MISSED``; nothing asserts.

Headline figures: every :func:`check` (a figure with its target) is recorded as it is
printed, and so is every :func:`line`; a module ends its ``main()`` with :func:`report`,
which takes what it recorded since the previous report (its checks, the figures it gave
:func:`headline`, and the lines it names) for the SUMMARY table that ``python -m bench``
prints at the end of the run (:func:`print_summary`), with the load average at the start
and the end of the run.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / ".out"  # git-ignored
PYTHON = sys.executable
MISSED = "TARGET MISSED"

T = TypeVar("T")


def scale() -> float:
    """FLOWFORGE_BENCH_SCALE (default 1.0): multiplies every row count, for a quick check."""
    raw = os.environ.get("FLOWFORGE_BENCH_SCALE", "1.0")
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(
            f"FLOWFORGE_BENCH_SCALE={raw!r} is not a number: use e.g. 0.1 for a quick run"
        ) from None
    if value <= 0:
        raise SystemExit(f"FLOWFORGE_BENCH_SCALE={raw!r} must be greater than 0")
    return value


def scaled(rows: int, minimum: int = 1_000) -> int:
    return max(minimum, int(rows * scale()))


def out_dir(name: str, *, fresh: bool = False) -> Path:
    """``bench/.out/<name>``, created; emptied first with ``fresh``."""
    path = OUT / name
    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def timed(function: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    """(wall seconds, result) of one call of ``function(*args, **kwargs)``."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0.9 = p90) of a non-empty sequence."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered) - 1e-9)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    max_rss_bytes: int
    stdout: str


_PEAK_MARKER = "__flowforge_bench_peak_rss_kib="
_REPORT_PEAK = f"""
for _line in open("/proc/self/status"):
    if _line.startswith("VmHWM:"):
        print("{_PEAK_MARKER}" + _line.split()[1])
"""


def run_child(code: str, *, env: dict[str, str] | None = None) -> ChildRun:
    """Run ``code`` in a fresh interpreter (cwd = the repository) and measure it.

    The peak RSS is the child's own high-water mark (``VmHWM``), read by the child as it
    ends. Not ``getrusage``: Linux carries ``ru_maxrss`` across ``exec``, so a child of a
    large parent (this process, after a benchmark) reports at least the parent's size.
    """
    start = time.perf_counter()
    completed = subprocess.run(
        [PYTHON, "-c", code + _REPORT_PEAK],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(
            f"benchmark child failed with exit code {completed.returncode}:\n"
            f"{completed.stderr[-3000:]}"
        )
    lines = completed.stdout.splitlines()
    peaks = [int(x.removeprefix(_PEAK_MARKER)) for x in lines if x.startswith(_PEAK_MARKER)]
    stdout = "\n".join(x for x in lines if not x.startswith(_PEAK_MARKER))
    return ChildRun(seconds, peaks[-1] * 1024, stdout)


def mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB"


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s"


@dataclass(frozen=True)
class Figure:
    """One printed figure: a line (no target), a check (with its target), or a headline
    given for the SUMMARY alone."""

    label: str
    text: str
    target: str | None = None
    ok: bool | None = None
    kind: str = "line"  # "line", "check" or "headline"
    section: str | None = None  # the part of the module it belongs to (section())


@dataclass(frozen=True)
class Report:
    module: str
    figures: list[Figure]
    load: tuple[float, float, float]  # the load average when the module ended
    error: str | None = None


_recorded: list[Figure] = []  # since the last report()
_section: list[str | None] = [None]  # the current part of the module, for the SUMMARY
REPORTS: list[Report] = []


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def loads(values: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def section(title: str, name: str | None = None) -> None:
    """Print ``  -- title`` and name the figures that follow (``name``, else ``title``) in
    the SUMMARY, e.g. "SQLite" and "PostgreSQL" parts printing the same labels."""
    print(f"  -- {title}", flush=True)
    _section[0] = name or title


def line(label: str, text: str) -> None:
    print(f"  {label:<44} {text}", flush=True)
    _recorded.append(Figure(label, text, section=_section[0]))


def check(label: str, text: str, *, ok: bool, target: str) -> None:
    """A figure with its target; ``TARGET MISSED`` when ``ok`` is false. Recorded for the
    SUMMARY."""
    print(
        f"  {label:<44} {text}   (target {target})" + ("" if ok else f"   {MISSED}"),
        flush=True,
    )
    _recorded.append(Figure(label, text, target, ok, "check", _section[0]))


def headline(label: str, text: str, *, target: str | None = None, ok: bool | None = None):
    """A figure for the SUMMARY only (printed there), e.g. a ratio shorter than the line
    that printed it."""
    _recorded.append(Figure(label, text, target, ok, "headline", _section[0]))


def report(module: str, *, lines: Sequence[str] = (), checks: bool = True) -> Report:
    """The end of a module's ``main()``: its headline figures, for the SUMMARY.

    They are the :func:`headline` figures and (unless ``checks=False``) the :func:`check`
    figures it recorded since the previous report, and its :func:`line` figures whose label
    starts with one of ``lines``; a name in ``lines`` that matched nothing is listed as not
    printed (a label renamed, a part skipped), so nothing goes missing unseen."""
    figures = []
    for name in lines:
        if not any(f.kind == "line" and f.label.startswith(name) for f in _recorded):
            figures.append(Figure(name, "(not printed in this run)", kind="line"))
    figures[:0] = [
        f
        for f in _recorded
        if f.kind == "headline"
        or (checks and f.kind == "check")
        or (f.kind == "line" and any(f.label.startswith(name) for name in lines))
    ]
    _recorded.clear()
    _section[0] = None
    entry = Report(module.rsplit(".", 1)[-1], figures, load_average())
    REPORTS.append(entry)
    return entry


def report_error(module: str, error: BaseException) -> None:
    """A module whose main() raised: listed in the SUMMARY with its error."""
    _recorded.clear()
    _section[0] = None
    REPORTS.append(
        Report(module, [], load_average(), error=f"{type(error).__name__}: {error}"[:200])
    )


def print_summary(load_at_start: tuple[float, float, float]) -> int:
    """The SUMMARY table of every report of the run; returns how many targets were missed."""
    missed = 0
    print("== SUMMARY (headline figures of every module that ran)")
    print(f"  load average (1, 5, 15 min) at start: {loads(load_at_start)}")
    for entry in REPORTS:
        print(f"  -- {entry.module}   (load at its end {loads(entry.load)})")
        if entry.error:
            print(f"     ERROR {entry.error}")
            continue
        if not entry.figures:
            print("     no headline figure (skipped: see its output above)")
        seen: dict[str, int] = {}
        for figure in entry.figures:
            label = f"{figure.section}: {figure.label}" if figure.section else figure.label
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:  # the same label again (a part not named by section())
                label += f" (#{seen[label]})"
            if figure.ok is None:
                verdict = "" if figure.target is None else "(no verdict)"
            else:
                verdict = "met" if figure.ok else MISSED
            target = f"target {figure.target}" if figure.target else ""
            print(f"     {label:<40} {figure.text}")
            if target or verdict:
                print(f"     {'':<40} {target}   {verdict}".rstrip())
            missed += figure.ok is False
    print(f"  load average (1, 5, 15 min) at end:   {loads(load_average())}")
    print(f"  targets missed: {missed}", flush=True)
    return missed


def table_to_bronze(params, database: str, table: str, lake_root: str, batch_size: int) -> int:
    """What ingest_database does for a full read of ``table`` with connection ``params``
    (a ConnectionParams), without the job around it: connect, describe, execute_batches of
    the planned read into write_bronze with audit columns, in a new table of a local Lake.
    Returns the rows written."""
    import uuid

    from flowforge_ingest.bronze import AuditContext, write_bronze
    from flowforge_ingest.connectors import sql
    from flowforge_ingest.connectors.registry import connector_for
    from flowforge_shared.lake import Lake

    connector = connector_for(params.db_type)
    with connector.connect(params) as conn:
        columns = connector.describe(conn, None, table)
        plan = sql.plan_read(params.db_type, schema=None, table=table)
        stream = connector.execute_batches(conn, plan.sql, plan.params, batch_size, columns)
        try:
            result = write_bronze(
                Lake(root=lake_root),
                "bench",
                stream,
                mode="append",
                audit=AuditContext(
                    execution_id=str(uuid.uuid4()),
                    job_id=str(uuid.uuid4()),
                    source=f"{database}.{table}",
                ),
                app_id="flowforge-job-bench",
                run_sequence=1,
            )
        finally:
            stream.close()
    return result.rows_written
