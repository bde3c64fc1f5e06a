"""Real processes for the fault-injection tests: `flowforge serve`, `flowforge worker` and
a Redis server of the test's own, each started, killed (SIGKILL), paused and restarted the
way an operator's bad day would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, free_port

BIN = Path(sys.executable).parent
FLOWFORGE = str(BIN / "flowforge")
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TERMINAL = {"succeeded", "failed", "cancelled"}

FAST_LIVENESS = {
    # Lost workers found in seconds instead of a minute, so the tests stay short.
    "FLOWFORGE_HEARTBEAT_INTERVAL": "0.5",
    "FLOWFORGE_HEARTBEAT_TIMEOUT": "4",
    "FLOWFORGE_DISPATCH_GRACE": "2",
    "FLOWFORGE_REAPER_INTERVAL": "0.5",
    "FLOWFORGE_TASK_RETRY_BACKOFF": "0.2",
}


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")}
    return {
        **clean,
        "FLOWFORGE_DATA_DIR": str(data_dir),
        "FLOWFORGE_ADMIN_TOKEN": ADMIN_TOKEN,
        **FAST_LIVENESS,
        **extra,
    }


class Server:
    """`flowforge serve` (or ``command``, e.g. ``("service", "catalog")``) on a port of its
    own, with its log in the data dir."""

    def __init__(self, data_dir: Path, command: tuple[str, ...] = ("serve",), **env: str) -> None:
        self.data_dir = data_dir
        self.command = command
        self.env = base_env(data_dir, **env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> Server:
        self.starts += 1
        log = open(self.data_dir / f"serve-{self.starts}.log", "w")
        self.process = subprocess.Popen(
            [FLOWFORGE, *self.command, "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, f"serve exited: {self.log()[-3000:]}"
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.1)

    def log(self) -> str:
        return (self.data_dir / f"serve-{self.starts}.log").read_text()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=HEADERS, timeout=30)


class RedisServer:
    """A Redis server of the test's own, on another port, that keeps nothing on disk: a
    restart starts it empty, like a Redis without persistence after a crash."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (apt-get install redis-server)"
            if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
                pytest.fail(message)
            pytest.skip(message)
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return self
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    stop = kill


class Workers:
    """`flowforge worker` processes."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: list[subprocess.Popen] = []

    def start(self, queue: str, concurrency: int = 1) -> subprocess.Popen:
        path = self.logs / f"worker-{queue}-{len(self.processes)}.log"
        process = subprocess.Popen(
            [FLOWFORGE, "worker", queue, "--concurrency", str(concurrency), "--loglevel", "INFO"],
            env=self.env,
            stdout=open(path, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the whole worker can be killed
        )
        process.log_path = path
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while "ready." not in path.read_text():
            assert process.poll() is None, f"worker {queue} exited: {path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"worker {queue} not ready"
            time.sleep(0.1)
        return process

    @staticmethod
    def kill_whole(process: subprocess.Popen) -> None:
        """SIGKILL the worker's main process and its pool at once (the host died)."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGCONT)
                    process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_for(predicate, timeout: float = 120, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def settled(client: httpx.Client, execution_id: str, timeout: float = 120) -> dict:
    """The execution once it has ended and no job of it is still running."""

    def done():
        execution = client.get(f"/api/executions/{execution_id}").json()
        if execution["status"] in TERMINAL and all(
            job["status"] != "running" for job in execution["jobs"]
        ):
            return execution
        return None

    return wait_for(done, timeout, 0.2, f"execution {execution_id} to end")


def no_active_execution(client: httpx.Client) -> None:
    for status in ("queued", "running", "cancelling"):
        listed = client.get("/api/executions", params={"status": status}).json()
        assert listed["data"] == [], f"executions left {status}: {listed['data']}"
