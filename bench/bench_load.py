"""The API under load: 50 clients for 60 s against a real `flowforge serve` process (the
embedded default: SQLite, jobs in threads), asking to run ten workflows over and over and
reading executions back, then an account of every run it accepted.

Raw baseline: ``GET /healthz`` of the same server, asked by the same clients between their
API calls, so the API's p50/p99 are printed as ratios to a trivial endpoint measured under
the same load at the same moment.

The account (the guarantees, not speed): no answer is a 5xx; every accepted run ends; none is
left active; at no time were two runs of one workflow active together; every succeeded run's
``rowsWritten`` equals the rows that run put in its bronze table, counted there by
``_execution_id``; and each table holds exactly the rows of its succeeded runs.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx

from bench._common import check, line, out_dir, percentile, report, scale

TOKEN = "bench-load-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
CLIENTS = 50
WORKFLOWS = 10
ROWS = 2_000
TERMINAL = {"succeeded", "failed", "cancelled"}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(directory: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")},
        "FLOWFORGE_DATA_DIR": str(directory),
        "FLOWFORGE_ADMIN_TOKEN": TOKEN,
    }
    log = open(directory / "serve.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "flowforge"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError(f"flowforge serve did not start: {directory / 'serve.log'}")
        time.sleep(0.1)


def _setup(url: str, landing: Path) -> list[str]:
    landing.mkdir(parents=True, exist_ok=True)
    with open(landing / "load.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "amount"])
        writer.writerows([index, f"{index % 997}.25"] for index in range(ROWS))
    ids = []
    with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
        for number in range(WORKFLOWS):
            workflow = client.post("/api/workflows", json={"name": f"load-{number}"}).json()
            client.post(
                f"/api/workflows/{workflow['id']}/jobs",
                json={
                    "name": "Ingest",
                    "type": "file-based",
                    "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "load.csv"}},
                    "destinationConfig": {"bronzeConfig": {"tableName": f"load_{number}"}},
                },
            ).raise_for_status()
            ids.append(workflow["id"])
    return ids


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.codes: Counter = Counter()
        self.accepted: list[str] = []
        self.errors: list[str] = []

    def record(self, kind: str, seconds: float, code: int) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.codes[(kind, code)] += 1


def _client(url: str, workflows: list[str], until: float, tally: Tally, seed: int) -> None:
    chooser = random.Random(seed)
    mine: list[str] = []
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as client:
        while time.monotonic() < until:
            try:
                if mine and chooser.random() < 0.5:
                    kind, method, path = (
                        "GET execution",
                        "GET",
                        f"/api/executions/{chooser.choice(mine)}",
                    )
                else:
                    kind, method, path = (
                        "POST run",
                        "POST",
                        f"/api/workflows/{chooser.choice(workflows)}/run",
                    )
                start = time.perf_counter()
                response = client.request(method, path)
                tally.record(kind, time.perf_counter() - start, response.status_code)
                if kind == "POST run" and response.status_code == 202:
                    execution_id = response.json()["executionId"]
                    mine.append(execution_id)
                    with tally.lock:
                        tally.accepted.append(execution_id)
                start = time.perf_counter()
                health = client.get("/healthz")
                tally.record("GET /healthz", time.perf_counter() - start, health.status_code)
            except httpx.HTTPError as error:
                with tally.lock:
                    tally.errors.append(f"{type(error).__name__}: {error}")


def _account(
    url: str, lake: Path, workflows: list[str], tally: Tally
) -> list[tuple[str, bool, str]]:
    """The checks of every accepted run: (label, ok, detail)."""
    import polars as pl

    results = []
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as client:
        deadline = time.monotonic() + 300
        executions = {}
        for execution_id in tally.accepted:
            while True:
                execution = client.get(f"/api/executions/{execution_id}").json()
                if execution["status"] in TERMINAL or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            executions[execution_id] = execution
        active = [
            e
            for status in ("queued", "running", "cancelling")
            for e in client.get("/api/executions", params={"status": status, "limit": 500}).json()[
                "data"
            ]
        ]
    statuses = Counter(e["status"] for e in executions.values())
    results.append(
        (
            "accepted runs that ended",
            sum(statuses[s] for s in TERMINAL) == len(executions),
            f"{dict(statuses)}",
        )
    )
    results.append(("executions left active", not active, str(len(active))))

    overlapping = 0
    by_workflow: dict[str, list[dict]] = defaultdict(list)
    for execution in executions.values():
        by_workflow[execution["workflowId"]].append(execution)
    for runs in by_workflow.values():
        windows = sorted((e["createdAt"], e["finishedAt"] or "9") for e in runs)
        overlapping += sum(1 for a, b in zip(windows, windows[1:], strict=False) if a[1] > b[0])
    results.append(("runs of one workflow active together", overlapping == 0, str(overlapping)))

    mismatched, empty_successes, table_rows_ok = 0, 0, True
    for number, workflow_id in enumerate(workflows):
        succeeded = [e for e in by_workflow.get(workflow_id, []) if e["status"] == "succeeded"]
        path = lake / "bronze" / f"load_{number}"
        counts: dict[str, int] = {}
        height = 0
        if (path / "_delta_log").exists():
            table = pl.read_delta(str(path))
            height = table.height
            counts = dict(table.group_by("_execution_id").len().iter_rows())
        for execution in succeeded:
            written = execution["jobs"][0]["rowsWritten"]
            empty_successes += written == 0
            mismatched += counts.get(execution["id"], 0) != written
        table_rows_ok &= height == ROWS * len(succeeded)
    results.append(
        ("succeeded runs whose rowsWritten != rows in bronze", mismatched == 0, str(mismatched))
    )
    results.append(
        ("succeeded runs that wrote nothing", empty_successes == 0, str(empty_successes))
    )
    results.append(
        ("tables hold exactly their succeeded runs' rows", table_rows_ok, str(table_rows_ok))
    )
    return results


def main() -> None:
    duration = max(5.0, 60.0 * min(1.0, scale()))
    directory = out_dir("load", fresh=True)
    server, url = _start_server(directory)
    try:
        workflows = _setup(url, directory / "landing")
        tally = Tally()
        until = time.monotonic() + duration
        threads = [
            threading.Thread(target=_client, args=(url, workflows, until, tally, seed))
            for seed in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        checks = _account(url, directory / "lake", workflows, tally)
    finally:
        server.terminate()
        server.wait(timeout=30)

    total = sum(tally.codes.values())
    server_errors = sum(n for (_, code), n in tally.codes.items() if code >= 500)
    line(
        "clients x seconds",
        f"{CLIENTS} x {duration:.0f} s, {total:,} requests ({total / duration:,.0f}/s)",
    )
    line(
        "answers",
        ", ".join(f"{kind} {code}: {n:,}" for (kind, code), n in sorted(tally.codes.items())),
    )
    baseline = tally.latency["GET /healthz"]
    base50, base99 = percentile(baseline, 0.5), percentile(baseline, 0.99)
    line("GET /healthz (baseline)", f"p50 {base50 * 1000:.1f} ms, p99 {base99 * 1000:.1f} ms")
    for kind in ("POST run", "GET execution"):
        values = tally.latency[kind]
        if not values:
            continue
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        line(
            kind,
            f"p50 {p50 * 1000:.1f} ms ({p50 / base50:.1f}x healthz), "
            f"p99 {p99 * 1000:.1f} ms ({p99 / base99:.1f}x healthz)",
        )
    check("5xx answers", str(server_errors), ok=server_errors == 0, target="0")
    check("transport errors", str(len(tally.errors)), ok=not tally.errors, target="0")
    line("runs accepted", f"{len(tally.accepted):,}")
    for label, ok, detail in checks:
        check(label, detail, ok=ok, target="every run accounted for")
    report(__name__, lines=("POST run", "GET execution"))
