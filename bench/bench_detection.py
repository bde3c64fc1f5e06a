"""CSV schema detection on a 1 GB file: it samples, so it must not scale with the file.

Measured: ``detect()`` (heuristic, no AI) on a generated ~1 GB CSV (ints, decimals, strings,
emails, a date, a timestamp, a quoted text column with commas and line breaks), best of a
few runs. Target: < 2 s. The raw baseline, measured in the same run, reads the same byte
ranges detection read (same offsets and lengths, through the same ``LocalFileSource``), so
the ratio shows what detection adds to the I/O it cannot avoid.

The file is generated once into ``bench/.out/detection`` and reused. ``FLOWFORGE_BENCH_SCALE``
scales its size (0.1 -> ~100 MB).
"""

from __future__ import annotations

from pathlib import Path

from bench._common import check, line, mib, out_dir, report, scale, timed

TARGET_BYTES = 1 << 30  # 1 GiB
BYTES_PER_ROW = 97  # what the generator below writes, on average
REPEATS = 3
TARGET_SECONDS = 2.0


def write_csv(path: Path, rows: int) -> Path:
    """The benchmark file, generated once (deterministic, vectorised, in slices)."""
    if path.exists():
        return path
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    step = 2_000_000
    with partial.open("wb") as handle:
        for start in range(0, rows, step):
            index = pl.int_range(start, min(rows, start + step), eager=True, dtype=pl.Int64)
            cents = (index * 7_919 + 13) % 10_000_000
            frame = pl.DataFrame({"i": index}).select(
                order_id=pl.col("i") + 1,
                customer_id=(pl.col("i") * 31) % 100_003,
                amount=(cents // 100).cast(pl.Utf8)
                + "."
                + (cents % 100).cast(pl.Utf8).str.zfill(2),
                email=pl.lit("user") + ((pl.col("i") * 7) % 250_000).cast(pl.Utf8) + "@example.com",
                category=pl.lit("cat_") + (pl.col("i") % 8).cast(pl.Utf8),
                order_date=(
                    pl.date(2020, 1, 1) + pl.duration(days=pl.col("i") % 1_500)
                ).dt.strftime("%Y-%m-%d"),
                created_at=(
                    pl.datetime(2023, 1, 1) + pl.duration(seconds=(pl.col("i") * 37) % 31_536_000)
                ).dt.strftime("%Y-%m-%d %H:%M:%S"),
                note=pl.when(pl.col("i") % 50 == 0)
                .then(pl.lit("two lines,\nwith a comma"))
                .otherwise(pl.lit("plain note ") + (pl.col("i") % 1000).cast(pl.Utf8)),
            )
            frame.write_csv(handle, include_header=start == 0)
    partial.replace(path)
    return path


class _Recording:
    """A LocalFileSource that remembers the ranges read, to replay them as the baseline."""

    def __init__(self, path: Path) -> None:
        from flowforge_catalog.files.detection import LocalFileSource

        self._source = LocalFileSource(path)
        self.size = self._source.size
        self.ranges: list[tuple[int, int]] = []

    def read_range(self, offset: int, length: int) -> bytes:
        self.ranges.append((offset, length))
        return self._source.read_range(offset, length)


def main() -> None:
    from flowforge_catalog.files.detection import LocalFileSource, detect

    rows = max(10_000, int(TARGET_BYTES * scale()) // BYTES_PER_ROW)
    path = write_csv(out_dir("detection") / f"orders_{rows}.csv", rows)
    size = path.stat().st_size

    recording = _Recording(path)
    detection = detect(recording)
    sampled = sum(length for _, length in recording.ranges)

    def replay() -> int:
        source = LocalFileSource(path)
        return sum(len(source.read_range(offset, length)) for offset, length in recording.ranges)

    detect_times, read_times = [], []
    for _ in range(REPEATS):  # alternate, so both see the same page-cache state
        detect_times.append(timed(lambda: detect(LocalFileSource(path)))[0])
        read_times.append(timed(replay)[0])
    best, raw = min(detect_times), min(read_times)

    line("file", f"{mib(size)}, {rows:,} rows generated")
    line("bytes read by detection", f"{mib(sampled)} in {len(recording.ranges)} ranges")
    line(
        "detection result",
        f"{len(detection.columns)} columns, ~{detection.row_count_estimate:,} rows, "
        f"key {detection.suggested_primary_key}, {len(detection.warnings)} warnings",
    )
    line("raw read of the same ranges (baseline)", f"{raw * 1000:.1f} ms")
    check(
        "detect() on the 1 GB file",
        f"{best:.3f} s ({best / raw:,.0f}x the raw read)",
        ok=best < TARGET_SECONDS,
        target=f"< {TARGET_SECONDS:g} s",
    )
    report(__name__)


if __name__ == "__main__":
    main()
