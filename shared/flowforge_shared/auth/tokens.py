"""What a token is, and who presents it: the token format, the :class:`Principal` a checked
token stands for, and the :class:`TokenChecker` every app asks.

The tokens themselves (the ``api_tokens`` table) belong to the catalog. A process that serves
the catalog checks them in its own database (``flowforge_catalog.tokens.checker``); any
other asks the catalog over HTTP (:mod:`flowforge_shared.auth.introspection`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol

from flowforge_shared.auth.roles import Role

TOKEN_PREFIX = "ff_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        return self.name


class TokenChecker(Protocol):
    """Who a bearer token stands for: a :class:`Principal`, or None for an unknown or revoked
    token. Raises :class:`~flowforge_shared.errors.ServiceUnavailable` when it cannot tell."""

    def check(self, secret: str) -> Principal | None: ...


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain SHA-256 is enough (no password stretching).
    return hashlib.sha256(token.encode()).hexdigest()
