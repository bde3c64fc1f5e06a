"""Upload memory: stream a large CSV into `POST /api/files` of a real `flowforge serve`
process and report the server's peak RSS (target < 200 MB), next to the server's RSS at rest
(the raw baseline of the same run) and the upload throughput."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._common import check, line, mib, out_dir, report, scaled

TOKEN = "bench-upload-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _peak_rss(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) * 1024
    return 0


def _current_rss(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) * 1024
    return 0


def _make_file(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size >= size:
        return
    row = b"123456,Jane,Doe,jane.doe@example.com,2024-01-02,1234.56,checking,active\n"
    chunk = row * (1024 * 1024 // len(row))
    with open(path, "wb") as handle:
        handle.write(b"id,first,last,email,opened,balance,type,status\n")
        written = 0
        while written < size:
            handle.write(chunk)
            written += len(chunk)


def _stream(path: Path, boundary: str):
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def main() -> None:
    size = scaled(1024**3, minimum=8 * 1024 * 1024)
    data = out_dir("upload") / "big.csv"
    _make_file(data, size)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="flowforge-bench-upload-") as directory:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")},
            "FLOWFORGE_DATA_DIR": directory,
            "FLOWFORGE_ADMIN_TOKEN": TOKEN,
            "FLOWFORGE_UPLOAD_MAX_BYTES": str(4 * 1024**3),
        }
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "flowforge"), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            at_rest = _current_rss(server.pid)
            boundary = "flowforgebenchboundary"
            started = time.perf_counter()
            response = httpx.post(
                f"{base}/api/files",
                content=_stream(data, boundary),
                headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
                timeout=600,
            )
            seconds = time.perf_counter() - started
            assert response.status_code == 201, response.text
            assert response.json()["size"] == data.stat().st_size
            peak = _peak_rss(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    line(
        "file uploaded",
        f"{mib(data.stat().st_size)} in {seconds:.2f} s "
        f"({data.stat().st_size / seconds / 1024**2:,.0f} MiB/s)",
    )
    line("server RSS at rest (baseline)", mib(at_rest))
    check(
        "server peak RSS during the upload",
        f"{mib(peak)}  (x{peak / max(at_rest, 1):.2f} of rest)",
        ok=peak < 200 * 1024**2,
        target="< 200 MB",
    )
    report(__name__)


if __name__ == "__main__":
    main()
