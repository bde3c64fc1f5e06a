"""Checking tokens with the catalog, for a process that does not serve it.

:class:`RemoteTokenChecker` asks the catalog's internal introspection route
(:mod:`flowforge_shared.contracts.tokens`) and keeps each answer for
``FLOWFORGE_TOKEN_CACHE_TTL`` seconds (30 by default): a revoked token keeps working on such a
service for at most that long, and a busy service asks the catalog about each token about
twice a minute rather than on every request. While the catalog does not answer at all, the
last answer about a token stays usable for ``FLOWFORGE_TOKEN_STALE_TTL`` seconds more (900),
so run status stays readable through a catalog outage (a token revoked just before the
outage works that long too). Answers are kept under the token's hash, never the token.

:func:`require_service` is the other side: the dependency that guards internal routes with
the service secret every service shares (``FLOWFORGE_SERVICE_SECRET``).

When the catalog cannot answer (down, refusing this service's secret, answering nonsense),
the request gets a 503 that says so, never a 401 (the token may well be valid) nor a 500.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time

import httpx
from fastapi import HTTPException, Request, status
from pydantic import ValidationError

from flowforge_shared.auth.tokens import Principal, hash_token
from flowforge_shared.contracts.tokens import INTROSPECT_PATH, Introspection
from flowforge_shared.errors import ServiceUnavailable
from flowforge_shared.settings import Settings

log = logging.getLogger("flowforge.auth")
TIMEOUT = httpx.Timeout(5.0)
MAX_CACHED = 10_000
"""Answers kept at most; beyond, expired ones are dropped, then all (a flood of bad tokens
must not grow the process)."""
RETRY_AFTER = 5


class CatalogDown(ServiceUnavailable):
    """The catalog did not answer at all (as opposed to refusing or answering nonsense)."""


class RemoteTokenChecker:
    """A :class:`~flowforge_shared.auth.tokens.TokenChecker` that asks the catalog."""

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None):
        self._url = settings.catalog_url
        self._secret = settings.service_secret
        self._ttl = settings.token_cache_ttl
        self._stale_ttl = settings.token_stale_ttl
        # token hash -> (fresh until, usable while the catalog is down until, answer)
        self._cache: dict[str, tuple[float, float, Principal | None]] = {}
        self._lock = threading.Lock()
        self._client = (
            httpx.Client(base_url=self._url, timeout=TIMEOUT, transport=transport)
            if self._url
            else None
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def peek(self, secret: str) -> Principal | None:
        """The principal of a fresh kept answer about this token, or None (then
        :meth:`check`). No I/O: the API answers it on the event loop."""
        cached = self._cache.get(hash_token(secret))
        if cached is not None and cached[0] > time.monotonic():
            return cached[2]
        return None

    def check(self, secret: str) -> Principal | None:
        key = hash_token(secret)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[2]
        try:
            principal = self._ask(secret)
        except CatalogDown:
            if cached is not None and cached[1] > now:
                log.warning("the catalog does not answer: using its last answer about a token")
                return cached[2]
            raise
        if self._ttl or self._stale_ttl:
            with self._lock:
                if len(self._cache) >= MAX_CACHED:
                    self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                    if len(self._cache) >= MAX_CACHED:
                        self._cache.clear()
                fresh = now + self._ttl
                self._cache[key] = (fresh, fresh + self._stale_ttl, principal)
        return principal

    def _ask(self, secret: str) -> Principal | None:
        if self._client is None or self._secret is None:
            raise ServiceUnavailable(
                "cannot check the token: this process does not serve the catalog; set "
                "FLOWFORGE_CATALOG_URL and FLOWFORGE_SERVICE_SECRET so it can ask the catalog"
            )
        try:
            response = self._client.post(
                INTROSPECT_PATH,
                json={"token": secret},
                headers={"Authorization": f"Bearer {self._secret.get_secret_value()}"},
            )
        except httpx.HTTPError as error:
            log.warning("token introspection at %s failed: %s", self._url, type(error).__name__)
            raise CatalogDown(
                f"cannot check the token: the catalog at {self._url} does not answer "
                f"({type(error).__name__}); try again shortly",
                retry_after=RETRY_AFTER,
            ) from None
        if response.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            log.error("the catalog at %s refused this service's secret", self._url)
            raise ServiceUnavailable(
                "cannot check the token: the catalog refused this service's credential "
                "(FLOWFORGE_SERVICE_SECRET must be the same on every service)"
            )
        try:
            response.raise_for_status()
            answer = Introspection.model_validate(response.json())
        except (httpx.HTTPStatusError, ValueError, ValidationError):
            log.warning("token introspection at %s answered %s", self._url, response.status_code)
            raise ServiceUnavailable(
                f"cannot check the token: the catalog at {self._url} answered "
                f"{response.status_code}; try again shortly",
                retry_after=RETRY_AFTER,
            ) from None
        if not answer.active or answer.token_id is None or answer.role is None:
            return None
        return Principal(token_id=answer.token_id, name=answer.name or "", role=answer.role)


async def require_service(request: Request) -> None:
    """Internal routes: the caller shows ``Authorization: Bearer <FLOWFORGE_SERVICE_SECRET>``."""
    expected = request.app.state.settings.service_secret
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if expected is None or not expected.get_secret_value():
        detail = "internal routes are off: FLOWFORGE_SERVICE_SECRET is not set on this service"
    elif scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.get_secret_value().encode()
    ):
        detail = "invalid service credential: send 'Authorization: Bearer <service secret>'"
    else:
        return
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )
