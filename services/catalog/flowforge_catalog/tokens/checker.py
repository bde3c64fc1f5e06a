"""The token check of a process that serves the catalog: in its own database. Installed by
:func:`install`, which also registers the first admin token.

A valid token's principal is kept in memory for ``FLOWFORGE_TOKEN_CHECK_TTL`` seconds (2 by
default), under the token's hash (never the token), so that a busy API does not read the
token table (and hash, query, build a principal) on every request. Revocation still bites:
a token revoked through this process is forgotten at once (the revoke route calls
:meth:`CatalogTokenChecker.forget` after its commit), so it fails on the next request (at worst, a check
that read the table just before the revocation keeps it for the TTL); one revoked through
another process sharing the database (another replica) fails here within the
TTL. Unknown and revoked tokens are not kept: each such request reads the table."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from fastapi import FastAPI

from flowforge_catalog.tokens import service
from flowforge_catalog.tokens.bootstrap import ensure_admin_token
from flowforge_shared.auth.tokens import Principal, hash_token
from flowforge_shared.db.engine import Database

MAX_CACHED = 10_000
"""Principals kept at most; beyond, expired ones are dropped, then all."""


class CatalogTokenChecker:
    """A :class:`~flowforge_shared.auth.tokens.TokenChecker` over the catalog's own table."""

    def __init__(
        self,
        database: Database,
        *,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._ttl = ttl
        self._clock = clock
        # token hash -> (valid until, principal)
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def peek(self, secret: str) -> Principal | None:
        """The principal kept for this token, or None when none is (then :meth:`check`).
        No I/O: the API answers it on the event loop."""
        cached = self._cache.get(hash_token(secret))
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        return None

    def check(self, secret: str) -> Principal | None:
        key = hash_token(secret)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        with self._database.session() as session:
            principal = service.check(session, secret=secret)
        if principal is not None and self._ttl > 0:
            # The clock is read after the query: a revocation committed before it is seen.
            with self._lock:
                if len(self._cache) >= MAX_CACHED:
                    now = self._clock()
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                    if len(self._cache) >= MAX_CACHED:
                        self._cache.clear()
                self._cache[key] = (self._clock() + self._ttl, principal)
        return principal

    def forget(self, token_hash: str) -> None:
        """Drop what is kept about the token with this hash (it was just revoked)."""
        with self._lock:
            self._cache.pop(token_hash, None)


def install(app: FastAPI) -> None:
    """The first admin token, and the local token check (``app.state.token_checker``)."""
    settings = app.state.settings
    generated = ensure_admin_token(
        app.state.database,
        settings.admin_token.get_secret_value() if settings.admin_token else None,
        settings.data_dir,
    )
    if generated:
        print(
            f"FlowForge generated the first admin token (shown once, kept in "
            f"{settings.data_dir / 'admin-token'}):\n  {generated}",
            file=sys.stderr,
        )
    app.state.token_checker = CatalogTokenChecker(app.state.database, ttl=settings.token_check_ttl)
