"""The API under load, by route: 50 concurrent clients against a real `flowforge serve`
process (a fresh data directory, N workflows), on SQLite (the embedded default) and on a
fresh PostgreSQL database, and on PostgreSQL with a Redis broker served by 1 and by 2 API
processes (`--workers 2`); and the server's memory at rest.

Each route is driven on its own for a few seconds by 50 clients, each a keep-alive HTTP/1.1
connection sending one request after the other (a small asyncio load generator in this
process: a general HTTP client library would spend more CPU than the server on these two
cores). Printed per route: p50, p99 and requests/s, and their ratios to ``GET /healthz`` of
the same server driven the same way in the same run (the raw baseline: routing, the server
loop and the client, no auth, no database). ``POST /api/workflows/{id}/run`` runs a
workflow of one job (a 2-row CSV appended to its bronze table): an execution is accepted,
recorded and audited, and a request while the workflow's run is still going is a 409.

Targets (issue 17, section 1): reads p99 < 100 ms and >= 1,000 requests/s with 50 clients;
(section 5) the server's RSS at rest < 150 MiB, measured after start-up and after one
request of each kind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from bench._common import (
    check,
    headline,
    line,
    mib,
    out_dir,
    percentile,
    report,
    scale,
    section,
)
from bench._server_cpu import ServerCpu, process_tree, tree_cpu_seconds

TOKEN = "bench-api-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
CLIENTS = 50
WORKFLOWS = 200
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) * 1024
    return 0


def _start_server(
    directory: Path, database_url: str | None, *, broker_url: str | None = None, workers: int = 1
) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")},
        "FLOWFORGE_DATA_DIR": str(directory),
        "FLOWFORGE_ADMIN_TOKEN": TOKEN,
    }
    if database_url:
        env["FLOWFORGE_DATABASE_URL"] = database_url
        env["FLOWFORGE_AUTO_MIGRATE"] = "true"  # a fresh database: its tables, at start
    if broker_url:
        env["FLOWFORGE_BROKER_URL"] = broker_url
    command = [str(Path(sys.executable).parent / "flowforge"), "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    log_path = directory / "serve.log"
    log = open(log_path, "w")  # noqa: SIM115 (closed with the process)
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        try:
            answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            # every worker process serving, not only the first one up
            if answered and log_path.read_text().count("startup complete") >= workers:
                return server, port
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError(f"flowforge serve did not start: {log_path}")
        time.sleep(0.1)


def _api_processes(server: subprocess.Popen, workers: int) -> list[int]:
    """The processes serving requests: the server itself, or its ``workers`` processes
    (uvicorn's supervisor and multiprocessing's resource tracker only wait)."""
    if workers == 1:
        return [server.pid]
    return [
        pid
        for pid in process_tree(server.pid)[1:]
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for row in head.split(b"\r\n")[1:]:
        name, _, value = row.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _drive(
    port: int, method: str, paths: list[str], seconds: float, authorized: bool
) -> tuple[list[float], dict[int, int], float]:
    """``CLIENTS`` connections asking ``paths`` in turn for ``seconds``: (latencies, answers
    by status, wall seconds)."""
    auth = f"Authorization: Bearer {TOKEN}\r\n" if authorized else ""
    body = (
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        if method == "POST"
        else "\r\n"
    )
    requests = [
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{body}".encode() for path in paths
    ]
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    # Opened all at once, as a gateway's keep-alive pool is, each answering a /healthz
    # before the clock starts. With `--workers N` each process listens on a socket of its
    # own (SO_REUSEPORT) and the kernel hashes each connection to one of them: the CPU
    # split printed per route shows how they fell.
    async def opened() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await _read_response(reader)
        return reader, writer

    connections = await asyncio.gather(*(opened() for _ in range(CLIENTS)))
    start = time.perf_counter()
    until = start + seconds

    async def client(number: int) -> None:
        reader, writer = connections[number]
        index = number
        try:
            while time.perf_counter() < until:
                request = requests[index % len(requests)]
                index += 1
                began = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - began)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(client(number) for number in range(CLIENTS)))
    return latencies, statuses, time.perf_counter() - start


def _setup(port: int, landing: Path) -> list[str]:
    """``WORKFLOWS`` workflows of one job each: a 2-row CSV appended to its own bronze table
    (a trivial run)."""
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "tiny.csv").write_text("id,amount\n1,2.5\n2,3.5\n")
    ids = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS, timeout=30) as c:
        for number in range(WORKFLOWS):
            response = c.post(
                "/api/workflows",
                json={
                    "name": f"api-{number}",
                    "description": f"bench workflow {number}",
                    "tags": ["bench", f"t{number % 7}"],
                },
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
            c.post(
                f"/api/workflows/{ids[-1]}/jobs",
                json={
                    "name": "Ingest",
                    "type": "file-based",
                    "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "tiny.csv"}},
                    "destinationConfig": {"bronzeConfig": {"tableName": f"api_{number}"}},
                },
            ).raise_for_status()
    return ids


def _run(
    label: str, database_url: str | None, *, broker_url: str | None = None, workers: int = 1
) -> None:
    seconds = max(2.0, 8.0 * min(1.0, scale()))
    directory = out_dir(f"api/{label}", fresh=True)
    server, port = _start_server(directory, database_url, broker_url=broker_url, workers=workers)
    try:
        time.sleep(1.0)
        serving = _api_processes(server, workers)
        tree = process_tree(server.pid)  # CPU is summed over every process of the server
        at_start = max(_rss(pid) for pid in serving)
        ids = _setup(port, directory / "landing")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS) as c:
            c.get("/api/workflows").raise_for_status()
            c.get(f"/api/workflows/{ids[1]}").raise_for_status()
        after_requests = max(_rss(pid) for pid in serving)
        routes = [
            ("GET /healthz (baseline)", "GET", ["/healthz"], False),
            ("GET /api/workflows", "GET", ["/api/workflows"], True),
            ("GET /api/workflows/{id}", "GET", [f"/api/workflows/{i}" for i in ids], True),
            (
                "POST /api/workflows/{id}/run",
                "POST",
                [f"/api/workflows/{i}/run" for i in ids],
                True,
            ),
        ]
        results = {}
        cpu: dict[str, tuple[float, float]] = {}  # (server, load generator) CPU seconds
        shares: dict[str, list[float]] = {}  # each API process's CPU seconds
        database_cpu: dict[str, float | None] = {}  # PostgreSQL's backends of the database
        database_name = database_url.rsplit("/", 1)[1] if database_url else None
        for name, method, paths, authorized in routes:
            asyncio.run(_drive(port, method, paths, 1.0, authorized))  # warm up
            server_cpu, own_cpu = tree_cpu_seconds(tree), time.process_time()
            each_before = [tree_cpu_seconds([pid]) for pid in serving]
            if database_name:
                with ServerCpu(database_name) as backends:
                    results[name] = asyncio.run(_drive(port, method, paths, seconds, authorized))
                database_cpu[name] = backends.seconds()
            else:
                results[name] = asyncio.run(_drive(port, method, paths, seconds, authorized))
            shares[name] = [
                tree_cpu_seconds([pid]) - before
                for pid, before in zip(serving, each_before, strict=True)
            ]
            cpu[name] = (
                tree_cpu_seconds(tree) - server_cpu,
                # the bench's own, without its thread that watched PostgreSQL's backends
                time.process_time() - own_cpu - (backends.own_seconds if database_name else 0.0),
            )
        after_load = max(_rss(pid) for pid in serving)
        assert _api_processes(server, workers) == serving, "an API process was replaced"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    base_latencies, _, base_wall = results["GET /healthz (baseline)"]
    base50, base99 = percentile(base_latencies, 0.5), percentile(base_latencies, 0.99)
    base_rate = len(base_latencies) / base_wall
    line("load average (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    line("clients x seconds per route", f"{CLIENTS} x {seconds:.0f} s, {WORKFLOWS} workflows")
    line("API processes", f"{workers} (CPU per request: every process of the server, summed)")
    for name, (latencies, statuses, wall) in results.items():
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        rate = len(latencies) / wall
        text = (
            f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, {rate:,.0f} req/s"
            + (
                ""
                if name.startswith("GET /healthz")
                else f"  (x{p50 / base50:.1f} p50, x{p99 / base99:.1f} p99, "
                f"x{rate / base_rate:.2f} req/s of healthz)"
            )
            + f"  {dict(sorted(statuses.items()))}"
        )
        server_cpu, own_cpu = cpu[name]
        split = ""
        if workers > 1:
            total = sum(shares[name]) or 1.0
            split = (
                " (API processes "
                + " / ".join(f"{share / total:.0%}" for share in shares[name])
                + ")"
            )
        backends = database_cpu.get(name)
        database = (
            "" if backends is None else f"PostgreSQL {backends / len(latencies) * 1e3:.2f} ms, "
        )
        line(
            f"{name}: CPU per request",
            f"server {server_cpu / len(latencies) * 1e3:.2f} ms{split}, {database}"
            f"load generator {own_cpu / len(latencies) * 1e3:.2f} ms",
        )
        # 409: the workflow has a run still active (one at a time), a right answer too
        expected = {202, 409} if name.startswith("POST") else {200}
        bad = sum(n for code, n in statuses.items() if code not in expected)
        brief = (
            f"{rate:,.0f} req/s = x{rate / base_rate:.2f} of /healthz ({base_rate:,.0f}), "
            f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms = x{p99 / base99:.1f} of /healthz"
        )
        if name.startswith("GET /api"):
            ok = p99 < 0.1 and rate >= 1000 and not bad
            target = "p99 < 100 ms, >= 1,000 req/s, all 200"
            check(name, text, ok=ok, target=target)
            headline(name, brief, target=target, ok=ok)
        elif name.startswith("POST"):
            check(name, text, ok=not bad, target="all 202 or 409")
            headline(name, brief, target="all 202 or 409", ok=not bad)
        else:
            line(name, text)
    each = " (the largest API process)" if workers > 1 else ""
    check(
        f"server RSS at rest after start-up{each}",
        mib(at_start),
        ok=at_start < 150 * 2**20,
        target="< 150 MiB",
    )
    if workers == 1:
        ok = at_start < 150 * 2**20
        headline("server RSS at rest", mib(at_start), target="< 150 MiB", ok=ok)
    line(f"server RSS after one request of each{each}", mib(after_requests))
    line(f"server RSS after the load{each}", mib(after_load))


def _postgres_database() -> str | None:
    try:
        import psycopg

        name = f"flowforge_bench_api_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except Exception as error:  # noqa: BLE001 (no server: the part is skipped)
        print(f"  PostgreSQL: SKIPPED ({type(error).__name__}: {error})")
        return None
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _redis_server(directory: Path) -> subprocess.Popen | None:
    """A Redis server of the bench's own on a free port (nothing kept on disk): the broker
    the runs are sent to. None (the part is skipped) without ``redis-server``."""
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        print("  broker: SKIPPED (no redis-server on PATH)")
        return None
    port = _free_port()
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process.url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis.from_url(process.url).ping()
            return process
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


def _broker_deployment() -> None:
    """PostgreSQL and a Redis broker (jobs would run on `flowforge worker` processes; none
    runs here, so a run accepted stays queued and the next request for its workflow is a
    409): `flowforge serve` with 1 API process, then `--workers 2`, each on a fresh database,
    alternating ``FLOWFORGE_BENCH_API_ROUNDS`` times (1 by default)."""
    rounds = int(os.environ.get("FLOWFORGE_BENCH_API_ROUNDS", "1"))
    for round_ in range(1, rounds + 1):
        for workers in (1, 2):
            name = f"PostgreSQL + Redis broker, {workers} API process{'es' * (workers > 1)}"
            section(name + (f" (round {round_})" if rounds > 1 else ""), name)
            redis_server = _redis_server(out_dir("api/redis", fresh=True))
            if redis_server is None:
                return
            url = _postgres_database()
            try:
                if url:
                    _run(
                        f"broker-{workers}",
                        url,
                        broker_url=redis_server.url,
                        workers=workers,
                    )
            finally:
                redis_server.kill()
                redis_server.wait(timeout=10)
                if url:
                    _drop(url)


def main() -> None:
    wanted = os.environ.get(
        "FLOWFORGE_BENCH_API_DATABASES", "sqlite,postgresql,postgresql+broker"
    ).split(",")
    if "sqlite" in wanted:
        section("SQLite (the embedded default)", "SQLite")
        _run("sqlite", None)
    if "postgresql" in wanted:
        section("PostgreSQL")
        url = _postgres_database()
        if url:
            try:
                _run("postgresql", url)
            finally:
                _drop(url)
    if "postgresql+broker" in wanted:
        _broker_deployment()
    report(__name__, checks=False)  # the headlines above: each route's ratios to /healthz


if __name__ == "__main__":
    main()
