"""The BFSI Customer 360 template end to end, as `flowforge demo` runs it: gold_customer_360
must equal an independent computation over the generated source data (duplicates collapsed,
unknown CRM rows excluded, sums exact to the cent)."""

import os
from decimal import Decimal

import duckdb
import pyarrow as pa
from rich.console import Console

from flowforge.demo import run_demo
from flowforge.demo_data import rows


def expected_gold(
    data, changed_email: tuple[int, str] | None = None, extra_tx=None
) -> dict[int, dict]:
    """gold_customer_360's business columns computed with plain SQL over the source rows."""
    customers = pa.Table.from_pylist([c._asdict() for c in data.customers])
    if changed_email:
        emails = [
            changed_email[1] if cid == changed_email[0] else e
            for cid, e in zip(
                customers["customer_id"].to_pylist(), customers["email"].to_pylist(), strict=True
            )
        ]
        customers = customers.set_column(
            customers.schema.get_field_index("email"), "email", pa.array(emails)
        )
    accounts = pa.Table.from_pylist([a._asdict() for a in data.accounts])
    transactions = pa.Table.from_pylist(
        [t._asdict() for t in (*data.transactions, *(extra_tx or []))]
    )
    crm = pa.Table.from_pylist([{**c._asdict(), "file_row": i} for i, c in enumerate(data.crm)])
    con = duckdb.connect()
    for name, table in (
        ("customers", customers),
        ("accounts", accounts),
        ("transactions", transactions),
        ("crm", crm),
    ):
        con.register(name, table)
    result = (
        con.sql("""
        WITH crm_latest AS (
            SELECT DISTINCT customer_id,
                   last_value(loyalty_tier IGNORE NULLS) OVER w AS loyalty_tier,
                   last_value(lifetime_value IGNORE NULLS) OVER w AS lifetime_value
            FROM crm WINDOW w AS (PARTITION BY customer_id ORDER BY file_row
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)),
        acc AS (SELECT customer_id, count(DISTINCT account_id) AS n, sum(balance) AS balance,
                       sum(credit_limit) AS credit FROM accounts GROUP BY customer_id),
        tx AS (SELECT a.customer_id, count(DISTINCT t.transaction_id) AS n, sum(t.amount) AS volume,
                      max(t.transaction_date) AS last_date
               FROM transactions t JOIN accounts a ON a.account_id = t.account_id
               GROUP BY a.customer_id)
        SELECT c.customer_id, trim(c.first_name) || ' ' || trim(c.last_name) AS full_name,
               lower(trim(c.email)) AS email,
               upper(left(trim(k.loyalty_tier), 1)) || lower(substring(trim(k.loyalty_tier), 2)) AS loyalty_tier,
               k.lifetime_value,
               coalesce(acc.n, 0) AS account_count, coalesce(acc.balance, 0) AS total_balance,
               coalesce(acc.credit, 0) AS total_credit_limit, coalesce(tx.n, 0) AS transaction_count,
               coalesce(tx.volume, 0) AS total_transaction_volume, tx.last_date AS last_transaction_date
        FROM customers c
        LEFT JOIN crm_latest k ON k.customer_id = c.customer_id
        LEFT JOIN acc ON acc.customer_id = c.customer_id
        LEFT JOIN tx ON tx.customer_id = c.customer_id
    """)
        .to_arrow_table()
        .to_pylist()
    )
    return {row["customer_id"]: row for row in result}


COMPARED = [
    "full_name",
    "email",
    "loyalty_tier",
    "lifetime_value",
    "account_count",
    "total_balance",
    "total_credit_limit",
    "transaction_count",
    "total_transaction_volume",
]


def assert_gold_matches(gold_rows: list[dict], expected: dict[int, dict]) -> None:
    got = {row["customer_id"]: row for row in gold_rows}
    assert set(got) == set(expected)  # one row per core customer; unknown CRM rows excluded
    for customer_id, want in expected.items():
        row = got[customer_id]
        for column in COMPARED:
            value, wanted = row[column], want[column]
            if isinstance(wanted, Decimal) or isinstance(value, Decimal):
                assert Decimal(value) == Decimal(wanted), (customer_id, column, value, wanted)
            else:
                assert value == wanted, (customer_id, column, value, wanted)
        last = want["last_transaction_date"]
        assert (row["last_transaction_date"] is None) == (last is None)
        if last is not None:
            assert row["last_transaction_date"].replace(tzinfo=None) == last.replace(tzinfo=None)


