"""Secrets at rest: Fernet round trip, key rotation, errors that never show a secret, and the
key file an embedded install generates once."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from flowforge_shared import audit
from flowforge_shared.secrets import KEY_FILE, MASK, SecretBox, SecretKeyError

CANARY = "canary-pässwörd;{=}%40 "


def test_round_trip_returns_the_plaintext_and_hides_it_in_the_token() -> None:
    box = SecretBox([SecretBox.generate_key()])
    for plaintext in (CANARY, "", "ünïcødé ✓", "x" * 10_000):
        token = box.encrypt(plaintext)
        assert box.decrypt(token) == plaintext
    token = box.encrypt(CANARY)
    assert CANARY not in token and "canary" not in token
    assert box.encrypt(CANARY) != token  # a fresh IV every time


def test_token_is_readable_by_plain_fernet_with_the_same_key() -> None:
    key = SecretBox.generate_key()
    token = SecretBox([key]).encrypt(CANARY)
    assert Fernet(key.encode()).decrypt(token.encode()).decode() == CANARY


def test_rotation_old_tokens_stay_readable_and_rotate_moves_them_to_the_new_key() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    old_token = SecretBox([old]).encrypt(CANARY)

    both = SecretBox.from_setting(f"{new}, {old}", Path("/nonexistent"))
    assert both.key_count == 2
    assert both.decrypt(old_token) == CANARY
    rotated = both.rotate(old_token)

    assert SecretBox([new]).decrypt(rotated) == CANARY
    with pytest.raises(SecretKeyError):
        SecretBox([old]).decrypt(rotated)
    # New secrets are written with the first key only.
    assert SecretBox([new]).decrypt(both.encrypt("fresh")) == "fresh"
    with pytest.raises(SecretKeyError):
        SecretBox([old]).decrypt(both.encrypt("fresh"))


def test_wrong_key_error_names_the_problem_and_never_the_secret_or_key() -> None:
    right, wrong = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox([right]).encrypt(CANARY)
    box = SecretBox([wrong])
    with pytest.raises(SecretKeyError) as caught:
        box.decrypt(token)
    text = f"{caught.value} {caught.value!r}"
    assert "cannot be decrypted" in text and "FLOWFORGE_SECRET_KEY" in text
    for secret in (CANARY, "canary", right, wrong, token):
        assert secret not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(SecretKeyError):
        box.rotate(token)
    assert wrong not in repr(box)


@pytest.mark.parametrize("token", ["not-a-token", "", "ünïcødé", "gAAAAAB" + "A" * 80])
def test_garbage_tokens_raise_secret_key_error(token: str) -> None:
    with pytest.raises(SecretKeyError):
        SecretBox([SecretBox.generate_key()]).decrypt(token)


def test_tampered_token_is_refused() -> None:
    box = SecretBox([SecretBox.generate_key()])
    token = box.encrypt(CANARY)
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    with pytest.raises(SecretKeyError):
        box.decrypt(flipped)


def test_invalid_configured_key_is_refused_without_echoing_it() -> None:
    good = SecretBox.generate_key()
    bad = "not-a-fernet-key-but-maybe-a-password"
    with pytest.raises(SecretKeyError) as caught:
        SecretBox.from_setting(f"{good},{bad}", Path("/nonexistent"))
    assert "key number 2" in str(caught.value)
    assert bad not in str(caught.value) and good not in str(caught.value)


def test_configured_key_wins_over_the_key_file(tmp_path: Path) -> None:
    key = SecretBox.generate_key()
    box = SecretBox.from_setting(SecretStr(key), tmp_path)
    assert not (tmp_path / KEY_FILE).exists()
    assert SecretBox([key]).decrypt(box.encrypt(CANARY)) == CANARY


def test_without_a_setting_a_key_file_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = SecretBox.from_setting(None, data_dir)
    path = data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    token = first.encrypt(CANARY)

    second = SecretBox.from_setting("", data_dir)
    assert second.decrypt(token) == CANARY
    assert path.read_text() == content
    assert Fernet(content.strip().encode()).decrypt(token.encode()).decode() == CANARY
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE]  # no temporary file left


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    boxes: list[SecretBox] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        boxes.append(SecretBox.from_setting(None, tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    token = boxes[0].encrypt(CANARY)
    assert len(boxes) == 8
    assert all(box.decrypt(token) == CANARY for box in boxes)


def test_empty_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("\n")
    with pytest.raises(SecretKeyError, match="holds no key"):
        SecretBox.from_setting(None, tmp_path)


def test_mask_is_the_one_the_audit_log_uses() -> None:
    assert MASK == audit.MASK == "********"
