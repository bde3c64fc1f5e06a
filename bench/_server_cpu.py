"""CPU seconds of a local PostgreSQL's backends serving one database, and of this process's
threads, read from ``/proc`` while a benchmark runs.

A backend's process title names its database (``postgres: user dbname 127.0.0.1(port)
...``), so the backends of the bench's own fresh database are told from every other
session on the server. A backend exits with its connection, taking its counters along: a
thread polls every 50 ms and keeps the last value seen per process, so at most the last
50 ms of each connection are missed. Where the server's processes cannot be seen (another
host, a container) :meth:`ServerCpu.seconds` is None.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _cpu_seconds(stat_path: Path) -> float | None:
    """utime + stime of one process or thread (``/proc/.../stat``)."""
    try:
        text = stat_path.read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, every thread) process ``pid`` has used so far; 0 once it
    is gone."""
    return _cpu_seconds(_PROC / str(pid) / "stat") or 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process under it (a `flowforge serve --workers N` supervisor and
    its workers), as they are now."""
    found, index = [pid], 0
    while index < len(found):
        current = found[index]
        index += 1
        for task in (_PROC / str(current) / "task").glob("*/children"):
            try:
                found.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds the processes ``pids`` (e.g. :func:`process_tree`'s) have used so far."""
    return sum(process_cpu_seconds(pid) for pid in pids)


class ServerCpu:
    """``with ServerCpu("db") as cpu: ...`` then ``cpu.seconds()``: the CPU the server's
    backends for database ``db`` spent inside the block."""

    def __init__(self, database: str) -> None:
        self._marker = f" {database} ".encode()
        self._seen: dict[int, float] = {}
        self._before: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="bench-server-cpu", daemon=True)
        self._visible = False
        self.own_seconds = 0.0
        """CPU the polling thread itself used (in this process: subtract it from its CPU)."""

    def _scan(self) -> None:
        for entry in _PROC.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if not title.startswith(b"postgres: ") or self._marker not in title:
                continue
            seconds = _cpu_seconds(entry / "stat")
            if seconds is not None:
                self._visible = True
                pid = int(entry.name)
                self._seen[pid] = max(self._seen.get(pid, 0.0), seconds)

    def _poll(self) -> None:
        start = time.thread_time()
        while not self._stop.is_set():
            self._scan()
            time.sleep(0.05)
        self.own_seconds = time.thread_time() - start

    def __enter__(self) -> ServerCpu:
        self._scan()
        self._before = dict(self._seen)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._scan()

    def seconds(self) -> float | None:
        if not self._visible:
            return None
        return sum(value - self._before.get(pid, 0.0) for pid, value in self._seen.items())


def own_cpu_seconds() -> float:
    """CPU seconds (user + system, every thread) this process has used so far."""
    times = os.times()
    return times.user + times.system
