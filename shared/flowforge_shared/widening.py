"""Safe type changes of a Delta table's columns: a decimal with more digits, a wider integer,
float32 to float64.

Decimal precision guessed from one file, or an int32 a source later sends as int64, must not
lock a table: every value of the old type has an exact value of the wider one, so the table's
column is widened instead of the load failing. delta-rs 1.6 has no type widening table feature
(no ``ALTER COLUMN ... TYPE``, and a write with ``schema_mode="merge"`` refuses a changed
type), so :func:`widen_table` rewrites the table: its rows, cast, in one ``overwrite`` commit
with the new schema. Readers see the old table or the widened one, never a mix, and time travel
still finds the old versions. The commit carries ``flowforge.widened`` (what changed) and no
application transaction: it changes no value, so a retry of the run that made it finds the
table already wide and writes its rows as usual.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake

WIDENED_KEY = "flowforge.widened"
MAX_DECIMAL_PRECISION = 38  # Delta Lake's (and Spark's) widest decimal


SOURCE_TYPE_KEY = b"flowforge.source_type"
"""Field metadata of a column holding numbers as their exact text (connectors/arrowing.py)."""


def is_exact_number_text(field: pa.Field) -> bool:
    """A text column whose values are numbers of a source type no Delta decimal holds."""
    return pa.types.is_string(field.type) and SOURCE_TYPE_KEY in (field.metadata or {})


def wider_type(old: pa.DataType, new: pa.DataType | pa.Field) -> pa.DataType | None:
    """The type that holds every value of ``old`` and of ``new`` exactly, when going from
    ``old`` to it is a safe widening (``old`` itself when it holds ``new``); else None.

    ``new`` given as a field may be exact number text (:func:`is_exact_number_text`): a
    decimal column then becomes text, each stored value its exact decimal text (a table
    loaded before unconstrained numerics were read as text)."""
    if isinstance(new, pa.Field):
        if pa.types.is_decimal(old) and is_exact_number_text(new):
            return pa.string()
        new = new.type
    if old == new:
        return old
    if pa.types.is_signed_integer(old) and pa.types.is_signed_integer(new):
        return old if old.bit_width >= new.bit_width else new
    if pa.types.is_floating(old) and pa.types.is_floating(new):
        if pa.types.is_float16(old) or pa.types.is_float16(new):
            return None
        return old if old.bit_width >= new.bit_width else new
    if pa.types.is_decimal128(old) and pa.types.is_decimal128(new):
        scale = max(old.scale, new.scale)
        digits = max(old.precision - old.scale, new.precision - new.scale)
        if digits + scale > MAX_DECIMAL_PRECISION:
            return None
        return pa.decimal128(digits + scale, scale)
    return None


def describe_widening(column: str, old: pa.DataType, new: pa.DataType) -> str:
    return f"{column}: {_name(old)} -> {_name(new)}"


def _name(data_type: pa.DataType) -> str:
    if pa.types.is_decimal(data_type):
        return f"decimal({data_type.precision},{data_type.scale})"
    return str(data_type)


def widen_table(
    table: DeltaTable,
    widen: Mapping[str, pa.DataType | pa.Field],
    *,
    execution_id: str | None = None,
    what: str = "table",
) -> str:
    """Rewrite ``table`` with each column of ``widen`` in its wider type, in one commit;
    returns the note for the user (``what`` names the table in it)."""
    current = pa.schema(table.schema().to_arrow())
    fields = []
    changes = []
    for field in current:
        wanted = widen.get(field.name, field.type)
        metadata = dict(field.metadata or {})
        if isinstance(wanted, pa.Field):  # its metadata joins the column's (a source type)
            metadata.update(wanted.metadata or {})
            wanted = wanted.type
        if wanted != field.type:
            changes.append(describe_widening(field.name, field.type, wanted))
        fields.append(
            pa.field(field.name, wanted, nullable=field.nullable, metadata=metadata or None)
        )
    schema = pa.schema(fields, metadata=current.metadata)
    dataset = table.to_pyarrow_dataset()

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in dataset.to_batches():
            yield pa.RecordBatch.from_arrays(
                [batch.column(f.name).cast(f.type) for f in schema], schema=schema
            )

    custom = {WIDENED_KEY: json.dumps(changes)}
    if execution_id:
        custom["flowforge.execution_id"] = execution_id
    write_deltalake(
        table,
        pa.RecordBatchReader.from_batches(schema, batches()),
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=table.metadata().partition_columns or None,
        commit_properties=CommitProperties(custom_metadata=custom),
    )
    return f"{what} widened ({', '.join(changes)}): every stored value kept, in one commit"
