"""Outside the local environment a process refuses to start with what only suits a laptop:
a placeholder or short admin token, no configured secret key, a SQLite database."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from flowforge.app import create_app
from flowforge_shared.secrets import SecretBox, SecretKeyError
from flowforge_shared.settings import Settings, UnsafeSettings
from tests.conftest import make_settings

GOOD_TOKEN = "ff_" + "x" * 43
PROPER = {
    "environment": "production",
    "admin_token": GOOD_TOKEN,
    "secret_key": Fernet.generate_key().decode(),
    "database_url": "postgresql+psycopg://flowforge@127.0.0.1:1/flowforge",
}


def production(**changes) -> Settings:
    return Settings(**{**PROPER, **changes})


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"admin_token": "change-me-admin-token"}, "FLOWFORGE_ADMIN_TOKEN"),
        ({"admin_token": "CHANGE-ME" + "x" * 40}, "FLOWFORGE_ADMIN_TOKEN"),
        ({"admin_token": "short-but-random"}, "FLOWFORGE_ADMIN_TOKEN"),
        ({"service_secret": "change-me-service-secret"}, "FLOWFORGE_SERVICE_SECRET"),
        ({"secret_key": None}, "FLOWFORGE_SECRET_KEY"),
        ({"secret_key": " "}, "FLOWFORGE_SECRET_KEY"),
        ({"database_url": None}, "FLOWFORGE_DATABASE_URL"),
        ({"database_url": "sqlite:////var/lib/flowforge.db"}, "FLOWFORGE_DATABASE_URL"),
        (
            {"lineage_database_url": "sqlite:////var/lib/lineage.db"},
            "FLOWFORGE_LINEAGE_DATABASE_URL",
        ),
    ],
)
def test_unsafe_setting_is_refused_in_one_line_naming_it(changes, named):
    with pytest.raises(UnsafeSettings) as raised:
        production(**changes).refuse_unsafe()
    message = str(raised.value)
    assert named in message and "\n" not in message
    assert "FLOWFORGE_ENVIRONMENT=production" in message
    assert "change-me" not in message.lower()  # never echo the value


def test_every_unsafe_setting_is_named_at_once():
    settings = production(admin_token="change-me", secret_key=None, database_url=None)
    message = str(settings.unsafe_reasons())
    for name in ("FLOWFORGE_ADMIN_TOKEN", "FLOWFORGE_SECRET_KEY", "FLOWFORGE_DATABASE_URL"):
        assert name in message


def test_proper_production_settings_are_accepted():
    production().refuse_unsafe()
    production(admin_token=None, service_secret="s" * 32).refuse_unsafe()


def test_local_environment_keeps_its_conveniences(tmp_path):
    Settings(data_dir=tmp_path, admin_token="change-me-admin-token").refuse_unsafe()


def test_app_refuses_to_start(tmp_path):
    with pytest.raises(UnsafeSettings, match="FLOWFORGE_SECRET_KEY"):
        create_app(make_settings(tmp_path, environment="production"))
    assert not (tmp_path / "flowforge.db").exists()  # refused before touching anything


def test_app_starts_with_proper_production_settings(tmp_path, postgres_url):
    settings = make_settings(
        tmp_path,
        postgres_url,
        environment="production",
        secret_key=Fernet.generate_key().decode(),
    )
    app = create_app(settings)
    app.state.database.dispose()
    assert not (tmp_path / "secret.key").exists()


def test_secret_box_key_file_fallback_can_be_refused(tmp_path):
    with pytest.raises(SecretKeyError, match="FLOWFORGE_SECRET_KEY is not set"):
        SecretBox.from_setting(None, tmp_path, allow_key_file=False)
    assert not (tmp_path / "secret.key").exists()
    assert SecretBox.from_setting(None, tmp_path).key_count == 1
