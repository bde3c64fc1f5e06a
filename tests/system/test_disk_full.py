"""A real full disk under a real server: `flowforge serve` (a subprocess) keeps its data dir on
a small file system of its own, the test fills it, and every write answers 503 with a JSON
reason and Retry-After; once space is freed the same requests work and nothing was lost.

The small file system is a tmpfs mount. Where mounting is not permitted (no root, no
CAP_SYS_ADMIN), the server instead runs under a file-size limit (``prlimit --fsize``) set to
the sizes its files have when the disk should be "full": writes past them fail with EFBIG,
which SQLite reports as an I/O error — a different errno, the same outage
(``FLOWFORGE_TEST_SMALL_DISK=prlimit`` forces this way)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, free_port
from tests.system.conftest import FLOWFORGE, Platform


class SmallDisk:
    """A data dir whose disk the test can fill and free."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mounted = False
        self.filler = root / "filler"
        self.process: subprocess.Popen | None = None

    def prepare(self) -> None:
        self.root.mkdir(parents=True)
        if os.environ.get("FLOWFORGE_TEST_SMALL_DISK") == "prlimit":  # to test the fallback
            return
        mount = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(self.root)],
            capture_output=True,
            check=False,
        )
        self.mounted = mount.returncode == 0
        if not self.mounted and not shutil.which("prlimit"):
            pytest.fail(f"cannot mount a tmpfs ({mount.stderr!r}) and prlimit is missing")

    def fill(self) -> None:
        if not self.mounted:
            # The catalog's next write appends to its write-ahead log: no file may grow.
            wal = self.root / "data" / "flowforge.db-wal"
            self._limit(str(wal.stat().st_size))
            return
        chunk = b"\0" * (1 << 20)
        with open(self.filler, "wb", buffering=0) as handle:
            while chunk:
                try:
                    handle.write(chunk)
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error
                    chunk = chunk[: len(chunk) // 2] if len(chunk) > 512 else b""
        assert shutil.disk_usage(self.root).free < 64 * 1024

    def free(self) -> None:
        if self.mounted:
            self.filler.unlink()
        else:
            self._limit("unlimited")

    def _limit(self, size: str) -> None:
        assert self.process is not None
        subprocess.run(
            ["prlimit", f"--pid={self.process.pid}", f"--fsize={size}:unlimited"], check=True
        )

    def cleanup(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], check=False)


@pytest.fixture
def server_on_small_disk(tmp_path):
    disk = SmallDisk(tmp_path / "disk")
    disk.prepare()
    data_dir = disk.root / "data"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLOWFORGE_")}
    env.update(FLOWFORGE_DATA_DIR=str(data_dir), FLOWFORGE_ADMIN_TOKEN=ADMIN_TOKEN)
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        [FLOWFORGE, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    disk.process = process
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "flowforge serve did not start"
            time.sleep(0.2)
        platform = Platform(client, str(data_dir / "lake"))
        platform.landing = data_dir / "landing"
        yield platform, disk
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)
        log.close()
        disk.cleanup()


def test_a_full_disk_is_a_503_with_a_reason_and_the_same_run_works_once_space_is_freed(
    server_on_small_disk,
):
    platform, disk = server_on_small_disk
    (platform.landing / "accounts.csv").write_text("id,name\n1,Ada\n2,Grace\n")
    workflow = platform.create_workflow(
        [
            {
                "name": "Ingest accounts",
                "type": "file-based",
                "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "accounts.csv"}},
                "destinationConfig": {"bronzeConfig": {"tableName": "bronze_accounts"}},
            }
        ]
    )
    headers = platform.headers
    run_url = f"/api/workflows/{workflow['id']}/run"

    disk.fill()
    refused = platform.client.post(run_url, headers=headers)
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/json"
    assert int(refused.headers["Retry-After"]) > 0
    message = refused.json()["detail"]
    assert "catalog database cannot be used" in message
    assert ("disk is full" if disk.mounted else "I/O error") in message
    assert "send it again later" in message
    other = platform.client.post("/api/workflows", json={"name": "while full"}, headers=headers)
    assert other.status_code == 503 and "Retry-After" in other.headers, other.text
    upload = ("big.csv", b"id,name\n" + b"1,abcdefghij\n" * 40_000, "text/csv")
    uploaded = platform.client.post("/api/files", files={"file": upload}, headers=headers)
    assert uploaded.status_code == 503 and "cannot be used" in uploaded.text, uploaded.text
    assert platform.client.get("/api/files", headers=headers).json()["count"] == 0
    assert not list((platform.landing / "uploads").glob("*"))  # no half-written file
    # Reads still work, and the refused run left nothing behind.
    listed = platform.client.get(
        "/api/executions", params={"workflowId": workflow["id"]}, headers=headers
    )
    assert listed.status_code == 200 and listed.json()["count"] == 0

    disk.free()
    execution = platform.wait(platform.start(workflow["id"]))
    assert execution["status"] == "succeeded", execution
    assert execution["jobs"][0]["rowsWritten"] == 2
    assert platform.read("bronze", "bronze_accounts").height == 2
    jobs = platform.client.get(f"/api/workflows/{workflow['id']}/jobs", headers=headers).json()
    assert [job["name"] for job in jobs["data"]] == ["Ingest accounts"]
    names = [
        w["name"] for w in platform.client.get("/api/workflows", headers=headers).json()["data"]
    ]
    assert "while full" not in names
    uploaded = platform.client.post("/api/files", files={"file": upload}, headers=headers)
    assert uploaded.status_code == 201, uploaded.text
