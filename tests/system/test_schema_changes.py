"""Source schema changes between runs, through real workflow runs on the embedded platform:
a file that drops a column, and numbers that outgrow the type of the first file."""

from __future__ import annotations

from decimal import Decimal


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


def upload(platform, name: str, text: str) -> str:
    response = platform.client.post(
        "/api/files",
        files={"file": (name, text.encode(), "text/csv")},
        headers=platform.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def amount_jobs(file_id: str) -> list[dict]:
    jobs = customer_jobs()
    jobs[0]["sourceConfig"]["fileConfig"] = {"fileId": file_id}
    return jobs


def test_amounts_wider_than_the_first_files_widen_bronze_and_silver(embedded):
    # Detected from the first upload: the largest amount has four integer digits.
    first = upload(embedded, "balances.csv", "id;amount\n1;€8.996,40\n2;€12,50\n")
    workflow = embedded.create_workflow(amount_jobs(first))
    succeeded(embedded.run(workflow["id"]))
    # Detection leaves room: decimal(18,2), not the sample's decimal(6,2).
    assert (
        str(embedded.read("bronze", "bronze_customers").schema["amount"])
        == "Decimal(precision=18, scale=2)"
    )

    def load(text: str) -> dict:
        file_id = upload(embedded, "balances.csv", text)
        listed = embedded.client.get(
            f"/api/workflows/{workflow['id']}/jobs", headers=embedded.headers
        ).json()["data"]
        job = next(job for job in listed if job["name"] == "Ingest customers")
        patched = embedded.client.patch(
            f"/api/workflows/{workflow['id']}/jobs/{job['id']}",
            json={"sourceConfig": {"type": "csv", "fileConfig": {"fileId": file_id}}},
            headers={**embedded.headers, "If-Match": f'"{job["version"]}"'},
        )
        assert patched.status_code == 200, patched.text
        return succeeded(embedded.run(workflow["id"]))

    jobs = load("id;amount\n2;€12.345,67\n3;€99.999.999,99\n")
    assert jobs["Ingest customers"]["note"] is None and jobs["Silver customers"]["note"] is None

    # 17 integer digits do not fit decimal(18,2): both tables are widened, every value kept.
    jobs = load("id;amount\n4;€12.345.678.901.234.567,89\n")
    assert jobs["Ingest customers"]["note"] == (
        "bronze table 'bronze_customers' widened (amount: decimal(18,2) -> decimal(19,2)): "
        "every stored value kept, in one commit"
    )
    assert jobs["Silver customers"]["note"] == (
        "silver table 'silver_customers' widened (amount: decimal(18,2) -> decimal(19,2)): "
        "every stored value kept, in one commit"
    )
    rows = silver_rows(embedded)
    assert {key: row["amount"] for key, row in rows.items()} == {
        1: Decimal("8996.40"),
        2: Decimal("12345.67"),
        3: Decimal("99999999.99"),
        4: Decimal("12345678901234567.89"),
    }
    bronze = embedded.read("bronze", "bronze_customers")
    assert sorted(bronze["amount"].to_list()) == [
        Decimal("12.50"),
        Decimal("8996.40"),
        Decimal("12345.67"),
        Decimal("99999999.99"),
        Decimal("12345678901234567.89"),
    ]
