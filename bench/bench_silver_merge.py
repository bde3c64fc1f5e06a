"""Silver merge: upserting a change set into a large silver table, against merging it by hand
with delta-rs and against rewriting the table (issue 17, section 3).

A 1,000,000-row silver table is built with ``build_silver`` (mergeStrategy merge, primaryKey
id) from bronze-shaped rows (the five bronze audit columns included). Then three change sets
arrive, each applied on its own fresh copy of the table, alternating, best of 3:

- ``100k``: 100,000 changed rows, half updates of existing ids spread over the whole key
  range (every 20th id), half new ids;
- ``1k clustered``: 1,000 updates of consecutive ids in the middle of the key range;
- ``1k spread``: 1,000 updates spread over the whole key range (every 1,000th id).

Each is applied by:

- ``build_silver`` with mergeStrategy ``merge`` (what FlowForge does; checked against the
  expected rows once);
- the raw baseline: ``DeltaTable.merge`` called directly on the same rows (the change set
  without bronze's three bookkeeping columns, prepared untimed) with the plain key equality
  predicate, update all / insert all: ratio FlowForge / direct (target >= 0.95, i.e. FlowForge
  takes at most 1/0.95 of the direct merge's time);
- ``write_deltalake(mode="overwrite")`` of the whole result (computed beforehand, untimed):
  the raw cost of rewriting the table (a small change set should merge far cheaper);
- for ``100k`` also ``build_silver`` with mergeStrategy ``overwrite`` on all bronze rows (old
  load plus the changes): the full rebuild a user gets without merge (dedupe included).

Files rewritten per merge are read from the merge commit of the Delta log (its ``remove`` and
``add`` actions), next to the table's file count. ``FLOWFORGE_BENCH_SCALE`` scales the row
counts. Tables go to ``bench/.out/silver_merge``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from bench._common import check, line, out_dir, scaled, timed

BASE_ROWS = 1_000_000
CHANGED_ROWS = 100_000
SMALL_ROWS = 1_000
REPEATS = 5
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


def silver_rows(changes: pa.Table) -> pa.Table:
    """The change set as a direct merge takes it: without bronze's bookkeeping columns."""
    return changes.drop_columns(["_execution_id", "_job_id", "_source_row"])


def direct_merge(uri: str, rows: pa.Table, predicate: str = 'target."id" = source."id"') -> dict:
    """The raw baseline: delta-rs's merge on the key, called directly."""
    from deltalake import DeltaTable

    return (
        DeltaTable(uri)
        .merge(
            rows,
            predicate=predicate,
            source_alias="source",
            target_alias="target",
            merge_schema=True,
        )
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )


def files_of_last_commit(uri: str) -> tuple[int, int]:
    """(files removed, files added) by the table's latest commit, from its Delta log entry."""
    from deltalake import DeltaTable

    version = DeltaTable(uri).version()
    entry = Path(uri) / "_delta_log" / f"{version:020d}.json"
    removed = added = 0
    for text in entry.read_text().splitlines():
        action = json.loads(text)
        removed += "remove" in action
        added += "add" in action
    return removed, added


def data_files(uri: str) -> int:
    from deltalake import DeltaTable

    return len(DeltaTable(uri).file_uris())


def _copy(base: Path, to: Path) -> Path:
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(base, to)
    return to


