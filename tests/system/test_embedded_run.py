"""The three-layer workflow on the embedded default: SQLite + local disk + in-process tasks."""

import time
from decimal import Decimal
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from tests.system.conftest import expected_from_csv, workflow_jobs, write_transactions


def assert_tables_match_csv(platform, csv_paths):
    silver_expected, gold_expected = expected_from_csv(csv_paths)
    silver = platform.read("silver", "silver_tx")
    assert silver.height == len(silver_expected)
    assert silver["id"].n_unique() == silver.height
    rows = {r["id"]: (r["customer_id"], r["amount"]) for r in silver.iter_rows(named=True)}
    assert rows == silver_expected
    assert (silver["amount_cents"] == (silver["amount"] * 100).cast(pl.Int64)).all()
    gold = platform.read("gold", "gold_customer_totals")
    got = {
        r["customer_id"]: (r["total_amount"], r["transactions"]) for r in gold.iter_rows(named=True)
    }
    assert got == gold_expected


def test_three_layer_workflow_succeeds_and_tables_are_right(embedded):
    write_transactions(embedded.landing / "tx.csv", 500)
    workflow = embedded.create_workflow(workflow_jobs())
    execution = embedded.run(workflow["id"])

    assert execution["status"] == "succeeded", execution
    assert execution["trigger"] == "manual" and execution["durationMs"] >= 0
    jobs = {job["name"]: job for job in execution["jobs"]}
    ingest = jobs["Ingest transactions"]
    assert ingest["rowsRead"] == 500 and ingest["rowsWritten"] == 500
    # Version 0 is the empty table created before the first load's commit.
    assert ingest["outputs"] == [{"table": "bronze_tx", "layer": "bronze", "version": 1}]
    assert jobs["Silver transactions"]["rowsWritten"] == 450
    assert all(job["status"] == "succeeded" and job["attempt"] == 1 for job in jobs.values())

    bronze = embedded.read("bronze", "bronze_tx")
    assert bronze.height == 500
    assert set(bronze.columns) >= {
        "_ingested_at",
        "_execution_id",
        "_job_id",
        "_source",
        "_source_row",
    }
    assert set(bronze["_execution_id"]) == {execution["id"]}
    assert sorted(bronze["_source_row"].to_list()) == list(range(1, 501))
    assert_tables_match_csv(embedded, [embedded.landing / "tx.csv"])


def test_catalog_records_every_table_from_run_events(embedded):
    write_transactions(embedded.landing / "tx.csv", 50)
    workflow = embedded.create_workflow(workflow_jobs())
    execution = embedded.run(workflow["id"])
    assets = embedded.client.get("/api/catalog/assets", headers=embedded.headers).json()["data"]
    by_table = {asset["table"]: asset for asset in assets}
    assert set(by_table) == {"bronze_tx", "silver_tx", "gold_customer_totals"}
    silver = by_table["silver_tx"]
    assert silver["layer"] == "silver" and silver["rowCount"] == 45 and silver["version"] == 1
    assert silver["producingExecutionId"] == execution["id"]
    assert silver["workflowId"] == workflow["id"]
    columns = {column["name"]: column["type"] for column in silver["columns"]}
    assert columns["tx_sk"] == "int64" and columns["amount"].startswith("decimal")
    gold_only = embedded.client.get(
        "/api/catalog/assets", params={"layer": "gold"}, headers=embedded.headers
    ).json()
    assert [a["table"] for a in gold_only["data"]] == ["gold_customer_totals"]
    one = embedded.client.get("/api/catalog/assets/bronze_tx", headers=embedded.headers).json()
    assert one["rowCount"] == 50 and one["location"].endswith("/bronze/bronze_tx")
    missing = embedded.client.get("/api/catalog/assets/nope", headers=embedded.headers)
    assert missing.status_code == 404


def test_running_twice_leaves_silver_and_gold_with_the_same_rows(embedded):
    write_transactions(embedded.landing / "tx.csv", 300)
    workflow = embedded.create_workflow(workflow_jobs())
    assert embedded.run(workflow["id"])["status"] == "succeeded"
    silver_before = embedded.read("silver", "silver_tx").drop("_ingested_at").sort("id")
    gold_before = embedded.read("gold", "gold_customer_totals").sort("customer_id")
    second = embedded.run(workflow["id"])
    assert second["status"] == "succeeded"
    assert embedded.read("bronze", "bronze_tx").height == 600  # bronze appends every load
    silver_after = embedded.read("silver", "silver_tx").drop("_ingested_at").sort("id")
    assert silver_after.equals(silver_before)  # surrogate keys included
    assert embedded.read("gold", "gold_customer_totals").sort("customer_id").equals(gold_before)


