"""CSV -> bronze: FlowForge's streamed ingest against polars reading and writing the same file.

Measured:

1. Throughput on a 2,000,000-row, 10-column CSV (ints, a decimal written with 2 places,
   strings, a date, naive and offset timestamps, a nullable int): FlowForge's
   ``read_csv_batches`` + ``write_bronze`` (audit columns on, a local Lake, a new table each
   time) against ``polars.read_csv(path).write_parquet(...)``. Best of a few alternating
   runs of each (the ratio of the best times is the figure; the median ratio of the
   paired runs is shown beside it). Target: FlowForge / polars >= 0.8. The baseline reads
   the file as polars infers it (``amount`` a float, the dates left as text); a polars read
   typed like FlowForge's (``try_parse_dates``, ``amount`` as Decimal(18, 2)) is timed too,
   for comparison only.
2. Start-up costs (issue 17, section 4): on a 500,000-row file of the same shape,
   FlowForge's ``read_csv_batches`` + ``write_bronze`` against pyarrow's streaming reader
   (``pyarrow.csv.open_csv``, its defaults) streamed into ``deltalake.write_deltalake`` of a
   new table, alternating, best of a few runs; target FlowForge / pyarrow >= 1.0. And a
   1,000-row file loaded by a whole ingest job as a run executes it (``execute_job`` with
   ``run_ingest_job``: staging the landing file, reading, the bronze commit, lineage,
   orphan clean-up and table maintenance, the run events to an in-memory sink), in a worker
   that has run a job before: into a new table (the first run of a job) and appending to the
   table (a later run), median of several runs each; target < 150 ms.
3. Peak RSS of the same FlowForge ingest of a 5,000,000-row file in a fresh interpreter
   (its own VmHWM), target <= 1 GB; and of the polars baseline, for comparison (it
   holds the whole file in memory), and of an interpreter that only imports the modules.

Generated CSVs are kept in ``bench/.out/csv_bronze`` (re-used when present); the tables are
written there and removed. ``FLOWFORGE_BENCH_SCALE`` scales the row counts.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import uuid
from pathlib import Path

from bench._common import check, line, median, mib, out_dir, rate, run_child, scaled, timed

THROUGHPUT_ROWS = 2_000_000
MEMORY_ROWS = 5_000_000
REPEATS = 5
TARGET_RATIO = 0.8
TARGET_RSS = 1 << 30  # 1 GiB
STARTUP_ROWS = 500_000
STARTUP_REPEATS = 7
TARGET_STARTUP_RATIO = 1.0
SMALL_ROWS = 1_000
SMALL_REPEATS = 9
TARGET_SMALL_JOB_MS = 150.0
FILE_CONFIG = {
    "filePath": "bench.csv",
    "columns": [{"name": "amount", "type": "decimal", "precision": 18, "scale": 2}],
}


def write_csv(path: Path, rows: int) -> Path:
    """The benchmark file, generated once per row count (deterministic, vectorised)."""
    if path.exists():
        return path
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    index = pl.int_range(0, rows, eager=True, dtype=pl.Int64)
    cents = (index * 7_919 + 13) % 10_000_000
    frame = pl.DataFrame({"i": index}).select(
        id=pl.col("i") + 1,
        customer_id=(pl.col("i") * 31) % 100_003,
        amount=(cents // 100).cast(pl.Utf8) + "." + (cents % 100).cast(pl.Utf8).str.zfill(2),
        quantity=(pl.col("i") % 17) + 1,
        name=pl.lit("customer_") + ((pl.col("i") * 7) % 250_000).cast(pl.Utf8),
        category=pl.lit("cat_") + (pl.col("i") % 8).cast(pl.Utf8),
        order_date=(pl.date(2020, 1, 1) + pl.duration(days=pl.col("i") % 1_500)).dt.strftime(
            "%Y-%m-%d"
        ),
        created_at=(
            pl.datetime(2023, 1, 1) + pl.duration(seconds=(pl.col("i") * 37) % 31_536_000)
        ).dt.strftime("%Y-%m-%d %H:%M:%S"),
        updated_at=(
            pl.datetime(2024, 1, 1) + pl.duration(seconds=(pl.col("i") * 53) % 31_536_000)
        ).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        referrer_id=pl.when(pl.col("i") % 10 < 3).then(None).otherwise((pl.col("i") * 13) % 50_000),
    )
    partial = path.with_suffix(".partial")
    frame.write_csv(partial)
    partial.replace(path)
    return path


def flowforge_ingest(csv_path: Path, lake_root: Path) -> int:
    """FlowForge's ingest of ``csv_path`` into a new bronze table; returns rows written."""
    from flowforge_ingest.bronze import AuditContext, write_bronze
    from flowforge_ingest.csv_source import read_csv_batches
    from flowforge_shared.contracts.jobs import FileConfig
    from flowforge_shared.lake import Lake

    config = FileConfig.model_validate(FILE_CONFIG)
    batches = read_csv_batches(csv_path, config, source_name=config.file_path)
    result = write_bronze(
        Lake(root=str(lake_root)),
        "bench",
        batches,
        mode="append",
        audit=AuditContext(
            execution_id=str(uuid.uuid4()), job_id=str(uuid.uuid4()), source="bench.csv"
        ),
        app_id="flowforge-job-bench",
        run_sequence=1,
    )
    return result.rows_written


