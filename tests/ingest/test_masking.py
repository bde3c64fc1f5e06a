"""Masking a password in a driver's text must not turn the text into an oracle: stars inside
words spell a short password ("th*** Postgr***SQL" for ``e``). A driver text that could reveal
the password is withheld instead; messages are FlowForge's words and never starred."""

from __future__ import annotations

import re

import pytest

from flowforge_ingest.connectors.base import ConnectFailure, ConnectionParams
from flowforge_ingest.connectors.registry import WITHHELD, connect_failure, scrub

DRIVER_TEXT = (
    'connection failed: connection to server at "db.example.com" (10.0.0.1), port 5432 '
    'failed: FATAL:  password authentication failed for user "Postgres_reader"'
)
STAR_IN_A_WORD = re.compile(r"\w\*|\*\w")


@pytest.mark.parametrize(
    "password",
    [
        "e",  # short: withheld even where it does not occur
        "zq",
        "1",
        "Postgres_",  # inside a word
        "Postgres_reader",  # the user's name
        "connection",  # an ordinary word, recognisable around stars
    ],
)
def test_a_text_that_could_reveal_the_password_is_withheld(password):
    assert scrub(DRIVER_TEXT, [password]) is None


def test_a_long_password_in_any_of_its_spellings_withholds_the_text():
    for spelled in ("Kx9;q}Lm2#vT", "Kx9%3Bq%7DLm2%23vT"):
        assert scrub(f"{DRIVER_TEXT} (dsn: pw={spelled})", ["Kx9;q}Lm2#vT"]) is None


def test_a_text_without_a_long_password_is_kept_whole():
    assert scrub(DRIVER_TEXT, ["Kx9;q}Lm2#vT"]) == DRIVER_TEXT
    assert scrub(DRIVER_TEXT, [None, ""]) == DRIVER_TEXT


@pytest.mark.parametrize("password", ["e", "a", "1", "Postgres", "Kx9;q}Lm2#vT"])
@pytest.mark.parametrize("kind", list(ConnectFailure))
def test_what_a_user_sees_does_not_depend_on_the_password(kind, password):
    def failure(secret: str):
        params = ConnectionParams(
            db_type="postgresql",
            host="db.example.com",
            port=5432,
            database="sales",
            username="reader",
            password=secret,
        )
        return connect_failure(kind, RuntimeError(DRIVER_TEXT), "postgresql", params)

    seen, other = failure(password), failure("zq-Unrelated-9x")
    for text in (seen.message, seen.detail):
        assert not STAR_IN_A_WORD.search(text), text
        assert len(password) < 8 or password not in text
    # The driver's text is shown whole or not at all; FlowForge's words never change.
    assert seen.detail in (WITHHELD, DRIVER_TEXT)
    if kind is not ConnectFailure.OTHER:
        assert seen.message == other.message
    elif seen.detail == WITHHELD:
        assert (
            seen.message
            == f"could not connect to the PostgreSQL server db.example.com:5432; {WITHHELD}"
        )
