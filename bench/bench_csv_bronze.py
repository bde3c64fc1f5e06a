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
2. Peak RSS of the same FlowForge ingest of a 5,000,000-row file in a fresh interpreter
   (its own VmHWM), target <= 1 GB; and of the polars baseline, for comparison (it
   holds the whole file in memory), and of an interpreter that only imports the modules.

Generated CSVs are kept in ``bench/.out/csv_bronze`` (re-used when present); the tables are
written there and removed. ``FLOWFORGE_BENCH_SCALE`` scales the row counts.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from bench._common import check, line, median, mib, out_dir, rate, run_child, scaled, timed

THROUGHPUT_ROWS = 2_000_000
MEMORY_ROWS = 5_000_000
REPEATS = 5
TARGET_RATIO = 0.8
TARGET_RSS = 1 << 30  # 1 GiB
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
    _throughput(work, scaled(THROUGHPUT_ROWS))
    _memory(work, scaled(MEMORY_ROWS))
    from bench._common import report  # the SUMMARY's figures (bench/README.md)

    report(__name__, lines=("RSS ratio FlowForge / polars",))
