"""Who holds a job run: a process identity that the reaper can check on the same host.

    <kind>@<host>/<boot id>:<pid>.<start time>

``kind`` says what the process is (``embedded``, ``ingest``, ...). The boot id and the
process start time (clock ticks since boot, from ``/proc``) make the identity unique even
when a pid is reused after a restart. :func:`is_gone` answers True only when it is certain
the process no longer exists: same host, same boot, and no process with that pid and start
time, or the host has rebooted since. Anywhere else (another host, no ``/proc``) it answers
False and the reaper waits for the heartbeat lease instead.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache

_BOOT_ID = "/proc/sys/kernel/random/boot_id"


@lru_cache
def _host() -> str:
    return socket.gethostname()


@lru_cache
def _boot() -> str:
    try:
        with open(_BOOT_ID) as handle:
            return handle.read().strip().replace("-", "")[:12]
    except OSError:
        return "unknown"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if there is no such
    process (or no /proc to ask)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]  # field 22 of the whole line


def process_identity(kind: str, pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{kind}@{_host()}/{_boot()}:{pid}.{_start_time(pid) or '0'}"


def is_gone(owner: str | None) -> bool:
    """Whether the process ``owner`` names has certainly ended."""
    if not owner or "@" not in owner:
        return False
    try:
        _, rest = owner.split("@", 1)
        where, process = rest.rsplit(":", 1)
        host, boot = where.rsplit("/", 1)
        pid_text, start = process.split(".", 1)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != _host() or "unknown" in (boot, _boot()):
        return False
    if boot != _boot():
        return True  # this host has rebooted since
    return start != "0" and _start_time(pid) != start
