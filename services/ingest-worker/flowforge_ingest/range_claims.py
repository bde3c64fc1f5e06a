"""The Redis side of a distributed parallel read (docs/connectors.md, "Distributed"): who
reads which key range, what each range left, the stop flag and the row counter.

Every key belongs to one attempt of one run (``<execution>:<seq>:<attempt>``), so a later
attempt never sees an earlier one's claims or results:

- ``flowforge:range:<run>:<i>``: the claim of range ``i``, its holder's id, set only when
  absent (or already the holder's: a redelivered task message keeps its task id) and living
  ``ttl`` seconds unless its holder refreshes it (:class:`ClaimKeeper`). An expired claim is
  free again: the coordinator takes it over.
- ``flowforge:range:<run>:results``: a hash, range index -> what the range left (its staged
  table, or the error that failed it). The first answer of a range wins (``HSETNX``).
- ``flowforge:range:<run>:stop``: raised by the coordinator when it gives up (a range
  failed, the run was cancelled, its time ran out): range tasks stop at their next batch.
- ``flowforge:range:<run>:rows``: rows staged by every range so far (the job's progress).

Keys live a day at most; :meth:`RangeClaims.forget` deletes them after the commit.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

log = logging.getLogger("flowforge.ingest")

DAY = 86_400

# Claim when free or already ours (KEYS[1] claim, ARGV[1] holder, ARGV[2] ttl ms).
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# Refresh only while still ours: an expired claim someone else took stays theirs.
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RangeClaims:
    """The claims, results, stop flag and row counter of one attempt of one run."""

    def __init__(
        self, client, execution_id: str, run_sequence: int, attempt: int, ttl: float
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.prefix = f"flowforge:range:{execution_id}:{run_sequence}:{attempt}"
        self._claim = client.register_script(_CLAIM)
        self._refresh = client.register_script(_REFRESH)
        self._release = client.register_script(_RELEASE)

    def _key(self, index: int) -> str:
        return f"{self.prefix}:{index}"

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    def claim(self, index: int, holder: str) -> bool:
        """Take range ``index`` for ``holder``: True when it was free (never claimed, or its
        claim expired) or already ``holder``'s."""
        return bool(self._claim(keys=[self._key(index)], args=[holder, self._ttl_ms]))

    def refresh(self, index: int, holder: str) -> bool:
        """Keep ``holder``'s claim alive another ``ttl``; False when it is no longer theirs."""
        return bool(self._refresh(keys=[self._key(index)], args=[holder, self._ttl_ms]))

    def release(self, index: int, holder: str) -> None:
        self._release(keys=[self._key(index)], args=[holder])

    def holder(self, index: int) -> str | None:
        value = self.client.get(self._key(index))
        return value.decode() if value is not None else None

    def finish(self, index: int, answer: dict[str, Any]) -> bool:
        """Record what range ``index`` left (``{"staged": ...}`` or ``{"error": ...}``);
        False when another delivery of the range answered first (its answer stands)."""
        key = f"{self.prefix}:results"
        first = bool(self.client.hsetnx(key, str(index), json.dumps(answer)))
        self.client.expire(key, DAY)
        return first

    def results(self) -> dict[int, dict[str, Any]]:
        raw = self.client.hgetall(f"{self.prefix}:results")
        return {int(index): json.loads(value) for index, value in raw.items()}

    def stop(self) -> None:
        self.client.set(f"{self.prefix}:stop", "1", ex=DAY)

    def stopped(self) -> bool:
        return bool(self.client.exists(f"{self.prefix}:stop"))

    def add_rows(self, rows: int) -> None:
        key = f"{self.prefix}:rows"
        self.client.incrby(key, rows)
        self.client.expire(key, DAY)

    def rows(self) -> int:
        value = self.client.get(f"{self.prefix}:rows")
        return int(value) if value is not None else 0

    def forget(self, count: int) -> None:
        """Delete the attempt's keys (after its commit): claims, results, counter. The stop
        flag is raised first, so a range task still running stops at its next batch."""
        self.stop()
        self.client.delete(
            *[self._key(index) for index in range(count)],
            f"{self.prefix}:results",
            f"{self.prefix}:rows",
        )


class ClaimKeeper:
    """Refreshes a claim every third of its ttl on a thread of its own while its holder
    reads; ``lost`` turns true when the claim was found no longer the holder's (it expired
    and another took it): the holder then stops, its work is no longer wanted."""

    def __init__(self, claims: RangeClaims, index: int, holder: str) -> None:
        self.claims = claims
        self.index = index
        self.holder = holder
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, name=f"flowforge-claim-{index}", daemon=True
        )

    def __enter__(self) -> ClaimKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _keep(self) -> None:
        while not self._stop.wait(self.claims.ttl / 3):
            try:
                if not self.claims.refresh(self.index, self.holder):
                    self.lost = True
                    return
            except Exception:  # noqa: BLE001 - the next beat tries again; the ttl is 3 beats
                log.warning("claim of range %s not refreshed", self.index, exc_info=True)