def test_bfsi_template_on_the_embedded_default(tmp_path):
    outcome = run_demo(data_dir=tmp_path, console=Console(file=open(os.devnull, "w")))
    first, second = outcome["first"], outcome["second"]
    assert first["status"] == "succeeded" and second["status"] == "succeeded"
    assert len(first["jobs"]) == 10
    data = rows()
    change = outcome["change"]
    assert_gold_matches(
        outcome["gold"],
        expected_gold(data, (change.customer_id, change.new_email), [change.transaction]),
    )
    rows_read = {job["name"]: job["rowsRead"] for job in second["jobs"]}
    assert rows_read["Ingest Core Banking Customers"] == 1
    assert rows_read["Ingest Accounts"] == 0
    assert rows_read["Ingest Transactions"] == 1

    assert_gold_matches(outcome["gold_first"], expected_gold(data))

    # A rerun without source changes leaves silver and gold with the same rows.
    from fastapi.testclient import TestClient

    from flowforge.app import create_app
    from tests.conftest import ADMIN_TOKEN, make_settings
    from tests.system.conftest import Platform

    settings = make_settings(tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:
        platform = Platform(client, settings.lake_root)
        silver = (
            platform.read("silver", "silver_customer_master")
            .drop("_ingested_at", "_source")
            .sort("customer_id")
        )
        gold = platform.read("gold", "gold_customer_360").sort("customer_id")
        again = platform.run(first["workflowId"])
        assert again["status"] == "succeeded", again
        assert all(job["rowsRead"] == 0 for job in again["jobs"][:3])
        assert (
            platform.read("silver", "silver_customer_master")
            .drop("_ingested_at", "_source")
            .sort("customer_id")
            .equals(silver)
        )
        assert platform.read("gold", "gold_customer_360").sort("customer_id").equals(gold)
    app.state.database.dispose()
    assert ADMIN_TOKEN


def test_bfsi_template_on_postgres_redis_workers_and_s3(
    tmp_path, fresh_postgres_url, moto_s3, monkeypatch
):
    """The same pipeline scaled out: PostgreSQL catalog, Redis broker with separate worker
    processes (events, two ingest, transform), the lake and landing area on S3. The catalog
    is the test's own: the template's tables have one owner job per catalog, and other tests
    of the session install jobs writing those names."""
    postgres_url = fresh_postgres_url
    from tests.conftest import ADMIN_TOKEN
    from tests.system.conftest import Cluster
    from tests.system.processes import RedisServer

    redis_server = RedisServer(tmp_path).start()
    broker = redis_server.url
    env = {
        "FLOWFORGE_DATA_DIR": str(tmp_path),
        "FLOWFORGE_DATABASE_URL": postgres_url,
        "FLOWFORGE_BROKER_URL": broker,
        "FLOWFORGE_STORAGE_URL": f"s3://{moto_s3['bucket']}/bfsi-{tmp_path.name}",
        "FLOWFORGE_S3_ENDPOINT_URL": moto_s3["endpoint"],
        "FLOWFORGE_S3_ACCESS_KEY_ID": "test",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": "test",
        "FLOWFORGE_S3_ALLOW_HTTP": "true",
        "FLOWFORGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "FLOWFORGE_AUTO_MIGRATE": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cluster = Cluster({**{k: v for k, v in os.environ.items()}, **env}, tmp_path)
    try:
        cluster.start_worker("events")
        cluster.start_worker("catalog")
        cluster.start_worker("ingest")
        cluster.start_worker("ingest")
        cluster.start_worker("transform")
        cluster.wait_ready()
        outcome = run_demo(stack=True, console=Console(file=open(os.devnull, "w")))
    finally:
        cluster.stop()
        redis_server.stop()
    assert outcome["second"]["status"] == "succeeded"
    change = outcome["change"]
    assert_gold_matches(
        outcome["gold"],
        expected_gold(rows(), (change.customer_id, change.new_email), [change.transaction]),
    )