def pyarrow_streaming(csv_path: Path, table_uri: Path) -> int:
    """pyarrow's streaming CSV reader (types inferred from its first block, its default
    threads) streamed into a new Delta table: the raw floor of a streamed CSV -> Delta."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from deltalake import write_deltalake

    reader = pacsv.open_csv(csv_path)
    rows = 0

    def counted():
        nonlocal rows
        for batch in reader:
            rows += batch.num_rows
            yield batch

    write_deltalake(
        str(table_uri), pa.RecordBatchReader.from_batches(reader.schema, counted()), mode="append"
    )
    return rows


class _Sink:
    """The run events of a job, kept in memory (a worker sends them to the events queue)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def emit(self, event: dict) -> None:
        self.events.append(event)

    def heartbeat(self, beat: dict) -> None:
        pass


@functools.lru_cache
def _settings(data_dir: Path):
    """A worker reads its settings once (flowforge_runtime.worker.worker_settings)."""
    from flowforge_shared.settings import Settings

    return Settings(data_dir=data_dir)


def ingest_job(data_dir: Path, file_path: str, table: str, run_sequence: int) -> int:
    """One CSV ingest job run as a worker runs it (execute_job + run_ingest_job, in the
    embedded settings of ``data_dir``); returns the rows its COMPLETE event reports."""
    from flowforge_ingest.runner import run_ingest_job
    from flowforge_runtime.job import JobContext, LocalCancelFlags, execute_job
    from flowforge_shared.contracts.tasks import JobTask
    from flowforge_shared.lake import Lake

    settings = _settings(data_dir)
    task = JobTask(
        execution_id=str(uuid.uuid4()),
        run_sequence=run_sequence,
        job_run_id=str(uuid.uuid4()),
        job_id=f"job-{table}",
        workflow_id="bench",
        workflow_name="bench",
        job={
            "name": table,
            "type": "file-based",
            "sourceConfig": {"type": "csv", "fileConfig": {"filePath": file_path}},
            "destinationConfig": {"bronzeConfig": {"tableName": table}},
        },
    )
    sink = _Sink()
    context = JobContext(
        task=task,
        attempt=1,
        settings=settings,
        lake=Lake.from_settings(settings),
        sink=sink,
        cancel_flags=LocalCancelFlags(),
    )
    outcome = execute_job(context, run_ingest_job, final_attempt=True)
    complete = [e for e in sink.events if e["eventType"] == "COMPLETE"]
    if outcome != "succeeded" or not complete:
        error = sink.events[-1]["run"]["facets"].get("flowforge_error", {})
        raise RuntimeError(f"the bench job ended {outcome}: {error.get('message')}")
    return complete[0]["run"]["facets"]["flowforge_result"]["rowsWritten"]


def polars_baseline(csv_path: Path, parquet_path: Path) -> int:
    import polars as pl

    frame = pl.read_csv(csv_path)
    frame.write_parquet(parquet_path)
    return frame.height


def polars_typed(csv_path: Path, parquet_path: Path) -> int:
    """The baseline doing FlowForge's typing: dates, timestamps and the decimal parsed."""
    import polars as pl

    frame = pl.read_csv(
        csv_path, try_parse_dates=True, schema_overrides={"amount": pl.Decimal(18, 2)}
    )
    frame.write_parquet(parquet_path)
    return frame.height


