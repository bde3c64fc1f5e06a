"""A PostgreSQL database of its own for the jobs E2E (the machine's server, 127.0.0.1:5432,
user postgres): a table and a set-returning function with typed parameters, which the
stored-procedure picker lists; min_balance is numeric, which a fractional JSON number must
find. `create` prints the database's name; `drop <name>` removes it."""

import os
import sys
import uuid

import psycopg

HOST = os.environ.get("FLOWFORGE_TEST_PG_HOST", "127.0.0.1")
PORT = os.environ.get("FLOWFORGE_TEST_PG_PORT", "5432")
ADMIN = f"host={HOST} port={PORT} user=postgres dbname=postgres"

if sys.argv[1] == "create":
    name = f"flowforge_e2e_jobs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(
        f"host={HOST} port={PORT} user=postgres dbname={name}", autocommit=True
    ) as db:
        db.execute(
            "CREATE TABLE branch_balances (branch_id int PRIMARY KEY, opened date NOT NULL,"
            " balance numeric(12,2) NOT NULL, active boolean NOT NULL)"
        )
        db.execute(
            "INSERT INTO branch_balances SELECT i, DATE '2024-01-01' + i, i * 10.5, i % 3 <> 0"
            " FROM generate_series(1, 40) AS i"
        )
        db.execute(
            "CREATE FUNCTION branches_since(since date, min_balance numeric, active_only boolean)"
            " RETURNS SETOF branch_balances LANGUAGE sql STABLE AS $$"
            " SELECT * FROM branch_balances WHERE opened >= since AND balance >= min_balance"
            " AND (NOT active_only OR active) $$"
        )
    print(name)
elif sys.argv[1] == "drop":
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
