"""Source schema changes between runs, through real workflow runs on the embedded platform:
a file that drops a column, and numbers that outgrow the type of the first file."""

from __future__ import annotations


def customer_jobs(path: str = "customers.csv", columns: list[dict] | None = None) -> list[dict]:
    file_config: dict = {"filePath": path}
    if columns:
        file_config["columns"] = columns
    return [
        {
            "name": "Ingest customers",
            "type": "file-based",
            "sourceConfig": {"type": "csv", "fileConfig": file_config},
            "destinationConfig": {"bronzeConfig": {"tableName": "bronze_customers"}},
        },
        {
            "name": "Silver customers",
            "type": "gold-analytics",
            "sourceConfig": {"type": "multi-table", "tables": ["bronze_customers"]},
            "destinationConfig": {
                "silverConfig": {
                    "tableName": "silver_customers",
                    "primaryKey": "id",
                    "mergeStrategy": "merge",
                }
            },
        },
    ]


def write(platform, name: str, text: str) -> None:
    platform.landing.mkdir(parents=True, exist_ok=True)
    (platform.landing / name).write_text(text)


def silver_rows(platform, table: str = "silver_customers") -> dict:
    frame = platform.read("silver", table)
    return {row["id"]: row for row in frame.iter_rows(named=True)}


def succeeded(execution: dict) -> dict:
    assert execution["status"] == "succeeded", execution
    return {job["name"]: job for job in execution["jobs"]}


def test_a_column_the_next_file_drops_keeps_its_values_and_is_null_for_new_rows(embedded):
    write(embedded, "customers.csv", "id,name,city\n1,Ann,Oslo\n2,Bob,Rome\n")
    workflow = embedded.create_workflow(customer_jobs())
    succeeded(embedded.run(workflow["id"]))

    # The next export lacks `name`: Bob moved, Cy is new.
    write(embedded, "customers.csv", "id,city\n2,Paris\n3,Lima\n")
    jobs = succeeded(embedded.run(workflow["id"]))
    assert jobs["Silver customers"]["note"] == (
        "column 'name' was not in the latest load of 2 row(s): 1 kept the value they had, "
        "1 (new) have it null"
    )

    rows = silver_rows(embedded)
    assert {key: (row["name"], row["city"]) for key, row in rows.items()} == {
        1: ("Ann", "Oslo"),
        2: ("Bob", "Paris"),  # updated city, name left as it was
        3: (None, "Lima"),  # inserted: the column it lacks is null
    }
    # Bronze keeps what each file said: the second load has no name.
    bronze = embedded.read("bronze", "bronze_customers")
    assert set(bronze.filter(bronze["id"] == 2)["name"].to_list()) == {None, "Bob"}

    # A third file carries `name` again, with an explicit empty value for Bob: that is data.
    write(embedded, "customers.csv", "id,name,city\n2,,Paris\n")
    succeeded(embedded.run(workflow["id"]))
    assert silver_rows(embedded)[2]["name"] is None
    assert silver_rows(embedded)[1]["name"] == "Ann"