def test_new_and_changed_rows_merge_into_silver_and_gold(embedded):
    write_transactions(embedded.landing / "tx.csv", 100)
    jobs = workflow_jobs()
    workflow = embedded.create_workflow(jobs)
    assert embedded.run(workflow["id"])["status"] == "succeeded"
    keys_before = dict(embedded.read("silver", "silver_tx").select("id", "tx_sk").iter_rows())
    write_transactions(embedded.landing / "tx.csv", 30, start_id=90, seed=99)
    assert embedded.run(workflow["id"])["status"] == "succeeded"
    silver = embedded.read("silver", "silver_tx")
    keys_after = dict(silver.select("id", "tx_sk").iter_rows())
    assert all(keys_after[key] == value for key, value in keys_before.items())
    assert len(set(keys_after.values())) == len(keys_after)
    # The second file overrides ids 90..119; ids only in the first file keep their values.
    write_transactions(embedded.landing / "first.csv", 100)
    write_transactions(embedded.landing / "second.csv", 30, start_id=90, seed=99)
    assert_tables_match_csv(
        embedded, [embedded.landing / "first.csv", embedded.landing / "second.csv"]
    )


def test_failed_job_fails_the_run_skips_downstream_and_says_why(embedded):
    (embedded.landing / "tx.csv").parent.mkdir(parents=True, exist_ok=True)
    (embedded.landing / "tx.csv").write_text("id,customer_id,amount,updated_at\n1,2,3.00,x\n2,3\n")
    workflow = embedded.create_workflow(workflow_jobs())
    execution = embedded.run(workflow["id"])
    assert execution["status"] == "failed"
    jobs = {job["name"]: job for job in execution["jobs"]}
    ingest = jobs["Ingest transactions"]
    assert ingest["status"] == "failed"
    assert "tx.csv" in ingest["error"]["message"] and "3" in ingest["error"]["message"]
    assert jobs["Silver transactions"]["status"] == "skipped"
    assert jobs["Gold customer totals"]["status"] == "skipped"
    assert "Ingest transactions" in execution["error"]


def test_missing_file_fails_with_a_message_naming_it(embedded):
    workflow = embedded.create_workflow(workflow_jobs("nowhere/tx.csv"))
    execution = embedded.run(workflow["id"])
    ingest = execution["jobs"][0]
    assert ingest["status"] == "failed"
    assert "nowhere/tx.csv" in ingest["error"]["message"]


