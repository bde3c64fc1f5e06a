"""The worker applies the job contract's landing-path rule before it opens anything, on the
local disk and on S3 alike: a job saved before the rule existed is refused with the same
words, never read."""

from __future__ import annotations

import hashlib

import pytest

from flowforge_ingest.errors import LandingPathError
from flowforge_ingest.landing import local_copy
from flowforge_shared.contracts.landing import landing_path_problem
from flowforge_shared.settings import Settings
from tests.catalog.factories import BAD_FILE_PATHS


@pytest.fixture(params=["local", "s3"])
def settings(request, tmp_path) -> Settings:
    storage = "s3://flowforge-test/lake" if request.param == "s3" else None
    settings = Settings(data_dir=tmp_path, storage_url=storage)
    if storage is None:
        (tmp_path / "landing" / "sales").mkdir(parents=True)
        (tmp_path / "landing" / "sales" / "jan.csv").write_text("a\n1\n")
        (tmp_path / "outside.csv").write_text("secret\n")
    return settings


@pytest.mark.parametrize(("file_path", "words"), BAD_FILE_PATHS)
def test_a_path_the_contract_refuses_is_never_opened(settings, file_path, words):
    with pytest.raises(LandingPathError) as refused:
        with local_copy(settings, file_path):
            pytest.fail("opened")
    assert landing_path_problem(file_path) in refused.value.message
    assert words in refused.value.message


def test_a_local_landing_file_is_read_from_a_private_copy_with_its_digest(tmp_path):
    settings = Settings(data_dir=tmp_path)
    (tmp_path / "landing" / "sales").mkdir(parents=True)
    landed = tmp_path / "landing" / "sales" / "jan.csv"
    landed.write_bytes(b"a\n1\n")
    with local_copy(settings, "./sales/jan.csv") as staged:
        # Replaced while the job reads: the copy, its digest and size stay the first file's.
        landed.write_bytes(b"a\n2\n3\n")
        assert staged.path.read_bytes() == b"a\n1\n"
        assert staged.sha256 == hashlib.sha256(b"a\n1\n").hexdigest()
        assert staged.size == 4
    assert not staged.path.exists()