def _runs(values: list[float]) -> str:
    return f"best of {len(values)}; all {', '.join(f'{v:.3f}' for v in values)}"


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def compare(
    name: str,
    work: Path,
    base: Path,
    base_table: pa.Table,
    changes: pa.Table,
    *,
    rebuild_input: pa.Table | None = None,
) -> None:
    """Applies ``changes`` to fresh copies of ``base`` every way, alternating; prints it."""
    from deltalake import DeltaTable, write_deltalake

    result = expected_result(base_table, changes)
    direct_rows = silver_rows(changes)
    from flowforge_transform.silver import merge_predicate

    uri_of = lambda lake: str(lake / "silver" / TABLE)  # noqa: E731
    ranged = merge_predicate(direct_rows, ["id"], DeltaTable(uri_of(base)))
    times: dict[str, list[float]] = {
        "merge": [],
        "direct": [],
        "ranged": [],
        "rewrite": [],
        "rebuild": [],
    }
    files: dict[str, tuple[int, int]] = {}

    def flowforge(attempt: int) -> None:
        lake = _copy(base, work / f"merge-{attempt}")
        seconds, merged = timed(build, lake, changes, "merge", 2)
        assert merged.row_count == result.num_rows, merged
        assert merged.rows_written == changes.num_rows, merged
        times["merge"].append(seconds)
        files["merge"] = files_of_last_commit(uri_of(lake))
        if attempt == 0:
            _check_content(lake / "silver" / TABLE, result)
            files["table"] = (data_files(uri_of(base)), data_files(uri_of(lake)))

    def direct(attempt: int) -> None:
        lake = _copy(base, work / f"direct-{attempt}")
        seconds, _ = timed(direct_merge, uri_of(lake), direct_rows)
        assert DeltaTable(uri_of(lake)).count() == result.num_rows
        times["direct"].append(seconds)
        files["direct"] = files_of_last_commit(uri_of(lake))

    def direct_ranged(attempt: int) -> None:
        lake = _copy(base, work / f"ranged-{attempt}")
        seconds, _ = timed(direct_merge, uri_of(lake), direct_rows, ranged)
        assert DeltaTable(uri_of(lake)).count() == result.num_rows
        times["ranged"].append(seconds)
        files["ranged"] = files_of_last_commit(uri_of(lake))

    for attempt in range(REPEATS):
        # Alternating which merge goes first: the first after a copy may pay for a cold cache.
        order = [flowforge, direct, direct_ranged]
        for run in order if attempt % 2 == 0 else reversed(order):
            run(attempt)

        lake = _copy(base, work / f"rewrite-{attempt}")
        seconds, _ = timed(write_deltalake, uri_of(lake), result, mode="overwrite")
        assert DeltaTable(uri_of(lake)).count() == result.num_rows
        times["rewrite"].append(seconds)

        if rebuild_input is not None:
            lake = _copy(base, work / f"rebuild-{attempt}")
            seconds, rebuilt = timed(build, lake, rebuild_input, "overwrite", 2)
            assert rebuilt.row_count == result.num_rows, rebuilt
            times["rebuild"].append(seconds)
        for kind in ("merge", "direct", "ranged", "rewrite", "rebuild"):
            shutil.rmtree(work / f"{kind}-{attempt}", ignore_errors=True)

    best = {kind: min(values) for kind, values in times.items() if values}
    print(f"  -- {name}: {changes.num_rows:,} changed rows ({_load()})", flush=True)
    before, after = files["table"]
    line(
        "build_silver merge",
        f"{best['merge']:.3f} s  ({_runs(times['merge'])}); files removed/added "
        f"{files['merge'][0]}/{files['merge'][1]} of {before} (table then has {after})",
    )
    line(
        "DeltaTable.merge called directly",
        f"{best['direct']:.3f} s  ({_runs(times['direct'])}); files removed/added "
        f"{files['direct'][0]}/{files['direct'][1]}  [raw baseline]",
    )
    line(
        "DeltaTable.merge with FlowForge's predicate",
        f"{best['ranged']:.3f} s  ({_runs(times['ranged'])}); files removed/added "
        f"{files['ranged'][0]}/{files['ranged'][1]}  [information: {'join + key range' if '>=' in ranged else 'join only: no file outside the range'}]",
    )
    line(
        "write_deltalake overwrite of the result",
        f"{best['rewrite']:.3f} s  ({result.num_rows:,} rows; {_runs(times['rewrite'])})",
    )
    if "rebuild" in best:
        line(
            "build_silver overwrite (full rebuild)",
            f"{best['rebuild']:.3f} s  ({rebuild_input.num_rows:,} input rows; "
            f"{_runs(times['rebuild'])})",
        )
    ratio = best["direct"] / best["merge"]
    check(
        f"{name}: direct merge / FlowForge merge",
        f"{ratio:.2f}x (FlowForge at {best['merge'] / best['direct']:.2f}x the direct time)",
        ok=ratio >= 0.95,
        target=">= 0.95x",
    )
    line(
        f"{name}: FlowForge merge / direct with its predicate",
        f"{best['merge'] / best['ranged']:.2f} (FlowForge's work around the merge)",
    )
    line(f"{name}: merge / raw rewrite", f"{best['merge'] / best['rewrite']:.2f}")
    if "rebuild" in best:
        line(f"{name}: merge / build_silver overwrite", f"{best['merge'] / best['rebuild']:.2f}")


def main() -> None:
    from deltalake import DeltaTable

    base_rows, changed = scaled(BASE_ROWS), scaled(CHANGED_ROWS, minimum=100)
    small = scaled(SMALL_ROWS, minimum=10)
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

    def change_set(ids: list[int]) -> pa.Table:
        return bronze_rows(
            pa.array(ids, pa.int64()),
            version=1,
            ingested_at=datetime(2024, 1, 2, tzinfo=UTC),
            source="customers-2024-01-02.csv",
            execution_id=str(uuid.uuid4()),
        )

    step = max(1, base_rows // updates)
    updated_ids = list(range(1, base_rows + 1, step))[:updates]
    new_ids = list(range(base_rows + 1, base_rows + inserts + 1))
    changes = change_set(updated_ids + new_ids)

    base = work / "base"
    print(f"  ({_load()})", flush=True)
    seconds, created = timed(build, base, initial, "merge", 1)
    uri = str(base / "silver" / TABLE)
    line(
        "initial build_silver (creates the table)",
        f"{created.row_count:,} rows in {seconds:.2f} s, {data_files(uri)} data file(s)",
    )
    base_table = DeltaTable(uri).to_pyarrow_table()
    assert expected_result(base_table, changes).num_rows == base_rows + inserts
    line(
        "change set 100k",
        f"{changes.num_rows:,} rows: {updates:,} updates (every {step}th id), {inserts:,} new ids",
    )
    compare(
        "100k",
        work,
        base,
        base_table,
        changes,
        rebuild_input=pa.concat_tables([initial, changes]),
    )
    middle = base_rows // 2
    compare("1k clustered", work, base, base_table, change_set(list(range(middle, middle + small))))
    spread = max(1, base_rows // small)
    compare("1k spread", work, base, base_table, change_set(list(range(1, base_rows + 1, spread))))
    shutil.rmtree(work)
    from bench._common import report  # the SUMMARY's figures (bench/README.md)

    report(
        __name__,
        lines=(
            "100k: merge / raw rewrite",
            "1k clustered: merge / raw rewrite",
            "1k spread: merge / raw rewrite",
        ),
    )
