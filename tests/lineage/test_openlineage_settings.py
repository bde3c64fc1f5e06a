"""FLOWFORGE_OPENLINEAGE_URL: empty is off, anything but an http(s) URL stops the process at
start (every process builds the same settings), and the log never shows its credentials."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flowforge_lineage.openlineage.outbound import forwarder_for
from flowforge_shared.settings import Settings


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_url_sends_nowhere(value):
    settings = Settings(openlineage_url=value)
    assert settings.openlineage_url is None
    assert forwarder_for(settings) is None


@pytest.mark.parametrize(
    "value", ["marquez:5000", "ftp://marquez", "${FLOWFORGE_OPENLINEAGE_URL:-}", "http://"]
)
def test_a_url_that_is_not_http_is_refused_naming_the_setting(value):
    with pytest.raises(ValidationError, match="openlineage_url must be an http"):
        Settings(openlineage_url=value)


def test_the_forwarder_names_where_it_sends_without_credentials():
    forwarder = forwarder_for(
        Settings(openlineage_url="https://user:secret@marquez.example:5000/base/")
    )
    assert forwarder is not None
    assert forwarder.where == "https://marquez.example:5000/base/api/v1/lineage"
    assert "secret" not in forwarder.where
    forwarder.close()