def _throughput(work: Path, rows: int) -> None:
    csv_path = write_csv(work / f"bench-{rows}.csv", rows)
    size = csv_path.stat().st_size
    line("file", f"{rows:,} rows x 10 columns, {mib(size)}")
    ours: list[float] = []
    theirs: list[float] = []
    typed: list[float] = []
    for attempt in range(REPEATS):
        target = work / f"run-{attempt}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        # Alternate, so a noisy neighbour hurts both sides alike.
        seconds, count = timed(polars_baseline, csv_path, target / "baseline.parquet")
        assert count == rows, f"polars read {count} rows of {rows}"
        theirs.append(seconds)
        seconds, count = timed(flowforge_ingest, csv_path, target / "lake")
        assert count == rows, f"FlowForge wrote {count} rows of {rows}"
        ours.append(seconds)
        seconds, count = timed(polars_typed, csv_path, target / "typed.parquet")
        assert count == rows, f"polars (typed) read {count} rows of {rows}"
        typed.append(seconds)
        shutil.rmtree(target)
    best_ours, best_theirs = min(ours), min(theirs)
    line(
        "FlowForge read_csv_batches + write_bronze",
        f"{rate(rows, best_ours)}  ({best_ours:.2f} s best of {REPEATS}; "
        f"all {', '.join(f'{s:.2f}' for s in ours)})",
    )
    line(
        "polars read_csv + write_parquet (baseline)",
        f"{rate(rows, best_theirs)}  ({best_theirs:.2f} s best of {REPEATS}; "
        f"all {', '.join(f'{s:.2f}' for s in theirs)})",
    )
    line(
        "polars typed read_csv + write_parquet",
        f"{rate(rows, min(typed))}  ({min(typed):.2f} s best of {REPEATS}; for comparison)",
    )
    ratio = best_theirs / best_ours
    paired = median([theirs[i] / ours[i] for i in range(REPEATS)])
    check(
        "throughput ratio FlowForge / polars",
        f"{ratio:.2f} of the best times (median of the {REPEATS} paired runs: {paired:.2f})",
        ok=ratio >= TARGET_RATIO,
        target=f">= {TARGET_RATIO}",
    )


def _startup(work: Path, rows: int) -> None:
    csv_path = write_csv(work / f"bench-{rows}.csv", rows)
    line("file", f"{rows:,} rows x 10 columns, {mib(csv_path.stat().st_size)}")
    ours: list[float] = []
    theirs: list[float] = []
    cpu_ours: list[float] = []
    cpu_theirs: list[float] = []
    warm = work / "startup-warm-up"  # imports and first-use set-up of both, untimed
    shutil.rmtree(warm, ignore_errors=True)
    pyarrow_streaming(csv_path, warm / "pyarrow")
    flowforge_ingest(csv_path, warm / "lake")
    shutil.rmtree(warm)
    for attempt in range(STARTUP_REPEATS):
        target = work / f"startup-{attempt}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        # Alternate, and change which side goes first, so a noisy neighbour hurts both.
        sides = [
            ("pyarrow", pyarrow_streaming, target / "pyarrow"),
            ("ours", flowforge_ingest, target / "lake"),
        ]
        for name, function, out in sides if attempt % 2 == 0 else reversed(sides):
            cpu = _cpu_seconds()
            seconds, count = timed(function, csv_path, out)
            (cpu_ours if name == "ours" else cpu_theirs).append(_cpu_seconds() - cpu)
            assert count == rows, f"{name} wrote {count} rows of {rows}"
            (ours if name == "ours" else theirs).append(seconds)
        shutil.rmtree(target)
    best_ours, best_theirs = min(ours), min(theirs)
    line(
        "FlowForge read_csv_batches + write_bronze",
        f"{rate(rows, best_ours)}  ({best_ours:.3f} s best of {STARTUP_REPEATS}; "
        f"all {', '.join(f'{s:.3f}' for s in ours)})",
    )
    line(
        "pyarrow open_csv -> write_deltalake (raw)",
        f"{rate(rows, best_theirs)}  ({best_theirs:.3f} s best of {STARTUP_REPEATS}; "
        f"all {', '.join(f'{s:.3f}' for s in theirs)})",
    )
    ratio = best_theirs / best_ours
    paired = median([theirs[i] / ours[i] for i in range(STARTUP_REPEATS)])
    line(
        "CPU time (all threads), median",
        f"FlowForge {median(cpu_ours):.3f} s, pyarrow {median(cpu_theirs):.3f} s: ratio "
        f"{median(cpu_theirs) / median(cpu_ours):.2f} (what a saturated machine's wall ratio "
        "tends to)",
    )
    check(
        f"ratio FlowForge / pyarrow streaming, {rows:,} rows",
        f"{ratio:.2f} of the best times (median of the paired runs: {paired:.2f})",
        ok=ratio >= TARGET_STARTUP_RATIO,
        target=f">= {TARGET_STARTUP_RATIO}",
    )


