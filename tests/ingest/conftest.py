"""Fixtures of the ingest tests: a lake in tmp_path, CSV files written byte for byte, an
in-memory batch source, and an independent reader of Delta tables (deltalake's own, never
the code under test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from flowforge_shared.contracts.jobs import FileConfig
from flowforge_shared.lake import Lake


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(root=str(tmp_path / "lake"))


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    root.mkdir()
    return root


@pytest.fixture
def write_csv(landing: Path) -> Callable[..., Path]:
    """write_csv(name, text, encoding="utf-8") -> path; bytes are written as given."""

    def write(name: str, text: str | bytes, encoding: str = "utf-8") -> Path:
        path = landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
        return path

    return write


def file_config(**values) -> FileConfig:
    return FileConfig(file_path="data.csv", **values)


def read_table(lake: Lake, table: str) -> pa.Table:
    """The table as an independent reader sees it, sorted by every column it has in common
    with the CSV rows (Delta gives no row order)."""
    data = DeltaTable(lake.uri("bronze", table)).to_pyarrow_table()
    keys = [name for name in ("_source_row", "id") if name in data.column_names]
    return data.sort_by([(key, "ascending") for key in keys]) if keys else data


def table_version(lake: Lake, table: str) -> int | None:
    uri = lake.uri("bronze", table)
    return DeltaTable(uri).version() if DeltaTable.is_deltatable(uri) else None


def data_commits(lake: Lake, table: str) -> int:
    """Commits that wrote rows (not the empty table a first load creates before writing)."""
    uri = lake.uri("bronze", table)
    if not DeltaTable.is_deltatable(uri):
        return 0
    history = DeltaTable(uri).history()
    return sum(1 for entry in history if entry.get("operation") != "CREATE TABLE")


class ArrowSource:
    """A BatchSource over in-memory batches (what a database reader would hand over)."""

    def __init__(self, table: pa.Table, batch_rows: int = 2) -> None:
        self.schema = table.schema
        self._batches = table.to_batches(max_chunksize=batch_rows)
        self.iterated = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            self.iterated += 1
            yield batch
