"""A pass repeated on a daemon thread of its own (the reaper's, the scheduler's): a pass that
fails is logged and the next one tries again; ``stop`` ends the loop between passes."""

from __future__ import annotations

import logging
import threading


class PeriodicPass:
    """Subclasses name their thread and log, and give :meth:`run_pass` and :attr:`interval`."""

    thread_name = "flowforge-pass"
    log = logging.getLogger("flowforge")

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)

    @property
    def interval(self) -> float:
        """Seconds between two passes."""
        raise NotImplementedError

    def run_pass(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            try:
                self.run_pass()
            except Exception:  # noqa: BLE001 - the next pass tries again
                self.log.exception("%s pass failed", self.thread_name.removeprefix("flowforge-"))
            if self._stop.wait(self.interval):
                return
