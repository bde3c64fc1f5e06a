"""Helpers shared by the benchmarks: the scale knob, where generated data goes, timing, peak
memory of a child process, and one way of printing a figure next to its target.

Every benchmark prints ratios against a raw baseline measured in the same run (these machines
are noisy, so an absolute time from another run says little), plus the absolute numbers. A
figure that misses its target is printed with ``TARGET MISSED``; nothing asserts.
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


def line(label: str, text: str) -> None:
    print(f"  {label:<44} {text}", flush=True)


def check(label: str, text: str, *, ok: bool, target: str) -> None:
    """A figure with its target; ``TARGET MISSED`` when ``ok`` is false."""
    line(label, f"{text}   (target {target})" + ("" if ok else f"   {MISSED}"))


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