def _cpu_seconds() -> float:
    """CPU time of this process so far, every thread (delta-rs's and Arrow's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _small_job(work: Path, rows: int) -> None:
    data_dir = work / "small-job"
    shutil.rmtree(data_dir, ignore_errors=True)
    landing = data_dir / "landing"
    landing.mkdir(parents=True)
    shutil.copyfile(write_csv(work / f"bench-{rows}.csv", rows), landing / "small.csv")
    # A worker that has run a job before: imports and first-use set-up are paid once.
    assert ingest_job(data_dir, "small.csv", "warm_up", 1) == rows
    times: dict[str, list[float]] = {"new table": [], "append": []}
    cpu: dict[str, list[float]] = {"new table": [], "append": []}
    for attempt in range(SMALL_REPEATS):
        for label, run_sequence in (("new table", 1), ("append", 2)):
            before = _cpu_seconds()
            seconds, count = timed(
                ingest_job, data_dir, "small.csv", f"small_{attempt}", run_sequence
            )
            cpu[label].append(_cpu_seconds() - before)
            assert count == rows, f"the job wrote {count} rows of {rows}"
            times[label].append(seconds)
    shutil.rmtree(data_dir, ignore_errors=True)
    for label, runs in times.items():
        ms = median(runs) * 1000
        check(
            f"{rows:,}-row file -> bronze job, {label}",
            f"{ms:.0f} ms median of {SMALL_REPEATS} (min {min(runs) * 1000:.0f}, "
            f"max {max(runs) * 1000:.0f}; CPU {median(cpu[label]) * 1000:.0f} ms)",
            ok=ms < TARGET_SMALL_JOB_MS,
            target=f"< {TARGET_SMALL_JOB_MS:.0f} ms",
        )


_CHILD_FLOWFORGE = """
from pathlib import Path
from bench.bench_csv_bronze import flowforge_ingest
print(flowforge_ingest(Path({csv!r}), Path({out!r})))
"""
_CHILD_POLARS = """
from pathlib import Path
from bench.bench_csv_bronze import polars_baseline
print(polars_baseline(Path({csv!r}), Path({out!r})))
"""
_CHILD_IMPORTS = """
import polars, pyarrow.csv, deltalake
import flowforge_ingest.bronze, flowforge_ingest.csv_source, flowforge_shared.lake
print(0)
"""


def _memory(work: Path, rows: int) -> None:
    csv_path = write_csv(work / f"bench-{rows}.csv", rows)
    line("file", f"{rows:,} rows, {mib(csv_path.stat().st_size)}")
    target = work / "rss"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    try:
        imports = run_child(_CHILD_IMPORTS)
        ours = run_child(_CHILD_FLOWFORGE.format(csv=str(csv_path), out=str(target / "lake")))
        theirs = run_child(
            _CHILD_POLARS.format(csv=str(csv_path), out=str(target / "baseline.parquet"))
        )
    finally:
        shutil.rmtree(target, ignore_errors=True)
    assert int(ours.stdout.split()[-1]) == rows, ours.stdout
    check(
        "peak RSS, FlowForge ingest (fresh process)",
        f"{mib(ours.max_rss_bytes)}  ({ours.seconds:.1f} s incl. start-up)",
        ok=ours.max_rss_bytes <= TARGET_RSS,
        target="<= 1024 MiB",
    )
    line(
        "peak RSS, polars read_csv + write_parquet",
        f"{mib(theirs.max_rss_bytes)}  ({theirs.seconds:.1f} s incl. start-up)",
    )
    line("peak RSS, interpreter + imports only", mib(imports.max_rss_bytes))
    line("RSS ratio FlowForge / polars", f"{ours.max_rss_bytes / theirs.max_rss_bytes:.2f}")


def main() -> None:
    work = out_dir("csv_bronze")
    parts = os.environ.get("FLOWFORGE_BENCH_CSV", "throughput,startup,memory").split(",")
    line("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if "throughput" in parts:
        _throughput(work, scaled(THROUGHPUT_ROWS))
    if "startup" in parts:
        _startup(work, scaled(STARTUP_ROWS))
        _small_job(work, SMALL_ROWS)
        line("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if "memory" in parts:
        _memory(work, scaled(MEMORY_ROWS))
    from bench._common import report  # the SUMMARY's figures (bench/README.md)

    report(__name__, lines=("RSS ratio FlowForge / polars",))
