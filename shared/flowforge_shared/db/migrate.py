"""Run the Alembic migrations programmatically (no alembic.ini needed).

Each service owns its tables and ships its own migration chain (``<package>/migrations``),
recorded in a version table of its own (``alembic_version_<service>``), so a service's
tables can live in a database of their own (``FLOWFORGE_<SERVICE>_DATABASE_URL``) or share
one database with the others, and no chain ever touches another service's tables.

Databases made before that had one chain for every table (``legacy_migrations``, revisions
0001-0013, version table ``alembic_version``). Such a database is first brought to that
chain's last revision, then each service chain's first revision adopts the tables it finds
instead of creating them (:func:`adopting`), so an upgrade loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine, inspect, pool, text

LEGACY = Path(__file__).parent / "legacy_migrations"
LEGACY_HEAD = "0013"
LEGACY_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Chain:
    """One service's migrations: its name and the directory holding ``env.py``."""

    service: str
    location: Path

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.service}"


def alembic_config(url: str, location: Path, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(location))
    # ConfigParser interpolation would choke on '%' in URLs (escaped passwords).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option("version_table", version_table)
    return config


def upgrade(url: str, chains: Sequence[Chain]) -> None:
    """Bring the database at ``url`` to the head of each chain (a legacy database first to
    the one chain's last revision)."""
    finish_legacy(url)
    for chain in chains:
        command.upgrade(alembic_config(url, chain.location, chain.version_table), "head")


def finish_legacy(url: str) -> None:
    """A database the one chain made, at any of its revisions, is brought to its last."""
    if legacy_revision(url) not in (None, LEGACY_HEAD):
        legacy_upgrade(url, LEGACY_HEAD)


def legacy_upgrade(url: str, revision: str) -> None:
    """The one chain of before, to ``revision`` (to upgrade old databases, and to make one in
    tests of that upgrade)."""
    command.upgrade(alembic_config(url, LEGACY, LEGACY_VERSION_TABLE), revision)


def legacy_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(LEGACY_VERSION_TABLE):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def adopting(bind) -> bool:
    """In a service chain's first revision: True when the one chain of before already made
    this database's tables (they are adopted as they are, not created)."""
    return inspect(bind).has_table(LEGACY_VERSION_TABLE)


def run_migrations() -> None:
    """The body of every chain's ``env.py``: migrate on the configured URL, recording the
    revision in the chain's own version table."""
    config = context.config
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                version_table=config.get_main_option("version_table") or LEGACY_VERSION_TABLE,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
