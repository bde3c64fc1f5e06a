"""A CSV ingest job end to end (execute_job + run_ingest_job, as a worker runs it): every row
of the file lands, typed; the types read from the first block are checked on all of it; and
what the job relies on to read a table's log once: the snapshot a write hands back is the
table as of its own commit, even when another writer committed first."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from decimal import Decimal
from pathlib import Path

import deltalake
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from flowforge_ingest.bronze import AuditContext, write_bronze
from flowforge_ingest.csv_source import read_csv_batches
from flowforge_ingest.errors import MalformedRowError
from flowforge_ingest.runner import run_ingest_job
from flowforge_runtime.job import JobContext, LocalCancelFlags, execute_job
from flowforge_shared.contracts.tasks import JobTask
from flowforge_shared.lake import Lake, output_dataset
from flowforge_shared.settings import Settings
from tests.ingest.conftest import ArrowSource, file_config

ROWS = 25_000  # more than the 10,000 rows types are inferred from, in several 1 MiB blocks
COLUMNS = ["id", "amount", "day", "at", "name", "note", "referrer"]


class Sink:
    def __init__(self) -> None:
        self.events: list[dict] = []

    def emit(self, event: dict) -> None:
        self.events.append(event)

    def heartbeat(self, beat: dict) -> None:
        pass


def file_text(rows: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i in range(1, rows + 1):
        writer.writerow(
            [
                i,
                f"{(i * 7919) % 100_000 // 100}.{i % 100:02d}",
                (dt.date(2020, 1, 1) + dt.timedelta(days=i % 1500)).isoformat(),
                (dt.datetime(2023, 1, 1) + dt.timedelta(seconds=i * 37)).isoformat(sep=" "),
                f"customer, number {i}" if i % 3 else f'say "hi" {i}',
                "" if i % 11 == 0 else f"note {i % 50}",
                "" if i % 10 < 3 else (i * 13) % 5_000,
            ]
        )
    return out.getvalue()


def expected_rows(text: str) -> set[tuple]:
    """The file's rows read with Python's csv module and typed by hand, as they should land
    (an empty field is null)."""
    rows = set()
    for number, record in enumerate(csv.DictReader(io.StringIO(text)), 1):
        rows.add(
            (
                number,
                int(record["id"]),
                Decimal(record["amount"]),
                dt.date.fromisoformat(record["day"]),
                dt.datetime.fromisoformat(record["at"]),
                record["name"],
                record["note"] or None,
                int(record["referrer"]) if record["referrer"] else None,
            )
        )
    return rows


def run_job(data_dir: Path, table: str, run_sequence: int = 1) -> tuple[str, Sink]:
    settings = Settings(data_dir=data_dir)
    task = JobTask(
        execution_id=str(uuid.uuid4()),
        run_sequence=run_sequence,
        job_run_id=str(uuid.uuid4()),
        job_id=f"job-{table}",
        workflow_id="w",
        workflow_name="w",
        job={
            "name": table,
            "type": "file-based",
            "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "data.csv"}},
            "destinationConfig": {"bronzeConfig": {"tableName": table}},
        },
    )
    sink = Sink()
    context = JobContext(
        task=task,
        attempt=1,
        settings=settings,
        lake=Lake.from_settings(settings),
        sink=sink,
        cancel_flags=LocalCancelFlags(),
    )
    return execute_job(context, run_ingest_job, final_attempt=True), sink


def result_facet(sink: Sink) -> dict:
    [complete] = [event for event in sink.events if event["eventType"] == "COMPLETE"]
    return complete


def test_a_csv_job_lands_every_row_of_the_file_typed(tmp_path):
    text = file_text(ROWS)
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "data.csv").write_text(text)

    outcome, sink = run_job(tmp_path, "orders")

    assert outcome == "succeeded"
    landed = DeltaTable(str(tmp_path / "lake" / "bronze" / "orders")).to_pyarrow_table()
    assert landed.schema.field("amount").type == pa.decimal128(18, 2)
    assert landed.schema.field("day").type == pa.date32()
    assert landed.schema.field("at").type == pa.timestamp("us")
    assert landed.schema.field("referrer").type == pa.int64()
    got = set(zip(*(landed.column(n).to_pylist() for n in ["_source_row", *COLUMNS]), strict=True))
    assert len(got) == landed.num_rows == ROWS
    assert got == expected_rows(text)
    complete = result_facet(sink)
    assert complete["run"]["facets"]["flowforge_result"]["rowsWritten"] == ROWS
    [output] = complete["outputs"]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == ROWS


def test_a_job_reads_the_table_log_once_and_reports_its_own_commit(tmp_path, monkeypatch):
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "data.csv").write_text(file_text(100))
    assert run_job(tmp_path, "orders", run_sequence=1)[0] == "succeeded"
    loads = []
    original = deltalake.DeltaTable.__init__

    def counted(self, *args, **kwargs):
        loads.append(args[0] if args else kwargs.get("table_uri"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(deltalake.DeltaTable, "__init__", counted)
    # The whole job as a worker runs it: the write, its description, the orphan-file
    # clean-up and the table maintenance after it.
    outcome, sink = run_job(tmp_path, "orders", run_sequence=2)
    monkeypatch.undo()

    assert outcome == "succeeded"
    uri = Lake.from_settings(Settings(data_dir=tmp_path)).uri("bronze", "orders")
    assert loads == [uri]  # once, before the write
    [output] = result_facet(sink)["outputs"]
    fresh = DeltaTable(uri)
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == fresh.count() == 200
    assert output["facets"]["version"]["datasetVersion"] == str(fresh.version()) == "2"


def test_the_snapshot_a_write_hands_back_is_its_own_commit_after_another_writer(lake):
    """write_bronze relies on write_deltalake bringing the snapshot it wrote against to the
    version it committed, rebased over a commit another writer made in between."""
    first = pa.table({"id": [1, 2]})
    write_bronze(lake, "t", ArrowSource(first), audit=None, app_id="job-1", run_sequence=1)

    class Interleaved(ArrowSource):
        def __iter__(self):
            # Another writer (not this job) appends while this write streams.
            write_deltalake(lake.uri("bronze", "t"), pa.table({"id": [99]}), mode="append")
            yield from super().__iter__()

    result = write_bronze(
        lake,
        "t",
        Interleaved(pa.table({"id": [3, 4, 5]})),
        audit=AuditContext(execution_id="e2", job_id="job-1", source="s"),
        app_id="job-1",
        run_sequence=2,
    )

    fresh = DeltaTable(lake.uri("bronze", "t"))
    assert result.version == fresh.version() == 3  # create, run 1, the other writer, run 2
    assert result.table is not None and result.table.version() == 3
    assert result.table.transaction_version("job-1") == 2
    described = output_dataset(lake, "bronze", "t", current=result.table)
    assert (described.version, described.row_count) == (3, 6)
    assert result.absent_columns == frozenset()


def test_a_value_past_the_sample_that_breaks_the_type_types_the_column_from_the_whole_block(
    write_csv,
):
    lines = ["id,code"] + [f"{i},{i * 2}" for i in range(1, 20_001)]
    lines[15_000] = "15000,A-17"  # past the 10,000 rows the type is inferred from
    path = write_csv("data.csv", "\n".join(lines) + "\n")
    batches = read_csv_batches(path, file_config())
    assert batches.schema.field("code").type == pa.string()
    table = pa.Table.from_batches(list(batches))
    assert table.num_rows == 20_000 and batches.quarantined == []
    assert table.column("code").to_pylist()[14_999] == "A-17"
    assert table.column("code").to_pylist()[0] == "2"


def test_bytes_past_the_sample_that_are_not_text_make_a_string_column_and_a_malformed_row(
    write_csv,
):
    lines = [b"id,code"] + [f"{i},{i * 2}".encode() for i in range(1, 20_001)]
    lines[15_000] = b"15000,7\xff7"
    path = write_csv("data.csv", b"\n".join(lines) + b"\n")
    batches = read_csv_batches(path, file_config())
    assert batches.schema.field("code").type == pa.string()
    with pytest.raises(MalformedRowError, match=r"row 15000 after the header, column 'code'"):
        list(batches)
