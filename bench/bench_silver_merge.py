"""Silver merge: upserting a small change set into a large silver table, against rewriting it.

A 1,000,000-row silver table is built with ``build_silver`` (mergeStrategy merge, primaryKey
id) from bronze-shaped rows (the five bronze audit columns included). Then 100,000 changed
rows arrive — half update existing ids (spread over the whole key range, every 20th id), half
are new ids — and are applied three ways, each on its own copy of the table:

- ``build_silver`` with mergeStrategy ``merge`` on the 100,000 rows (what FlowForge does);
- ``write_deltalake(mode="overwrite")`` of the whole result (1,050,000 rows, computed
  beforehand and not timed): the raw cost of rewriting the table;
- ``build_silver`` with mergeStrategy ``overwrite`` on all 1,100,000 bronze rows (old load
  plus the changes): the full rebuild a user gets without merge (dedupe included).

Printed: the times (best of a few alternating runs) and the ratios merge / rewrite. There is
no fixed target; a ratio at or above 1 means the merge costs as much as rewriting the table.
``FLOWFORGE_BENCH_SCALE`` scales the row counts. Tables go to ``bench/.out/silver_merge``.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from bench._common import line, out_dir, scaled, timed

BASE_ROWS = 1_000_000
CHANGED_ROWS = 100_000
REPEATS = 3
TABLE = "customers"
APP_ID = "flowforge-job-bench-silver"
_STATUSES = ["active", "dormant", "closed", "pending", "review"]


def bronze_rows(
    ids: pa.Array, *, version: int, ingested_at: datetime, source: str, execution_id: str
) -> pa.Table:
    """Rows as the bronze writer leaves them: data columns, then the five audit columns."""
    count = len(ids)
    ids = pc.cast(ids, pa.int64())
    cents = pc.bit_wise_and(pc.add(pc.multiply(ids, 7_919 + version), version * 101), 0xFFFFFF)
    whole = pc.divide(cents, 100)  # integer division
    fraction = pc.subtract(cents, pc.multiply(whole, 100))
    amount_text = pc.binary_join_element_wise(
        pc.cast(whole, pa.string()), pc.utf8_lpad(pc.cast(fraction, pa.string()), 2, "0"), "."
    )
    status_index = pc.bit_wise_and(pc.add(ids, version), 3)
    return pa.table(
        {
            "id": ids,
            "customer_id": pc.bit_wise_and(pc.multiply(ids, 31), 0xFFFF),
            "amount": pc.cast(amount_text, pa.decimal128(18, 2)),
            "status": pc.take(pa.array(_STATUSES), status_index),
            "email": pc.binary_join_element_wise(
                pa.repeat(pa.scalar("user"), count), pc.cast(ids, pa.string()), "@example.com", ""
            ),
            "updated_at": pa.repeat(pa.scalar(ingested_at, pa.timestamp("us", "UTC")), count),
            "_ingested_at": pa.repeat(pa.scalar(ingested_at, pa.timestamp("us", "UTC")), count),
            "_execution_id": pa.repeat(pa.scalar(execution_id), count),
            "_job_id": pa.repeat(pa.scalar("bench-ingest-job"), count),
            "_source": pa.repeat(pa.scalar(source), count),
            "_source_row": pa.array(range(1, count + 1), pa.int64()),
        }
    )


def silver_config(strategy: str):
    from flowforge_shared.contracts.jobs import SilverConfig

    return SilverConfig.model_validate(
        {"tableName": TABLE, "mergeStrategy": strategy, "primaryKey": "id"}
    )


def build(lake_root: Path, rows: pa.Table, strategy: str, run_sequence: int):
    from flowforge_shared.lake import Lake
    from flowforge_transform.silver import build_silver

    return build_silver(
        Lake(root=str(lake_root)),
        rows,
        silver_config(strategy),
        None,
        None,
        app_id=APP_ID,
        run_sequence=run_sequence,
        execution_id=str(uuid.uuid4()),
    )


def expected_result(base_table: pa.Table, changes: pa.Table) -> pa.Table:
    """The table after the upsert, computed independently of build_silver."""
    dropped = [c for c in ("_execution_id", "_job_id", "_source_row") if c in changes.column_names]
    changes = changes.drop_columns(dropped).select(base_table.column_names)
    kept = base_table.filter(pc.invert(pc.is_in(base_table.column("id"), changes.column("id"))))
    return pa.concat_tables([kept, changes.cast(base_table.schema)])


def _check_content(uri: Path, expected: pa.Table) -> None:
    """The merged table holds exactly the expected rows (read back by delta-rs directly)."""
    from deltalake import DeltaTable

    actual = DeltaTable(str(uri)).to_pyarrow_table().select(expected.column_names)
    actual = actual.sort_by("id").cast(expected.schema)
    if not actual.equals(expected.sort_by("id")):
        raise AssertionError(f"the merged silver table at {uri} differs from the expected rows")


def _copy(base: Path, to: Path) -> Path:
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(base, to)
    return to


def main() -> None:
    from deltalake import DeltaTable, write_deltalake

    base_rows, changed = scaled(BASE_ROWS), scaled(CHANGED_ROWS, minimum=100)
    updates, inserts = changed // 2, changed - changed // 2
    work = out_dir("silver_merge", fresh=True)
    first_load = datetime(2024, 1, 1, tzinfo=UTC)
    initial = bronze_rows(
        pa.array(range(1, base_rows + 1), pa.int64()),
        version=0,
        ingested_at=first_load,
        source="customers-2024-01-01.csv",
        execution_id=str(uuid.uuid4()),
    )
    step = max(1, base_rows // updates)
    updated_ids = list(range(1, base_rows + 1, step))[:updates]
    new_ids = list(range(base_rows + 1, base_rows + inserts + 1))
    changes = bronze_rows(
        pa.array(updated_ids + new_ids, pa.int64()),
        version=1,
        ingested_at=datetime(2024, 1, 2, tzinfo=UTC),
        source="customers-2024-01-02.csv",
        execution_id=str(uuid.uuid4()),
    )

    base = work / "base"
    seconds, created = timed(build, base, initial, "merge", 1)
    uri = str(base / "silver" / TABLE)
    line(
        "initial build_silver (creates the table)",
        f"{created.row_count:,} rows in {seconds:.2f} s",
    )
    result = expected_result(DeltaTable(uri).to_pyarrow_table(), changes)
    expected_rows = base_rows + inserts
    assert result.num_rows == expected_rows, (result.num_rows, expected_rows)
    everything = pa.concat_tables([initial, changes])
    line(
        "change set",
        f"{changes.num_rows:,} rows: {updates:,} updates (every {step}th id), {inserts:,} new ids",
    )

    merges: list[float] = []
    rewrites: list[float] = []
    rebuilds: list[float] = []
    for attempt in range(REPEATS):
        lake = _copy(base, work / f"merge-{attempt}")
        seconds, merged = timed(build, lake, changes, "merge", 2)
        assert merged.row_count == expected_rows, merged
        assert merged.rows_written == changes.num_rows, merged
        merges.append(seconds)
        if attempt == 0:
            _check_content(lake / "silver" / TABLE, result)

        lake = _copy(base, work / f"rewrite-{attempt}")
        target = str(lake / "silver" / TABLE)
        seconds, _ = timed(write_deltalake, target, result, mode="overwrite")
        assert DeltaTable(target).count() == expected_rows
        rewrites.append(seconds)

        lake = _copy(base, work / f"rebuild-{attempt}")
        seconds, rebuilt = timed(build, lake, everything, "overwrite", 2)
        assert rebuilt.row_count == expected_rows, rebuilt
        rebuilds.append(seconds)
        for name in ("merge", "rewrite", "rebuild"):
            shutil.rmtree(work / f"{name}-{attempt}")

    merge, rewrite, rebuild = min(merges), min(rewrites), min(rebuilds)

    def runs(values: list[float]) -> str:
        return f"best of {REPEATS}; all {', '.join(f'{v:.2f}' for v in values)}"

    line(
        "build_silver merge of the change set",
        f"{merge:.2f} s  ({runs(merges)})",
    )
    line(
        "write_deltalake overwrite of the result",
        f"{rewrite:.2f} s  ({expected_rows:,} rows; {runs(rewrites)})  [raw baseline]",
    )
    line(
        "build_silver overwrite (full rebuild)",
        f"{rebuild:.2f} s  ({everything.num_rows:,} input rows; {runs(rebuilds)})",
    )
    line("ratio merge / raw rewrite", f"{merge / rewrite:.2f}")
    line("ratio merge / build_silver overwrite", f"{merge / rebuild:.2f}")
    shutil.rmtree(work)
    from bench._common import report  # the SUMMARY's figures (bench/README.md)

    report(__name__, lines=("ratio merge /",))
