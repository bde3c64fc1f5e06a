"""Sample rows and PII (issue 16): a viewer sees the columns that identify a person masked;
admins, editors and auditors see the values. Real rows: a CSV loaded into bronze by a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.catalog.test_table_lifecycle import api, run  # noqa: F401  (the fixture)
from tests.conftest import ADMIN_TOKEN

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CSV = (
    "customer_id,first_name,email,phone,national_id,ssn_last4,city,segment,contact\n"
    "1,Ann,ann@example.com,+1 415 555 0101,AB123456C,1234,Austin,retail,ann.alt@example.org\n"
    "2,Bob,,+1 415 555 0102,CD654321E,5678,Boston,premium,bob.alt@example.org\n"
)
PII = {
    "first_name": "person_name",
    "email": "email",
    "phone": "phone",
    "national_id": "national_id",
    "ssn_last4": "ssn_last4",
    "contact": "email",  # its name says nothing: its values do
}


@pytest.fixture
def customers(api):  # noqa: F811
    landing = Path(api.settings.landing_root)
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "customers.csv").write_text(CSV)
    wf = api.post("/api/workflows", json={"name": "customers"}, headers=H).json()
    job = {
        "name": "Ingest customers",
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "customers.csv"}},
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_customers"}},
    }
    assert api.post(f"/api/workflows/{wf['id']}/jobs", json=job, headers=H).status_code == 201
    run(api, wf["id"])


def sample_as(api, role: str) -> dict:  # noqa: F811
    token = api.post("/api/tokens", json={"name": role, "role": role}, headers=H).json()["token"]
    answer = api.get(
        "/api/catalog/assets/bronze_customers/sample",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def by_column(sample: dict) -> dict[str, list]:
    rows = sorted(sample["rows"], key=lambda row: row[sample["columns"].index("customer_id")])
    return {name: [row[i] for row in rows] for i, name in enumerate(sample["columns"])}


def test_a_viewer_sees_pii_masked(api, customers):  # noqa: F811
    sample = sample_as(api, "viewer")
    assert sample["pii"] == PII and sample["masked"] is True
    columns = by_column(sample)
    for name in PII:
        assert columns[name] == ["****", None if name == "email" else "****"], name
    # What identifies no one is shown as it is; a missing e-mail stays missing.
    assert columns["city"] == ["Austin", "Boston"]
    assert columns["segment"] == ["retail", "premium"]
    assert columns["customer_id"] == [1, 2]
    text = str(sample)
    for secret in ("ann@example.com", "AB123456C", "555 0101", "1234", "Ann", "alt@example"):
        assert secret not in text


@pytest.mark.parametrize("role", ["admin", "editor", "auditor"])
def test_admins_editors_and_auditors_see_the_values(api, customers, role):  # noqa: F811
    sample = sample_as(api, role)
    assert sample["pii"] == PII and sample["masked"] is False
    columns = by_column(sample)
    assert columns["email"] == ["ann@example.com", None]
    assert columns["national_id"] == ["AB123456C", "CD654321E"]
    assert columns["first_name"] == ["Ann", "Bob"]
    assert columns["contact"] == ["ann.alt@example.org", "bob.alt@example.org"]
