"""What an incremental database job cannot guarantee as configured, said when it is saved.

An incremental run reads ``watermark <= delta <= upper``: the rows whose delta value equals the
last run's maximum are read again, so that a row committed later with that same value (a tie)
is never lost. With a key — ``databaseConfig.uniqueKey``, else the source table's primary key —
the rows bronze already holds are dropped by (key, delta) and each row version is loaded once.
Without one they cannot be told from new rows. The catalog cannot see the source's primary key
when a job is saved (that needs the source), so the warning is given whenever ``uniqueKey`` is
not set; for a query it is certain, for a table it holds only if the table has no primary key.

These are warnings, not errors: the job is saved and runs; nothing is lost either way.
"""

from __future__ import annotations

from flowforge_shared.contracts.jobs import DatabaseSource, JobConfig

_WITHOUT_KEY = (
    "each run reads again the rows whose {delta} equals the last run's maximum, so that a row "
    "committed later with that same value is not lost; without a key those rows cannot be told "
    "from new ones and are loaded into bronze twice when newer rows come too (a silver merge on "
    "the key absorbs them), and a lookback (FLOWFORGE_INCREMENTAL_LOOKBACK_SECONDS or _ROWS, for "
    "rows committed late with an older {delta}) cannot be used: such rows are missed. Set "
    "uniqueKey to the columns that identify a row"
)


def incremental_warnings(job: JobConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """(field path in camelCase, message) of what the job's incremental load may get wrong."""
    source = job.source_config
    if not isinstance(source, DatabaseSource):
        return []
    config = source.database_config
    if not config.is_incremental or not config.delta_column or config.unique_key:
        return []
    reason = _WITHOUT_KEY.format(delta=config.delta_column)
    if config.table_name:
        message = (
            "uniqueKey is not set: the source table's primary key is used, looked up when the "
            f"job runs. If {config.table_name} has none, {reason}"
        )
    else:
        message = f"no key is known for a query: {reason}"
    return [(("sourceConfig", "databaseConfig", "uniqueKey"), message)]