def test_path_escaping_the_landing_area_is_refused_at_save_and_at_run(embedded):
    workflow = embedded.create_workflow([])
    refused = embedded.client.post(
        f"/api/workflows/{workflow['id']}/jobs",
        json=workflow_jobs("../../etc/passwd")[0],
        headers=embedded.headers,
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["field"] == "sourceConfig.fileConfig.filePath"

    # A job saved before the rule existed is refused by the worker, never read.
    import copy

    from flowforge_catalog.jobs.models import Job

    write_transactions(embedded.landing / "tx.csv", 5)
    workflow = embedded.create_workflow(workflow_jobs()[:1])
    with embedded.app.state.database.session() as session:
        job = session.query(Job).filter_by(workflow_id=workflow["id"]).one()
        config = copy.deepcopy(job.config)
        config["sourceConfig"]["fileConfig"]["filePath"] = "../../etc/passwd"
        job.config = config
    execution = embedded.run(workflow["id"])
    assert execution["status"] == "failed"
    message = execution["jobs"][0]["error"]["message"]
    assert "'../../etc/passwd' contains '..'" in message and "landing area" in message


def test_run_a_subset_takes_what_it_needs(embedded):
    write_transactions(embedded.landing / "tx.csv", 20)
    workflow = embedded.create_workflow(workflow_jobs())
    jobs = embedded.client.get(
        f"/api/workflows/{workflow['id']}/jobs", headers=embedded.headers
    ).json()["data"]
    silver_id = next(job["id"] for job in jobs if job["name"] == "Silver transactions")
    execution = embedded.wait(embedded.start(workflow["id"], {"jobs": [silver_id]}))
    assert execution["status"] == "succeeded"
    assert sorted(job["name"] for job in execution["jobs"]) == [
        "Ingest transactions",
        "Silver transactions",
    ]
    refused = embedded.client.post(
        f"/api/workflows/{workflow['id']}/run", json={"jobs": ["nope"]}, headers=embedded.headers
    )
    assert refused.status_code == 422


def test_a_run_snapshots_jobs_and_lists_by_workflow_and_status(embedded):
    write_transactions(embedded.landing / "tx.csv", 10)
    workflow = embedded.create_workflow(workflow_jobs())
    execution = embedded.run(workflow["id"])
    listed = embedded.client.get(
        "/api/executions",
        params={"workflowId": workflow["id"], "status": "succeeded"},
        headers=embedded.headers,
    ).json()
    assert [item["id"] for item in listed["data"]] == [execution["id"]]
    none = embedded.client.get(
        "/api/executions",
        params={"workflowId": workflow["id"], "status": "failed"},
        headers=embedded.headers,
    ).json()
    assert none["count"] == 0
    assert embedded.client.get("/api/executions/nope", headers=embedded.headers).status_code == 404


def test_event_stream_reports_progress_and_the_end(embedded):
    write_transactions(embedded.landing / "tx.csv", 40)
    workflow = embedded.create_workflow(workflow_jobs())
    execution = embedded.run(workflow["id"])
    response = embedded.client.get(
        f"/api/executions/{execution['id']}/events", headers=embedded.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    kinds = [
        line.split(": ", 1)[1] for line in response.text.splitlines() if line.startswith("event: ")
    ]
    assert kinds.count("job.started") == 3 and kinds.count("job.finished") == 3
    assert "batch.written" in kinds and kinds[-1] == "execution.finished"


def sse_events(text: str) -> list[tuple[int, str]]:
    """(id, event) of each server-sent event, in order."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((int(fields["id"]), fields["event"]))
    return events


def test_every_event_has_its_own_increasing_id_and_a_reconnect_resumes(embedded):
    """issue 12: execution.finished repeated the id of the last job event, so a client that
    keeps ids (EventSource's lastEventId) could not tell it from a repeat."""
    write_transactions(embedded.landing / "tx.csv", 20)
    workflow = embedded.create_workflow(workflow_jobs())
    execution = embedded.run(workflow["id"])
    url = f"/api/executions/{execution['id']}/events"
    events = sse_events(embedded.client.get(url, headers=embedded.headers).text)
    ids = [event_id for event_id, _ in events]
    assert events[-1][1] == "execution.finished" and len(events) > 6
    assert len(set(ids)) == len(ids), events
    assert ids == sorted(ids), events
    # A reconnect with Last-Event-ID gets only what came after it, then the end.
    middle = events[2][0]
    resumed = embedded.client.get(url, headers={**embedded.headers, "Last-Event-ID": str(middle)})
    assert sse_events(resumed.text) == events[3:]
    ended = embedded.client.get(url, headers={**embedded.headers, "Last-Event-ID": str(ids[-1])})
    assert [kind for _, kind in sse_events(ended.text)] == ["execution.finished"]
    for odd in ("x", "-1", "9" * 40):
        replayed = embedded.client.get(url, headers={**embedded.headers, "Last-Event-ID": odd})
        assert sse_events(replayed.text) == events


def test_one_trace_spans_the_api_call_and_the_workers_write(tmp_path, span_exporter):
    from fastapi.testclient import TestClient

    from flowforge.app import create_app
    from tests.conftest import make_settings
    from tests.system.conftest import Platform

    exporter = span_exporter
    settings = make_settings(tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:
        platform = Platform(client, settings.lake_root)
        write_transactions(tmp_path / "landing" / "tx.csv", 30)
        workflow = platform.create_workflow(workflow_jobs())
        execution = platform.run(workflow["id"])
    assert execution["status"] == "succeeded"
    spans = exporter.get_finished_spans()
    api = next(s for s in spans if s.name == f"POST /api/workflows/{workflow['id']}/run")
    trace_id = f"{api.context.trace_id:032x}"
    assert execution["traceId"] == trace_id
    writes = [s for s in spans if s.name == "write bronze_tx"]
    assert writes and all(s.context.trace_id == api.context.trace_id for s in writes)
    assert writes[0].attributes["flowforge.rows"] == 30
    gold_write = next(s for s in spans if s.name == "write gold_customer_totals")
    assert gold_write.context.trace_id == api.context.trace_id


def test_decimal_sums_are_exact_to_the_cent(embedded):
    write_transactions(embedded.landing / "tx.csv", 1000)
    workflow = embedded.create_workflow(workflow_jobs())
    assert embedded.run(workflow["id"])["status"] == "succeeded"
    gold = embedded.read("gold", "gold_customer_totals")
    assert isinstance(gold["total_amount"][0], Decimal)


def test_cancel_stops_a_running_job_at_the_next_batch_and_commits_nothing(embedded):
    from tests.system.test_celery_run import big_csv

    big_csv(embedded.landing / "tx.csv", 2_000_000)
    workflow = embedded.create_workflow(workflow_jobs())
    execution_id = embedded.start(workflow["id"])
    deadline = time.monotonic() + 60
    while embedded.execution(execution_id)["jobs"][0]["rowsRead"] == 0:  # a batch went through
        assert time.monotonic() < deadline
        time.sleep(0.02)
    response = embedded.client.post(
        f"/api/executions/{execution_id}/cancel", headers=embedded.headers
    )
    assert response.status_code == 200
    # The job is still running until its next batch: the execution says so, and keeps the
    # workflow (another run could otherwise write the same table meanwhile).
    assert response.json()["status"] == "cancelling"
    assert [job["status"] for job in response.json()["jobs"]] == [
        "running",
        "cancelled",
        "cancelled",
    ]
    refused = embedded.client.post(f"/api/workflows/{workflow['id']}/run", headers=embedded.headers)
    if embedded.execution(execution_id)["status"] == "cancelling":
        assert refused.status_code == 409, refused.text
    execution = embedded.wait(execution_id)
    assert execution["status"] == "cancelled"
    statuses = [job["status"] for job in execution["jobs"]]
    assert statuses == ["cancelled", "cancelled", "cancelled"]
    # Rows went through before the cancel, none was committed: none counts as written.
    assert execution["jobs"][0]["rowsRead"] > 0
    assert [job["rowsWritten"] for job in execution["jobs"]] == [0, 0, 0]
    bronze = DeltaTable(str(Path(embedded.app.state.settings.lake_root) / "bronze" / "bronze_tx"))
    # The first load creates the table empty, then stops before its commit: no row is in.
    assert [e["operation"] for e in bronze.history()] == ["CREATE TABLE"]
    assert bronze.to_pyarrow_table().num_rows == 0
    again = embedded.client.post(f"/api/executions/{execution_id}/cancel", headers=embedded.headers)
    assert again.status_code == 409


def test_a_second_run_while_one_is_active_is_refused(embedded):
    from tests.system.test_celery_run import big_csv

    big_csv(embedded.landing / "tx.csv", 1_000_000)
    workflow = embedded.create_workflow(workflow_jobs()[:1])
    execution_id = embedded.start(workflow["id"])
    response = embedded.client.post(
        f"/api/workflows/{workflow['id']}/run", headers=embedded.headers
    )
    assert response.status_code == 409
    assert "already running" in response.json()["detail"]
    assert embedded.wait(execution_id)["status"] == "succeeded"


def test_viewer_cannot_run_or_cancel(embedded):
    token = embedded.client.post(
        "/api/tokens", json={"name": "v", "role": "viewer"}, headers=embedded.headers
    ).json()["token"]
    workflow = embedded.create_workflow(workflow_jobs())
    viewer = {"Authorization": f"Bearer {token}"}
    assert (
        embedded.client.post(f"/api/workflows/{workflow['id']}/run", headers=viewer).status_code
        == 403
    )
    assert embedded.client.get("/api/executions", headers=viewer).status_code == 200


def test_quarantine_policy_loads_good_rows_and_reports_bad_ones(embedded):
    (embedded.landing / "tx.csv").write_text(
        "id,customer_id,amount,updated_at\n"
        "1,2,3.00,2024-01-01 00:00:00\n"
        "2,3\n"
        "3,4,not-a-number,2024-01-01 00:00:00\n"
        "4,5,6.50,2024-01-01 00:00:00\n"
    )
    jobs = workflow_jobs()
    jobs[0]["sourceConfig"]["fileConfig"]["malformedRows"] = "quarantine"
    workflow = embedded.create_workflow(jobs[:1])
    execution = embedded.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    ingest = execution["jobs"][0]
    assert ingest["quarantinedRows"] == 2 and ingest["rowsWritten"] == 2
    assert {o["table"] for o in ingest["outputs"]} == {"bronze_tx", "bronze_tx__quarantine"}
    assert sorted(embedded.read("bronze", "bronze_tx")["id"].to_list()) == [1, 4]
    quarantine = embedded.read("bronze", "bronze_tx__quarantine").sort("source_row")
    assert quarantine["source_row"].to_list() == [2, 3]
    assert quarantine["raw_line"][0] == "2,3"
    assert "not-a-number" in quarantine["raw_line"][1]
    assert "amount" in quarantine["reason"][1]
    assert set(quarantine["execution_id"]) == {execution["id"]}


def test_a_run_removes_old_uncommitted_files_and_keeps_everything_else(embedded):
    """What a writer killed before its commit leaves (a data file no commit references) is
    removed once older than any write can last; younger ones, and files a later commit
    replaced (time travel), stay."""
    import os
    import shutil

    from flowforge_runtime.job import ORPHAN_MIN_AGE

    write_transactions(embedded.landing / "tx.csv", 300)
    jobs = workflow_jobs()
    jobs[0]["destinationConfig"]["bronzeConfig"]["writeMode"] = "overwrite"
    workflow = embedded.create_workflow(jobs[:1])
    assert embedded.run(workflow["id"])["status"] == "succeeded"
    table = Path(embedded.app.state.settings.lake_root) / "bronze" / "bronze_tx"
    (committed,) = [Path(uri).name for uri in DeltaTable(str(table)).file_uris()]
    old, young = table / "part-killed-old.parquet", table / "part-killed-young.parquet"
    shutil.copy(table / committed, old)
    shutil.copy(table / committed, young)
    aged = time.time() - ORPHAN_MIN_AGE - 60
    os.utime(old, (aged, aged))

    assert embedded.run(workflow["id"])["status"] == "succeeded"  # overwrite: replaces `committed`
    left = {path.name for path in table.iterdir()}
    assert old.name not in left
    assert {young.name, committed} <= left  # too young to judge; replaced but kept for time travel
    assert DeltaTable(str(table), version=1).to_pyarrow_table().num_rows == 300
    assert embedded.read("bronze", "bronze_tx").height == 300


def test_a_bad_value_is_named_with_its_column_once(embedded):
    """issue 12: messages read "column 'premium': column 'premium': ..." (fixed in 00f5f28,
    pinned here): the job's error and the quarantined row's reason name the column once."""
    (embedded.landing / "policies.csv").write_text("policy,premium\nP1,12.50\nP2,abc\nP3,7\n")
    columns = [{"name": "premium", "type": "decimal", "precision": 10, "scale": 2}]
    reasons = {}
    for mode in ("fail", "quarantine"):
        job = {
            "name": f"Ingest policies ({mode})",
            "type": "file-based",
            "sourceConfig": {
                "type": "csv",
                "fileConfig": {
                    "filePath": "policies.csv",
                    "columns": columns,
                    "malformedRows": mode,
                },
            },
            "destinationConfig": {"bronzeConfig": {"tableName": f"bronze_policies_{mode}"}},
        }
        execution = embedded.run(embedded.create_workflow([job])["id"])
        [result] = execution["jobs"]
        if mode == "fail":
            assert execution["status"] == "failed"
            reasons[mode] = result["error"]["message"]
        else:
            assert execution["status"] == "succeeded" and result["quarantinedRows"] == 1
            quarantine = embedded.read("bronze", "bronze_policies_quarantine__quarantine")
            [reasons[mode]] = quarantine["reason"].to_list()
    for mode, message in reasons.items():
        assert message.count("premium") == 1, (mode, message)
        assert "column 'premium': 'abc' is not a decimal(10,2)" in message, (mode, message)
    assert reasons["fail"].startswith("file 'policies.csv', row 2 after the header, column")
