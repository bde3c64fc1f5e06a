"""Many more concurrent requests than the API has threads and database connections, on a real
`flowforge serve` over PostgreSQL: every request is answered (2xx, a run's 409, or a 503 that
says the server is busy) within a bound, and the server still answers afterwards.

Before the request slots (flowforge_shared.deps.get_session), 150 clients asking
``GET /api/workflows/{id}`` stalled the server: every AnyIO thread waited for a pooled
connection held by a request that waited for a thread to validate its answer, until the
pool's 30 s timeout (each request took ~60 s, half of them 503)."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.system.processes import HEADERS, Server

CLIENTS = 150
SECONDS = 10.0
# Under the pool's 30 s timeout, which is what a stalled server answers by: a request waits
# at most 10 s for a request slot (then 503), and once admitted holds no thread while it
# waits for a connection.
BOUND = 25.0
ANSWERS = {200, 202, 409, 503}  # 409: that workflow's previous run is still active


async def _load(url: str, ids: list[str]) -> list[tuple[str, int | str, float, httpx.Response]]:
    paths = (
        [("GET", f"/api/workflows/{i}") for i in ids]
        + [("GET", "/api/workflows")] * 4
        + [("POST", f"/api/workflows/{ids[0]}/run")]
    )
    results: list = []
    # a connection of each client's own, used back to back (never idle in a shared pool,
    # where the server may close it as the client picks it up: a transport error of the
    # client's); all made before the clock starts (making one costs a few ms of CPU)
    clients = [
        httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=BOUND + 20) for _ in range(CLIENTS)
    ]
    until = time.monotonic() + SECONDS

    async def one_client(number: int, client: httpx.AsyncClient) -> None:
        index = number
        while True:  # at least one request each, then until the time is up
            method, path = paths[index % len(paths)]
            index += 1
            began = time.monotonic()
            try:
                response = await client.request(method, path)
                results.append((path, response.status_code, time.monotonic() - began, response))
            except httpx.TransportError as error:
                results.append((path, type(error).__name__, time.monotonic() - began, None))
            if time.monotonic() >= until:
                break

    try:
        await asyncio.gather(*(one_client(n, c) for n, c in enumerate(clients)))
    finally:
        for client in clients:
            await client.aclose()
    return results


def test_150_concurrent_clients_on_postgresql_are_answered_within_a_bound(
    tmp_path, fresh_postgres_url
):
    server = Server(
        tmp_path, FLOWFORGE_DATABASE_URL=fresh_postgres_url, FLOWFORGE_AUTO_MIGRATE="true"
    ).start()
    try:
        (tmp_path / "landing").mkdir(exist_ok=True)
        (tmp_path / "landing" / "tiny.csv").write_text("id,amount\n1,2.5\n")
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=30) as api:
            ids = []
            for number in range(20):
                created = api.post("/api/workflows", json={"name": f"concurrent-{number}"})
                assert created.status_code == 201, created.text
                ids.append(created.json()["id"])
            job = api.post(  # the workflow the clients run: a 1-row CSV into bronze
                f"/api/workflows/{ids[0]}/jobs",
                json={
                    "name": "Ingest",
                    "type": "file-based",
                    "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "tiny.csv"}},
                    "destinationConfig": {"bronzeConfig": {"tableName": "concurrent"}},
                },
            )
            assert job.status_code == 201, job.text

        results = asyncio.run(_load(server.url, ids))

        assert len(results) >= CLIENTS  # every client got at least one answer
        unexpected = [(p, s) for p, s, _, _ in results if s not in ANSWERS]
        assert not unexpected, unexpected[:10]
        slowest = max(seconds for _, _, seconds, _ in results)
        assert slowest < BOUND, f"a request took {slowest:.1f} s"
        reads = [s for p, s, _, _ in results if not p.endswith("/run")]
        assert reads.count(200) >= len(reads) // 2, {s: reads.count(s) for s in set(reads)}
        for _, status, _, response in results:
            if status == 503:  # busy: said so, with when to retry
                assert response.headers["Retry-After"].isdigit()
                assert (
                    "busy" in response.json()["detail"] or "database" in response.json()["detail"]
                )

        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=10) as api:
            assert api.get(f"/api/workflows/{ids[3]}").status_code == 200
        assert time.monotonic() - started < 5
        assert "QueuePool limit" not in server.log()  # no request waited out the pool
    finally:
        server.stop()
