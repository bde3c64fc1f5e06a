"""The BFSI demo data generator: the same bytes on every run, exact counts, the dirt the
README documents, and every rendering read back independently — the PostgreSQL and MySQL
scripts loaded into fresh databases on the real servers, the SQLite file opened with sqlite3,
the T-SQL script parsed by sqlglot, the CSV read with the csv module — and compared with the
in-memory rows."""

from __future__ import annotations

import csv
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from flowforge.demo_data import (
    AS_OF,
    FILE_NAMES,
    DemoDataError,
    apply_changes,
    generate,
    main,
    quote_text,
    rows,
)
from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[2]
PHONE_PATTERNS = {
    "(212) 555-0147": r"\(\d{3}\) \d{3}-\d{4}",
    "212-555-0147": r"\d{3}-\d{3}-\d{4}",
    "212.555.0147": r"\d{3}\.\d{3}\.\d{4}",
    "+1 212 555 0147": r"\+1 \d{3} \d{3} \d{4}",
    "2125550147": r"\d{10}",
}
KEYS = {"customers": "customer_id", "accounts": "account_id", "transactions": "transaction_id"}


@pytest.fixture(scope="module")
def data():
    return rows()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("demo-data"))


def read_crm_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def measure(data, crm_rows: list[dict]) -> dict[str, int]:
    """Every documented count, measured from the rows (and the CSV) by this test's own rules."""
    customers, accounts = data.customers, data.accounts
    known = {c.customer_id for c in customers}
    crm_ids = Counter(int(row["customer_id"]) for row in crm_rows)

    def messy(text: str | None) -> bool:
        return text is not None and text != text.strip()

    counts = {
        "customers": len(customers),
        "accounts": len(accounts),
        "transactions": len(data.transactions),
        "crm_customers": len(crm_rows),
        "customers_messy_names_emails": sum(
            messy(c.first_name) or messy(c.last_name) or messy(c.email) for c in customers
        ),
        "customers_null_email": sum(c.email is None for c in customers),
        "customers_null_phone": sum(c.phone is None for c in customers),
        "credit_accounts_null_limit": sum(
            a.account_type == "credit" and a.credit_limit is None for a in accounts
        ),
        "closed_accounts_with_balance": sum(
            a.status == "closed" and a.balance != 0 for a in accounts
        ),
        "crm_duplicate_rows": sum(n - 1 for n in crm_ids.values()),
        "crm_unknown_customers": sum(n for i, n in crm_ids.items() if i not in known),
        "crm_never_contacted": sum(row["last_contact_date"] == "" for row in crm_rows),
        "customers_without_crm_row": len(known - set(crm_ids)),
    }
    for name, pattern in PHONE_PATTERNS.items():
        counts[name] = sum(bool(c.phone and re.fullmatch(pattern, c.phone)) for c in customers)
    counts.update(Counter(a.status for a in accounts))
    return counts


def readme_counts() -> dict[str, int]:
    text = (REPO / "demo-data" / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"^\| `([^`]+)` \| ([\d,]+) \|", text, flags=re.MULTILINE)
    return {key: int(count.replace(",", "")) for key, count in found}


# --- determinism and counts ----------------------------------------------------------------


