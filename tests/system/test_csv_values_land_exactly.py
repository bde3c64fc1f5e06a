"""Issue 12: every CSV value lands exactly as the file has it, or goes to quarantine with a
reason. Driven like a user: upload or drop a file, save a job, run it, read bronze."""

from __future__ import annotations

import pytest

from tests.system.conftest import Platform


def upload(platform: Platform, content: bytes, name: str = "data.csv") -> dict:
    response = platform.client.post(
        "/api/files", files={"file": (name, content, "text/csv")}, headers=platform.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def ingest_job(file_config: dict, table: str = "bronze_t") -> dict:
    return {
        "name": "Ingest",
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": file_config},
        "destinationConfig": {"bronzeConfig": {"tableName": table}},
    }


def run_ingest(platform: Platform, file_config: dict, table: str = "bronze_t") -> dict:
    workflow = platform.create_workflow([ingest_job(file_config, table)])
    execution = platform.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    return execution["jobs"][0]


# --------------------------------------------------------------------------- strict dates

# (format, good value and what it is, impossible values)
STRICT_CASES = [
    (
        "%d/%m/%Y",
        "29/02/2024",
        "2024-02-29",
        ["31/02/2024", "30/02/2024", "31/04/2024", "29/02/2023", "01/13/2024", "01/01/24"],
    ),
    ("%m/%d/%Y", "02/29/2024", "2024-02-29", ["02/30/2024", "04/31/2024", "13/01/2024"]),
    ("%d.%m.%Y", "31.12.2024", "2024-12-31", ["31.06.2024", "00.01.2024"]),
    ("%d-%b-%Y", "01-Mar-2024", "2024-03-01", ["30-Feb-2024", "31-Apr-2024"]),
    ("%d/%m/%y", "31/12/24", "2024-12-31", ["31/02/24", "29/02/23"]),
]


@pytest.mark.parametrize(("fmt", "good", "expected", "impossible"), STRICT_CASES)
def test_impossible_dates_with_a_declared_format_are_quarantined_never_rolled_over(
    embedded, fmt, good, expected, impossible
):
    lines = ["id,d", f"1,{good}"] + [f"{i},{v}" for i, v in enumerate(impossible, start=2)]
    (embedded.landing / "dates.csv").write_text("\n".join(lines) + "\n")
    ingest = run_ingest(
        embedded,
        {
            "filePath": "dates.csv",
            "malformedRows": "quarantine",
            "columns": [{"name": "d", "type": "date", "format": fmt}],
        },
    )
    assert ingest["rowsWritten"] == 1 and ingest["quarantinedRows"] == len(impossible)
    bronze = embedded.read("bronze", "bronze_t")
    assert [str(d) for d in bronze["d"].to_list()] == [expected]
    quarantine = embedded.read("bronze", "bronze_t__quarantine").sort("source_row")
    assert quarantine["raw_line"].to_list() == lines[2:]
    for reason in quarantine["reason"].to_list():
        assert "column 'd'" in reason and "not a date" in reason and fmt in reason


@pytest.mark.parametrize(
    ("fmt", "good", "impossible"),
    [
        (
            "%Y-%m-%d %H:%M",
            "2024-12-31 23:59",
            ["2024-12-31 24:00", "2024-12-31 23:60", "2024-02-30 10:00"],
        ),
        (
            "%Y-%m-%d %H:%M:%S",
            "2024-12-31 23:59:59",
            ["2024-12-31 23:59:60", "2024-06-30 23:59:60", "2024-12-31 24:00:00"],
        ),
        (
            "%d/%m/%Y %H:%M:%S",
            "31/12/2024 23:59:59",
            ["31/12/2024 23:59:60", "31/02/2024 12:00:00", "31/12/24 10:00:00"],
        ),
        (
            "%d/%m/%Y %I:%M %p",
            "31/12/2024 11:59 PM",
            ["31/12/2024 13:00 PM", "31/12/2024 00:30 AM", "31/04/2024 10:00 AM"],
        ),
        (
            "%Y-%m-%d %H:%M:%S%z",
            "2024-12-31 23:59:59+0100",
            ["2024-12-31 23:59:60+0100", "2024-02-30 10:00:00+0000"],
        ),
    ],
)
def test_impossible_times_with_a_declared_format_are_quarantined(embedded, fmt, good, impossible):
    lines = ["id,t", f"1,{good}"] + [f"{i},{v}" for i, v in enumerate(impossible, start=2)]
    (embedded.landing / "times.csv").write_text("\n".join(lines) + "\n")
    ingest = run_ingest(
        embedded,
        {
            "filePath": "times.csv",
            "malformedRows": "quarantine",
            "columns": [{"name": "t", "type": "timestamp", "format": fmt}],
        },
    )
    assert ingest["rowsWritten"] == 1 and ingest["quarantinedRows"] == len(impossible)
    quarantine = embedded.read("bronze", "bronze_t__quarantine").sort("source_row")
    assert quarantine["raw_line"].to_list() == lines[2:]


@pytest.mark.parametrize(
    ("declared", "impossible"),
    [
        ({"type": "date"}, ["2024-02-30", "2024-04-31", "2023-02-29", "2024-13-01", "24-01-01"]),
        (
            {"type": "timestamp"},
            [
                "2024-01-01 24:00:00",
                "2024-12-31 23:59:60",
                "2024-02-30 10:00:00",
                "2024-01-01T23:59:60Z",
            ],
        ),
    ],
)
def test_iso_values_without_a_format_are_just_as_strict(embedded, declared, impossible):
    good = "2024-02-29" if declared["type"] == "date" else "2024-02-29 12:00:00"
    lines = ["id,v", f"1,{good}"] + [f"{i},{v}" for i, v in enumerate(impossible, start=2)]
    (embedded.landing / "iso.csv").write_text("\n".join(lines) + "\n")
    ingest = run_ingest(
        embedded,
        {
            "filePath": "iso.csv",
            "malformedRows": "quarantine",
            "columns": [{"name": "v", **declared}],
        },
    )
    assert ingest["rowsWritten"] == 1 and ingest["quarantinedRows"] == len(impossible)


def test_an_impossible_date_fails_the_load_under_malformed_rows_fail(embedded):
    (embedded.landing / "dates.csv").write_text("id,d\n1,28/02/2024\n2,31/02/2024\n")
    workflow = embedded.create_workflow(
        [
            ingest_job(
                {
                    "filePath": "dates.csv",
                    "columns": [{"name": "d", "type": "date", "format": "%d/%m/%Y"}],
                }
            )
        ]
    )
    execution = embedded.run(workflow["id"])
    assert execution["status"] == "failed"
    error = execution["jobs"][0]["error"]["message"]
    assert "row 2 after the header" in error and "31/02/2024" in error


# --------------------------------------------------------------------------- quoted empty


def test_a_quoted_empty_field_is_an_empty_string_and_an_unquoted_one_is_null(embedded):
    # csv-spectrum's empty.csv (and a text column whose type is inferred), nullValues: [].
    (embedded.landing / "empty.csv").write_text('a,b,c,name\n1,"","",""\n2,3,4,\n5,6,7,"x"\n')
    run_ingest(
        embedded,
        {
            "filePath": "empty.csv",
            "nullValues": [],
            "columns": [{"name": "b", "type": "string"}, {"name": "c", "type": "string"}],
        },
    )
    bronze = embedded.read("bronze", "bronze_t").sort("a")
    assert bronze["b"].to_list() == ["", "3", "6"]
    assert bronze["c"].to_list() == ["", "4", "7"]
    assert bronze["name"].to_list() == ["", None, "x"]


def test_empty_values_in_typed_columns_are_null_quoted_or_not_and_null_tokens_apply_to_quoted_values(
    embedded,
):
    (embedded.landing / "typed.csv").write_text(
        'id,amount,day,note\n"1","","","NULL"\n"2",,,NULL\n"3","2.50","2024-01-02","n/a"\n'
    )
    ingest = run_ingest(
        embedded,
        {
            "filePath": "typed.csv",
            "nullValues": ["NULL"],
            "columns": [
                {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
                {"name": "day", "type": "date"},
            ],
        },
    )
    assert ingest["quarantinedRows"] == 0
    bronze = embedded.read("bronze", "bronze_t").sort("id")
    assert bronze["id"].to_list() == [1, 2, 3]
    assert [None if v is None else str(v) for v in bronze["amount"].to_list()] == [
        None,
        None,
        "2.50",
    ]
    assert [None if v is None else str(v) for v in bronze["day"].to_list()] == [
        None,
        None,
        "2024-01-02",
    ]
    assert bronze["note"].to_list() == [None, None, "n/a"]


# --------------------------------------------------------------------------- one inference

ACCOUNTS = (
    b"account_number,amount,opened,status\n"
    b"12345678901234567890,10.50,31/12/2023,active\n"
    b"98765432109876543210,1234.05,01/02/2024,closed\n"
    b"10000000000000000001,0.10,15/06/2024,active\n"
)


def test_a_file_is_typed_the_same_whether_the_job_names_its_file_id_or_its_path(embedded):
    uploaded = upload(embedded, ACCOUNTS, "accounts.csv")
    workflow = embedded.create_workflow(
        [
            ingest_job({"fileId": uploaded["id"]}, "bronze_by_id"),
            ingest_job({"filePath": uploaded["filePath"]}, "bronze_by_path"),
        ]
    )
    execution = embedded.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    by_id = embedded.read("bronze", "bronze_by_id").sort("_source_row")
    by_path = embedded.read("bronze", "bronze_by_path").sort("_source_row")
    columns = ["account_number", "amount", "opened", "status"]
    assert by_path.select(columns).schema == by_id.select(columns).schema
    assert by_path.select(columns).to_dicts() == by_id.select(columns).to_dicts()
    # An identifier keeps every digit; fixed-point amounts stay exact (no binary float).
    assert [str(v) for v in by_path["account_number"].to_list()] == [
        "12345678901234567890",
        "98765432109876543210",
        "10000000000000000001",
    ]
    assert [str(v) for v in by_path["amount"].to_list()] == ["10.50", "1234.05", "0.10"]
    assert str(by_path.schema["amount"]).startswith("Decimal")
    assert [str(v) for v in by_path["opened"].to_list()] == [
        "2023-12-31",
        "2024-02-01",
        "2024-06-15",
    ]


def test_a_space_separated_upload_loads_into_its_columns(embedded):
    from tests.files.test_detection_issue12 import SPECTOR

    uploaded = upload(embedded, SPECTOR.encode(), "spector.txt")
    ingest = run_ingest(embedded, {"fileId": uploaded["id"]})
    assert ingest["rowsWritten"] == 5
    bronze = embedded.read("bronze", "bronze_t").sort("_source_row")
    assert bronze["OBS"].to_list() == [1, 2, 3, 4, 5]
    assert [str(v) for v in bronze["GPA"].to_list()] == ["2.66", "2.89", "3.28", "2.92", "4.00"]
    assert bronze["GRADE"].to_list() == [0, 0, 0, 0, 1]


def test_an_upload_aligned_by_runs_of_spaces_loads_into_its_columns(embedded):
    from tests.files.test_detection_issue12 import ALIGNED

    uploaded = upload(embedded, ALIGNED.encode(), "elnino.dat")
    ingest = run_ingest(embedded, {"fileId": uploaded["id"]})
    assert ingest["rowsWritten"] == 4
    bronze = embedded.read("bronze", "bronze_t").sort("_source_row")
    assert bronze["MON"].to_list() == [1, 2, 10, 11]
    assert [str(v) for v in bronze["NINO1+2"].to_list()] == ["23.11", "24.20", "25.37", "9.05"]
    assert [str(v) for v in bronze["ANOM_2"].to_list()] == ["-1.91", "-1.45", "-0.80", "-1.11"]


def test_an_r_upload_with_row_names_loads_them_as_the_first_column(embedded):
    from tests.files.test_detection_issue12 import R_SPACES

    uploaded = upload(embedded, R_SPACES.encode(), "scotvote.dat")
    ingest = run_ingest(embedded, {"fileId": uploaded["id"]})
    assert ingest["rowsWritten"] == 3
    bronze = embedded.read("bronze", "bronze_t").sort("_source_row")
    assert bronze["column_1"].to_list() == ["Aberdeen_City", "Angus", "Argyll  and Bute"]
    assert bronze["Starts"].to_list() == [1142, 272, 330]
    assert bronze["Tax"].to_list() == [712, None, 790]


# --------------------------------------------------------------------------- preamble, comments


def _data_lines(content: str, first: int) -> set[tuple[str, ...]]:
    return {
        tuple(line.split(","))
        for line in content.splitlines()[first:]
        if line and not line.startswith("#")
    }


def _bronze_rows(platform: Platform, names: list[str]) -> list[tuple[str, ...]]:
    bronze = platform.read("bronze", "bronze_t")
    return [tuple(str(value) for value in row) for row in bronze.select(names).iter_rows()]


def test_an_upload_with_a_prose_preamble_loads_every_row_once(embedded):
    from tests.files.test_preamble import PROSE

    ingest = run_ingest(embedded, {"fileId": upload(embedded, PROSE.encode())["id"]})
    rows = _bronze_rows(embedded, ["store", "week", "amount"])
    expected = _data_lines(PROSE, 6)
    assert ingest["rowsWritten"] == len(rows) == len(expected) == 40
    assert set(rows) == expected


def test_an_upload_with_a_metadata_line_over_a_wide_table_loads_every_row_once(embedded):
    from tests.files.test_preamble import SKLEARN

    ingest = run_ingest(embedded, {"fileId": upload(embedded, SKLEARN.encode())["id"]})
    names = [f"column_{index}" for index in range(1, 32)]
    rows = _bronze_rows(embedded, names)
    expected = _data_lines(SKLEARN, 1)
    assert ingest["rowsWritten"] == len(rows) == len(expected) == 30
    # Decimals come back as Decimal: compare as numbers.
    as_numbers = {tuple(float(value) for value in row) for row in rows}
    assert as_numbers == {tuple(float(value) for value in row) for row in expected}


def test_an_upload_with_comment_lines_loads_every_row_once_and_numbers_rows_without_them(
    embedded,
):
    from tests.files.test_preamble import COMMENTS

    broken = COMMENTS.replace("7,n7,14\n", "7,n7\n")  # a ragged row after two comment lines
    uploaded = upload(embedded, broken.encode())
    ingest = run_ingest(embedded, {"fileId": uploaded["id"], "malformedRows": "quarantine"})
    rows = _bronze_rows(embedded, ["id", "name", "score"])
    expected = _data_lines(broken, 3) - {("7", "n7")}
    assert ingest["rowsWritten"] == len(rows) == len(expected) == 29
    assert set(rows) == expected
    bronze = embedded.read("bronze", "bronze_t")
    source_rows = dict(zip(bronze["id"].to_list(), bronze["_source_row"].to_list(), strict=True))
    # Comment lines, like blank lines, are not counted: row 8 is the eighth data record.
    assert source_rows[8] == 8 and 7 not in source_rows
    quarantine = embedded.read("bronze", "bronze_t__quarantine")
    assert quarantine["source_row"].to_list() == [7]
    assert quarantine["raw_line"].to_list() == ["7,n7"]
