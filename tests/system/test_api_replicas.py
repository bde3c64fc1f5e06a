"""`flowforge serve --workers 2`: one deployment's API in two processes on one port, on
PostgreSQL with a Redis broker (jobs on `flowforge worker` processes). Each request is
checked against the process that accepted its connection (read from /proc: the server
socket's inode in /proc/net/tcp, found among one worker process's file descriptors), so
"written through one, read through the other" is what the test saw, not what it hoped.

- A workflow created through one process is read through the other; a run started through
  one is followed to its end through the other.
- Twenty clients racing to run one workflow, their connections spread over both processes:
  exactly one run starts (the database's unique index of active runs, not a lock of one
  process), the others are told 409.
- A worker process killed with SIGKILL is replaced by uvicorn's supervisor, and the API
  keeps answering meanwhile.
- 50 connections opened at once are spread over both processes (each listens on its own
  SO_REUSEPORT socket), also after one was SIGKILLed and replaced; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

from tests.system.processes import (
    HEADERS,
    RedisServer,
    Server,
    Workers,
    base_env,
    settled,
    wait_for,
)

SECRET = "replicas-service-secret-0123456789abcdef"
CSV = "id,name\n1,a\n2,b\n3,c\n"


def api_processes(parent: int) -> list[int]:
    """The uvicorn worker processes under ``parent`` (not multiprocessing's tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def two_api_processes(server: Server, without: int | None = None) -> list[int]:
    """The two API processes, once both are up (and neither is ``without``)."""

    def found() -> list[int] | None:
        pids = api_processes(server.process.pid)
        return pids if len(pids) == 2 and without not in pids else None

    return wait_for(found, 60, 0.1, "two API processes")


def accepted_by(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The process holding the server's end of the connection from ``client_port``."""
    inode = None
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, remote = fields[1], fields[2]
        if int(local.rsplit(":", 1)[1], 16) == server_port and (
            int(remote.rsplit(":", 1)[1], 16) == client_port
        ):
            inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


class Connection:
    """One keep-alive connection, and the API process that accepted it. uvicorn closes a
    connection idle for 5 s: the next request then goes on a new connection accepted by
    the same process (others are opened and closed until one is), so what a request is
    said to have reached is always the process that answered it."""

    def __init__(self, server: Server, pids: list[int], token: str | None = None) -> None:
        self.server, self.pids = server, pids
        self.headers = {"Authorization": f"Bearer {token}"} if token else dict(HEADERS)
        self.owner = self._open()

    def _open(self) -> int | None:
        self.http = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        self._send("GET", "/healthz")  # accepted (and answered) before it is looked up
        return accepted_by(self.server.port, self.http.sock.getsockname()[1], self.pids)

    def _reopen(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            self.http.close()
            if self._open() == self.owner:
                return
            assert time.monotonic() < deadline, f"no new connection reached {self.owner}"

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        try:
            return self._send(method, path, body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self._reopen()  # closed while idle, before it read the request
            return self._send(method, path, body)

    def _send(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.http.request(method, path, body=payload, headers=headers)
        response = self.http.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def close(self) -> None:
        self.http.close()


def one_on_each(server: Server, pids: list[int], token: str | None = None) -> dict[int, Connection]:
    """A connection accepted by each API process (the kernel picks: open until each is seen;
    a process just started accepts once its app is built)."""
    found: dict[int, Connection] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        connection = Connection(server, pids, token)
        if connection.owner in pids and connection.owner not in found:
            found[connection.owner] = connection
        else:
            connection.close()
        if len(found) == len(pids):
            return found
    raise AssertionError(f"connections were not spread over {pids}: {list(found)}")


def two_processes(tmp_path, database_url: str, broker_url: str, **env: str) -> Server:
    """`flowforge serve --workers 2` on a fresh PostgreSQL database with a Redis broker (not
    started yet)."""
    return Server(
        tmp_path,
        ("serve", "--workers", "2"),
        FLOWFORGE_DATABASE_URL=database_url,
        FLOWFORGE_BROKER_URL=broker_url,
        FLOWFORGE_AUTO_MIGRATE="true",
        **env,
    )


def test_two_api_processes_share_one_deployment(tmp_path, fresh_postgres_url):
    redis_server = RedisServer(tmp_path).start()
    common = {
        "FLOWFORGE_DATABASE_URL": fresh_postgres_url,
        "FLOWFORGE_BROKER_URL": redis_server.url,
        "FLOWFORGE_SERVICE_SECRET": SECRET,
    }
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "tiny.csv").write_text(CSV)
    server = two_processes(
        tmp_path, fresh_postgres_url, redis_server.url, FLOWFORGE_SERVICE_SECRET=SECRET
    ).start()
    workers = Workers(base_env(tmp_path, **common), tmp_path)
    connections: list[Connection] = []
    try:
        for queue in ("events", "ingest"):
            workers.start(queue)
        pids = two_api_processes(server)
        first, second = one_on_each(server, pids).values()
        connections += [first, second]

        status, workflow = first.request("POST", "/api/workflows", {"name": "two-processes"})
        assert status == 201, workflow
        status, job = first.request(
            "POST",
            f"/api/workflows/{workflow['id']}/jobs",
            {
                "name": "Ingest tiny",
                "type": "file-based",
                "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "tiny.csv"}},
                "destinationConfig": {"bronzeConfig": {"tableName": "bronze_tiny"}},
            },
        )
        assert status == 201, job
        status, read = second.request("GET", f"/api/workflows/{workflow['id']}")
        assert status == 200 and read["name"] == "two-processes", read
        status, jobs = second.request("GET", f"/api/workflows/{workflow['id']}/jobs")
        assert status == 200 and [j["id"] for j in jobs["data"]] == [job["id"]], jobs

        status, started = second.request("POST", f"/api/workflows/{workflow['id']}/run")
        assert status == 202, started
        execution_id = started["executionId"]

        def ended() -> dict | None:
            code, execution = first.request("GET", f"/api/executions/{execution_id}")
            assert code == 200, execution
            return execution if execution["status"] in {"succeeded", "failed"} else None

        execution = wait_for(ended, 120, 0.2, "the run to end, seen through the other process")
        assert execution["status"] == "succeeded", execution
        assert execution["jobs"][0]["rowsWritten"] == 3, execution

        # Twenty racing run requests over both processes: one run, nineteen 409s. The ingest
        # worker is paused meanwhile, so the run that starts cannot end during the race.
        ingest = workers.processes[1]
        os.killpg(ingest.pid, signal.SIGSTOP)
        racers = [Connection(server, pids) for _ in range(20)]
        connections += racers
        assert {racer.owner for racer in racers} == set(pids), [r.owner for r in racers]
        barrier = threading.Barrier(len(racers))
        answers: list[tuple[int, dict]] = []

        def race(connection: Connection) -> None:
            barrier.wait()
            answers.append(connection.request("POST", f"/api/workflows/{workflow['id']}/run"))

        threads = [threading.Thread(target=race, args=(racer,)) for racer in racers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        codes = Counter(code for code, _ in answers)
        assert codes[202] == 1 and codes[409] == len(racers) - 1, answers
        assert all("already running" in body["detail"] for code, body in answers if code == 409)
        [winner] = [body["executionId"] for code, body in answers if code == 202]
        os.killpg(ingest.pid, signal.SIGCONT)
        with server.client() as client:
            assert settled(client, winner)["status"] == "succeeded"

        # SIGKILL one process: the other answers meanwhile, the supervisor starts another.
        victim = first.owner
        os.kill(victim, signal.SIGKILL)
        status, listed = second.request("GET", "/api/workflows")
        assert status == 200 and listed["count"] == 1, listed
        replaced = two_api_processes(server, without=victim)
        fresh = one_on_each(server, replaced)
        connections += list(fresh.values())
        for connection in fresh.values():
            status, read = connection.request("GET", f"/api/executions/{winner}")
            assert status == 200 and read["status"] == "succeeded", read
    finally:
        for connection in connections:
            connection.close()
        workers.stop()
        server.stop()
        redis_server.stop()
    assert f"Child process [{victim}] died" in server.log()


def test_the_first_admin_token_is_generated_once_for_both_processes(tmp_path, fresh_postgres_url):
    """The start-up each process would do (here: generating the first admin token, which
    two processes starting at once would each do) is done once, before the two start: one
    token, printed once, accepted by both."""
    redis_server = RedisServer(tmp_path).start()
    server = two_processes(tmp_path, fresh_postgres_url, redis_server.url)
    del server.env["FLOWFORGE_ADMIN_TOKEN"]
    server.start()
    connections: list[Connection] = []
    try:
        token = (tmp_path / "admin-token").read_text().strip()
        found = one_on_each(server, two_api_processes(server), token)
        connections += list(found.values())
        for connection in found.values():
            status, listed = connection.request("GET", "/api/tokens")
            assert status == 200, listed
            assert [t["role"] for t in listed["data"]] == ["admin"], listed
    finally:
        for connection in connections:
            connection.close()
        server.stop()
        redis_server.stop()
    assert server.log().count("generated the first admin token") == 1
    assert server.log().count(token) == 1


def burst(server: Server, pids: list[int], count: int = 50) -> Counter:
    """``count`` connections opened at once (each connect() returns when the kernel has
    queued the connection, before any process accepts it), then one /healthz on each: how
    many each process answered."""
    connections = [
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=60) for _ in range(count)
    ]
    try:
        for connection in connections:
            connection.connect()
        owners: Counter = Counter()
        for connection in connections:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert response.status == 200, response.read()
            response.read()
            owners[accepted_by(server.port, connection.sock.getsockname()[1], pids)] += 1
        return owners
    finally:
        for connection in connections:
            connection.close()


def test_connections_opened_at_once_are_spread_over_both_processes(tmp_path, fresh_postgres_url):
    """A gateway opening its keep-alive pool in one burst gets both processes: each worker
    listens on a socket of its own (SO_REUSEPORT) and the kernel hashes each connection to
    one of them, instead of the first process to wake taking every pending connection. Also
    after a worker is SIGKILLed and replaced (its socket left the group; the new one joined)."""
    redis_server = RedisServer(tmp_path).start()
    server = two_processes(tmp_path, fresh_postgres_url, redis_server.url).start()
    opened: list[Connection] = []
    try:
        pids = two_api_processes(server)
        opened += one_on_each(server, pids).values()  # both listening
        for _ in range(2):
            owners = burst(server, pids)
            assert set(owners) == set(pids) and min(owners.values()) >= 10, owners

        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        replaced = two_api_processes(server, without=victim)
        opened += one_on_each(server, replaced).values()  # the new one is listening
        owners = burst(server, replaced)
        assert set(owners) == set(replaced) and min(owners.values()) >= 10, owners
    finally:
        for connection in opened:
            connection.close()
        server.stop()
        redis_server.stop()
    assert server.process.returncode == 0, server.log()[-3000:]
    assert f"Child process [{victim}] died" in server.log()
    assert "Traceback" not in server.log(), server.log()[-3000:]