def test_the_command_writes_the_same_bytes_as_the_first_run(files, tmp_path):
    completed = subprocess.run(
        [sys.executable, str(REPO / "demo-data" / "generate.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILE_NAMES.values())
    for path in files.paths():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_generating_again_replaces_the_files_with_identical_ones(files, tmp_path):
    first = generate(tmp_path)
    before = {p.name: p.read_bytes() for p in first.paths()}
    first.sqlite.write_bytes(b"stale")
    generate(tmp_path)
    assert {p.name: p.read_bytes() for p in first.paths()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILE_NAMES.values())


def test_rows_and_files_have_the_documented_counts(data, files):
    documented = readme_counts()
    expected = {
        t: documented[t] for t in ("customers", "accounts", "transactions", "crm_customers")
    }
    assert expected == {
        "customers": 500,
        "accounts": 750,
        "transactions": 5000,
        "crm_customers": 500,
    }
    assert data.counts() == expected
    assert files.counts == expected
    assert len(read_crm_csv(files.crm_csv)) == 500


def test_every_documented_count_is_what_the_data_holds(data, files):
    documented = readme_counts()
    measured = measure(data, read_crm_csv(files.crm_csv))
    assert measured == documented
    assert len(documented) == 4 + 9 + 5 + 4  # rows, dirt, phone formats, statuses


def test_scale_multiplies_every_count_and_keeps_ids_unique():
    data = rows(scale=2)
    crm = [
        {"customer_id": str(r.customer_id), "last_contact_date": r.last_contact_date or ""}
        for r in data.crm
    ]
    assert measure(data, crm) == {key: 2 * count for key, count in readme_counts().items()}
    for table, key in KEYS.items():
        ids = [getattr(row, key) for row in getattr(data, table)]
        assert len(set(ids)) == len(ids), table
    assert len({r.crm_id for r in data.crm}) == len(data.crm)


def test_another_seed_gives_other_rows_of_the_same_shape(data):
    other = rows(seed=7)
    assert other.counts() == data.counts()
    assert [c.email for c in other.customers] != [c.email for c in data.customers]


def test_a_scale_below_one_is_refused_with_its_name(capsys):
    with pytest.raises(ValueError, match="scale must be a whole number of at least 1, not 0"):
        rows(scale=0)
    with pytest.raises(SystemExit):
        main(["--scale", "0"])
    assert "--scale must be at least 1" in capsys.readouterr().err


# --- the values themselves -----------------------------------------------------------------


def test_values_are_realistic_and_consistent(data):
    customers = {c.customer_id: c for c in data.customers}
    accounts = {a.account_id: a for a in data.accounts}
    for c in data.customers:
        assert re.fullmatch(r"\d{5}", c.zip) and re.fullmatch(r"[A-Z]{2}", c.state)
        assert re.fullmatch(r"\d{4}", c.ssn_last4)
        assert c.dob < c.account_open_date < AS_OF.date()
        if c.email and c.email == c.email.strip():
            assert re.fullmatch(r"[a-z0-9._]+@[a-z.]+\.(com|net)", c.email), c.email
    for a in data.accounts:
        assert a.customer_id in customers
        assert a.open_date >= customers[a.customer_id].account_open_date
        if a.account_type != "credit":
            assert a.credit_limit is None
    for t in data.transactions:
        assert t.account_id in accounts
        assert accounts[t.account_id].open_date <= t.transaction_date.date()
        assert t.transaction_date < t.modified_date
        assert t.amount > 0
        assert (t.merchant is None) == (t.type not in ("purchase", "refund"))
    every_money = [a.balance for a in data.accounts] + [t.amount for t in data.transactions]
    every_money += [a.credit_limit for a in data.accounts if a.credit_limit is not None]
    every_money += [r.lifetime_value for r in data.crm]
    assert all(isinstance(m, Decimal) and m.as_tuple().exponent == -2 for m in every_money)
    stamps = [
        r.modified_date
        for table in ("customers", "accounts", "transactions")
        for r in getattr(data, table)
    ]
    assert max(stamps) < AS_OF
    assert sum(s.microsecond % 1000 != 0 for s in stamps) > len(stamps) // 2  # sub-ms digits
    names = {c.last_name.strip() for c in data.customers} | {c.first_name for c in data.customers}
    assert {"O'Brien", "José"} <= names
    assert any(not name.isascii() for name in names)


def test_messy_customer_rows_differ_only_in_casing_and_whitespace(data):
    messy = [
        c
        for c in data.customers
        if c.last_name != c.last_name.strip() or (c.email or "") != (c.email or "").strip()
    ]
    assert len(messy) == 10
    for c in messy:
        for name in (c.first_name, c.last_name):
            assert name.strip() != name.strip().title(), name  # odd casing, not just spaces
        assert c.email is not None and c.email != c.email.strip().lower()
    clean = [c for c in data.customers if c not in messy]
    assert all(
        c.first_name == c.first_name.strip() and c.last_name == c.last_name.strip() for c in clean
    )
    assert all(c.email is None or c.email == c.email.strip().lower() for c in clean)


def test_crm_duplicates_are_the_same_facts_in_other_casing(files):
    crm = read_crm_csv(files.crm_csv)
    by_customer: dict[str, list[dict]] = {}
    for row in crm:
        by_customer.setdefault(row["customer_id"], []).append(row)
    pairs = [group for group in by_customer.values() if len(group) > 1]
    assert len(pairs) == 6 and all(len(group) == 2 for group in pairs)

    def normal(text: str) -> str:
        return " ".join(text.split()).casefold()

    for first, second in pairs:
        assert first["crm_id"] != second["crm_id"]
        assert first["lifetime_value"] == second["lifetime_value"]
        assert first["marketing_opt_in"] == second["marketing_opt_in"]
        for field in ("preferred_contact_method", "loyalty_tier", "assigned_rep"):
            assert normal(first[field]) == normal(second[field])
        assert any(
            first[f] != second[f]
            for f in ("preferred_contact_method", "loyalty_tier", "assigned_rep")
        )
    tiers = Counter(row["loyalty_tier"] for row in crm)
    assert set(tiers) - {"Bronze", "Silver", "Gold", "Platinum"}  # the dirty spellings
    assert {row["marketing_opt_in"] for row in crm} == {"true", "false"}


# --- every rendering, read back ------------------------------------------------------------


def fetch_all(cursor, table: str) -> list[tuple]:
    cursor.execute(f"SELECT * FROM {table} ORDER BY {KEYS[table]}")
    return [tuple(row) for row in cursor.fetchall()]


def assert_same_tables(cursor, data) -> None:
    """Every row and value of the three tables equals the in-memory rows (types included)."""
    for table in KEYS:
        assert fetch_all(cursor, table) == [tuple(row) for row in getattr(data, table)], table
    cursor.execute(
        "SELECT (SELECT SUM(balance) FROM accounts), (SELECT SUM(credit_limit) FROM accounts),"
        " (SELECT SUM(amount) FROM transactions), (SELECT COUNT(*) FROM customers WHERE email IS NULL)"
    )
    assert tuple(cursor.fetchone()) == (
        sum(a.balance for a in data.accounts),
        sum(a.credit_limit for a in data.accounts if a.credit_limit is not None),
        sum(t.amount for t in data.transactions),
        12,
    )


def test_postgres_script_loads_into_a_fresh_database(files, data):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    name = f"ff_demo_{uuid.uuid4().hex[:10]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={name}") as connection:
            connection.execute(files.postgres.read_text(encoding="utf-8"))
            with connection.cursor() as cursor:
                assert_same_tables(cursor, data)
                cursor.execute(
                    "SELECT data_type, datetime_precision FROM information_schema.columns"
                    " WHERE table_name = 'customers' AND column_name = 'modified_date'"
                )
                assert cursor.fetchone() == ("timestamp without time zone", 6)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def mariadb(database: str | None = None, **options):
    import pymysql

    return pymysql.connect(
        host="127.0.0.1",
        port=3306,
        user="root",
        password="",
        database=database,
        autocommit=True,
        **options,
    )


def test_mysql_script_loads_into_a_fresh_mariadb_database(files, data):
    require_service("MariaDB", "127.0.0.1", 3306)
    from pymysql.constants import CLIENT

    name = f"ff_demo_{uuid.uuid4().hex[:10]}"
    with mariadb() as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        with mariadb(name, client_flag=CLIENT.MULTI_STATEMENTS) as connection:
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
                cursor.execute(files.mysql.read_text(encoding="utf-8"))
                while cursor.nextset():  # a failing statement raises here
                    pass
                cursor.execute("SELECT @@SESSION.sql_mode")
                assert cursor.fetchone() == ("ANSI_QUOTES",)  # the caller's mode came back
                assert_same_tables(cursor, data)
    finally:
        with mariadb() as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


TRICKY = [
    "O'Brien",
    "back\\slash\\",
    "\\'",
    "two\nlines\r\n",
    "tab\there",
    "José Zoë 北京 🏦",
    "%s %(x)s",
    "\x1a",
]


def test_text_literals_come_back_unchanged_from_each_server():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("MariaDB", "127.0.0.1", 3306)
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres") as connection:
        for text in TRICKY:
            assert connection.execute(f"SELECT {quote_text(text, 'postgres')}").fetchone() == (
                text,
            )
    with mariadb(charset="utf8mb4") as connection, connection.cursor() as cursor:
        for text in [*TRICKY, "nul\0byte"]:
            cursor.execute(f"SELECT {quote_text(text, 'mysql')}")
            assert cursor.fetchone() == (text,)
    with pytest.raises(ValueError, match="NUL"):
        quote_text("nul\0byte", "postgres")


def test_sqlite_file_holds_the_same_rows(files, data):
    connection = sqlite3.connect(f"file:{files.sqlite}?mode=ro", uri=True)
    try:
        got = {table: fetch_all(connection.cursor(), table) for table in KEYS}
        cents = connection.execute(
            "SELECT SUM(CAST(ROUND(balance * 100) AS INTEGER)) FROM accounts"
        ).fetchone()[0]
        declared = connection.execute(
            "SELECT type FROM pragma_table_info('accounts') WHERE name = 'balance'"
        ).fetchone()[0]
    finally:
        connection.close()
    assert declared == "DECIMAL(18,2)"
    assert cents == int(sum(a.balance for a in data.accounts) * 100)
    for table, stored in got.items():
        expected = getattr(data, table)
        assert len(stored) == len(expected)
        for row, want in zip(stored, expected, strict=True):
            assert [from_sqlite(v, w) for v, w in zip(row, want, strict=True)] == list(want)


def from_sqlite(value, expected):
    """An SQLite value read back as the type the row has (text dates, numeric money)."""
    if value is None or isinstance(expected, int | str):
        return value
    if isinstance(expected, Decimal):
        return Decimal(repr(value)).quantize(Decimal("0.01"))
    if isinstance(expected, datetime):
        return datetime.fromisoformat(value)
    return type(expected).fromisoformat(value)


def test_tsql_script_parses_statement_by_statement_within_the_batch_limit(files, data):
    raw = files.tsql.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the byte-order mark sqlcmd needs for N'José'
    statements = sqlglot.parse(raw.decode("utf-8-sig"), read="tsql")  # raises on any error
    assert not [s for s in statements if isinstance(s, exp.Command)]  # nothing left unparsed
    inserted: Counter[str] = Counter()
    customers: list[list] = []
    amounts = Decimal(0)
    for insert in (s for s in statements if isinstance(s, exp.Insert)):
        table = insert.this.this.name
        tuples = insert.expression.expressions
        assert 1 <= len(tuples) <= 1000
        inserted[table] += len(tuples)
        values = [[literal(v) for v in row.expressions] for row in tuples]
        if table == "customers":
            customers += values
        if table == "transactions":
            amounts += sum(row[2] for row in values)
    assert dict(inserted) == {"customers": 500, "accounts": 750, "transactions": 5000}
    assert amounts == sum(t.amount for t in data.transactions)
    assert [row[1:4] for row in customers] == [
        [c.first_name, c.last_name, c.email] for c in data.customers
    ]
    # DATETIME2(7): seven fractional digits, ISO 8601 with a T.
    first = data.customers[0].modified_date
    assert customers[0][-1] == first.isoformat(timespec="microseconds") + "0"
    creates = [s for s in statements if isinstance(s, exp.Create) and s.kind == "TABLE"]
    column_types = {
        column.name: column.args["kind"].sql("tsql")
        for create in creates
        for column in create.find_all(exp.ColumnDef)
    }
    assert column_types["modified_date"] == "DATETIME2(7)"
    assert column_types["ssn_last4"] == "CHAR(4)"
    assert column_types["balance"] in ("DECIMAL(18, 2)", "NUMERIC(18, 2)")  # sqlglot's spelling
    assert column_types["customer_id"] in ("INT", "INTEGER")


def literal(node: exp.Expression):
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg):
        return -literal(node.this)
    if isinstance(node, exp.National) or node.is_string:
        return node.this
    return Decimal(node.this)


# --- the second act ------------------------------------------------------------------------


def snapshot(path: Path) -> dict[str, list[tuple]]:
    connection = sqlite3.connect(path)
    try:
        return {table: fetch_all(connection.cursor(), table) for table in KEYS}
    finally:
        connection.close()


def test_apply_changes_changes_one_customer_and_adds_one_transaction(files, data, tmp_path):
    copy = tmp_path / "core.db"
    shutil.copyfile(files.sqlite, copy)
    before = snapshot(copy)
    change = apply_changes(copy)
    after = snapshot(copy)

    assert after["accounts"] == before["accounts"]
    changed = [
        (old, new)
        for old, new in zip(before["customers"], after["customers"], strict=True)
        if old != new
    ]
    assert len(changed) == 1
    old, new = changed[0]
    assert new[0] == change.customer_id
    assert {i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b} == {
        3,
        13,
    }  # email, modified
    assert new[3] == change.new_email != change.old_email == old[3]
    assert change.old_email == next(
        c.email for c in data.customers if c.customer_id == change.customer_id
    )
    assert datetime.fromisoformat(new[13]) == change.customer_modified_date > AS_OF
    assert max(row[13] for row in before["customers"]) < new[13]

    assert after["transactions"][:-1] == before["transactions"]
    added = after["transactions"][-1]
    assert added[0] == before["transactions"][-1][0] + 1 == change.transaction.transaction_id
    assert added[1] == change.transaction.account_id
    owner = next(a for a in data.accounts if a.account_id == added[1])
    assert owner.customer_id == change.customer_id and owner.status == "active"
    assert Decimal(repr(added[2])) == change.transaction.amount == Decimal("86.40")
    assert max(row[8] for row in before["transactions"]) < added[8]
    assert datetime.fromisoformat(added[8]) == change.transaction.modified_date


def test_apply_changes_refuses_a_second_act_and_a_missing_file(files, tmp_path):
    copy = tmp_path / "core.db"
    shutil.copyfile(files.sqlite, copy)
    apply_changes(copy)
    once = copy.read_bytes()
    with pytest.raises(DemoDataError, match="already has changes after 2024-06-01"):
        apply_changes(copy)
    assert copy.read_bytes() == once
    missing = tmp_path / "nowhere.db"
    with pytest.raises(DemoDataError, match="no SQLite database at .*nowhere.db"):
        apply_changes(missing)
    assert not missing.exists()
