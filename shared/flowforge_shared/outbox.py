"""The outbox of a worker process: run events it could not hand to the broker are kept on
disk and sent, in order, once the broker answers again. A broker outage delays a job's
report; it does not lose it.

Each kept event is one file, ``<ns timestamp>-<pid>-<random>.json`` (written to a temporary
name, synced, then renamed, so a crash never leaves half an event). While this process has
kept events, new ones queue behind them, so one job's events keep their order. Files left by
a process that has died are sent by any other process of the host that flushes (claimed by
an atomic rename, so two never send the same file); a duplicate could only arise from a
crash between a send and the file's removal, and the orchestrator records each event once
(by its ``eventId``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("flowforge.outbox")

FLUSH_INTERVAL = 1.0


class Outbox:
    def __init__(self, directory: Path, send: Callable[[dict[str, Any]], None]) -> None:
        self.directory = Path(directory)
        self._send = send
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._kept = 0

    def emit(self, event: dict[str, Any]) -> None:
        """Send ``event`` now, or keep it for later when the broker does not take it (or when
        earlier events are still waiting, to keep the order)."""
        with self._lock:
            if self._kept == 0 and not self._orphans():
                try:
                    self._send(event)
                    return
                except Exception as error:  # noqa: BLE001 - any failure to send means keep it
                    log.warning("broker unreachable (%s): keeping run events in %s", error, self)
            self._keep(event)
            self._start_flusher()

    def flush(self) -> int:
        """Send what is kept, oldest first, stopping at the first failure; returns how many
        were sent."""
        sent = 0
        with self._lock:
            for path in self._sendable():
                claimed = self._claim(path)
                if claimed is None:
                    continue
                try:
                    event = json.loads(claimed.read_text())
                except (OSError, ValueError):
                    log.error("unreadable kept event %s left aside", claimed)
                    continue
                try:
                    self._send(event)
                except Exception:  # noqa: BLE001 - still down: put it back, try again later
                    claimed.rename(path)
                    break
                claimed.unlink(missing_ok=True)
                sent += 1
                if _writer(path) == os.getpid():
                    self._kept -= 1
        return sent

    def __str__(self) -> str:
        return str(self.directory)

    # ------------------------------------------------------------------ files

    def _keep(self, event: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        temporary = self.directory / f".{name}.tmp"
        with open(temporary, "w") as handle:
            json.dump(event, handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(self.directory / name)
        self._kept += 1

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        files = []
        for path in self.directory.iterdir():
            if path.name.endswith(".json"):
                files.append(path)
            elif ".sending-" in path.name and not _alive(int(path.name.rsplit("-", 1)[1])):
                # Claimed by a process that died while sending: give it back.
                original = path.with_name(path.name[1:].split(".sending-")[0])
                path.rename(original)
                files.append(original)
        return sorted(files)

    def _sendable(self) -> list[Path]:
        """This process's kept events and those of dead processes, oldest first."""
        return [p for p in self._files() if _writer(p) == os.getpid() or not _alive(_writer(p))]

    def _orphans(self) -> list[Path]:
        return [p for p in self._files() if not _alive(_writer(p))]

    def _claim(self, path: Path) -> Path | None:
        claimed = path.with_name(f".{path.name}.sending-{os.getpid()}")
        try:
            path.rename(claimed)
        except FileNotFoundError:  # another process took it
            return None
        return claimed

    # ------------------------------------------------------------------ flusher

    def _start_flusher(self) -> None:
        if self._flusher is not None and self._flusher.is_alive():
            return
        self._flusher = threading.Thread(
            target=self._flush_loop, name="flowforge-outbox", daemon=True
        )
        self._flusher.start()

    def _flush_loop(self) -> None:
        stop = threading.Event()
        while not stop.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - keep trying
                log.exception("outbox flush failed")
            with self._lock:
                if self._kept == 0 and not self._orphans():
                    self._flusher = None
                    return


def _writer(path: Path) -> int:
    """The pid of the process that kept the event (``<ns>-<pid>-<random>.json``)."""
    return int(path.name.split("-")[1])


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
