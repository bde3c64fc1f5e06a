"""The token check of a process that serves the catalog: in its own database, at once (a
revoked token stops working on the next request). Installed by :func:`install`, which also
registers the first admin token."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from flowforge_catalog.tokens import service
from flowforge_catalog.tokens.bootstrap import ensure_admin_token
from flowforge_shared.auth.tokens import Principal
from flowforge_shared.db.engine import Database


class CatalogTokenChecker:
    """A :class:`~flowforge_shared.auth.tokens.TokenChecker` over the catalog's own table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def check(self, secret: str) -> Principal | None:
        with self._database.session() as session:
            return service.check(session, secret=secret)


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
    app.state.token_checker = CatalogTokenChecker(app.state.database)
