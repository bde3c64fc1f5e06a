"""Secrets at rest: connection passwords and keys, encrypted with Fernet before they are stored.

One :class:`SecretBox` per process, built from the ``FLOWFORGE_SECRET_KEY`` setting: one or
several comma-separated Fernet keys. The first key encrypts; every key decrypts
(``MultiFernet``), which is how keys are rotated without downtime::

    1. FLOWFORGE_SECRET_KEY=<new>,<old>   new secrets use <new>, old ones still read
    2. re-encrypt stored tokens with SecretBox.rotate(token)
    3. FLOWFORGE_SECRET_KEY=<new>         <old> can now be forgotten

With no key configured (the embedded default) a key is generated once into
``<data dir>/secret.key`` (mode 0600) and reused by every later process, so an embedded
install encrypts from its first start without any setup. That file is then as sensitive as
the database it protects: back both up, and never the one without the other. Outside the
``local`` environment that fallback is refused (``allow_key_file=False``): every service and
worker must share one configured key.

Nothing here ever puts a secret or a key into an exception message, a repr or a log line.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from flowforge_shared.errors import FlowForgeError

MASK = "********"
"""What the API shows in place of a stored secret (the same mask the audit log uses)."""

KEY_FILE = "secret.key"
SETTING = "FLOWFORGE_SECRET_KEY"


class SecretKeyError(FlowForgeError, ValueError):
    """The configured keys cannot be used, or none of them can decrypt a stored secret."""


class SecretBox:
    """Encrypts and decrypts short secrets (passwords, tokens) with the configured keys."""

    def __init__(self, keys: list[str], *, source: str = SETTING) -> None:
        if not keys:
            raise SecretKeyError(
                f"{source} holds no key; generate one with SecretBox.generate_key()"
            )
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                # Never echo the key: a truncated real key is still half a secret.
                raise SecretKeyError(
                    f"key number {position} in {source} is not a Fernet key (44 characters of "
                    "url-safe base64); generate one with SecretBox.generate_key()"
                ) from None
        self._fernet = MultiFernet(fernets)
        self._source = source
        self.key_count = len(fernets)

    def __repr__(self) -> str:
        return f"SecretBox(keys={self.key_count}, source={self._source!r})"

    @classmethod
    def from_setting(
        cls, value: str | SecretStr | None, data_dir: Path, *, allow_key_file: bool = True
    ) -> SecretBox:
        """The box for ``FLOWFORGE_SECRET_KEY``; without one, the key file in ``data_dir``
        (unless ``allow_key_file`` is false: outside the local environment)."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        keys = _split_keys(value or "")
        if keys:
            return cls(keys, source=SETTING)
        if not allow_key_file:
            raise SecretKeyError(
                f"{SETTING} is not set, and a key file in the data dir is allowed in the local "
                "environment only"
            )
        path = data_dir / KEY_FILE
        return cls(_split_keys(_read_or_create_key_file(path)), source=str(path))

    @staticmethod
    def generate_key() -> str:
        """A new random Fernet key (url-safe base64 text)."""
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, plaintext: str) -> str:
        """A token (url-safe base64 text) holding ``plaintext``, encrypted with the first key."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext of ``token``; :class:`SecretKeyError` when no configured key opens it."""
        try:
            return self._fernet.decrypt(_token_bytes(token)).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            raise self._cannot_decrypt() from None

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted with the first (current) key; readable once old keys are gone."""
        try:
            return self._fernet.rotate(_token_bytes(token)).decode("ascii")
        except InvalidToken:
            raise self._cannot_decrypt() from None

    def _cannot_decrypt(self) -> SecretKeyError:
        return SecretKeyError(
            f"a stored secret cannot be decrypted with any of the {self.key_count} key(s) in "
            f"{self._source}: it was encrypted with a key that is no longer configured, or it "
            "was altered. Put the old key back (after the current one) or enter the secret again"
        )


def _token_bytes(token: str) -> bytes:
    try:
        return token.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        raise InvalidToken from None  # a token is ASCII; anything else was never one of ours


def _split_keys(value: str) -> list[str]:
    return [key.strip() for key in value.replace("\n", ",").split(",") if key.strip()]


def _read_or_create_key_file(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write the key to a private temporary file, then link it into place: the link fails if
    # another process got there first, and nobody can ever read a half-written key file.
    key = SecretBox.generate_key() + "\n"
    # Unique per attempt: two threads of one process must never share (and truncate) it.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    _write_private(temporary, key, os.O_TRUNC)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process created it first: everyone uses that one
    except OSError:  # a filesystem without hard links: exclusive create is the next best
        try:
            _write_private(path, key, os.O_EXCL)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text(encoding="ascii")


def _write_private(path: Path, text: str, mode_flag: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | mode_flag, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
