"""Keyring backends for the tests, selected through keyring's own configuration.

``PlaintextFileKeyring`` keeps entries in a JSON file, as keyrings.alt's PlaintextKeyring does,
so that tests can look at what a run stored. Its name says it is plaintext, so bitkey-dir uses
it only with ``[keyring] allow_plaintext = true``, which the tests that need it set.

``StandInKeyring`` is the same file under another name: it plays the part of the system's
keyring (Secret Service, Keychain) where a test shows what a person with one sees, such as
the documentation's examples, so bitkey-dir takes it as it takes a real one.

``LockedKeyring`` answers every call as a locked Secret Service collection does;
``RefusingKeyring`` refuses writes with a message that repeats the secret.

Select one with ``keyringrc.cfg``::

    [backend]
    default-keyring = bitkey_test_keyrings.PlaintextFileKeyring
    keyring-path = /path/to/tests/keyring_backends
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError, PasswordSetError
from keyring.util import platform_

FILE_ENV = "BITKEY_DIR_TEST_KEYRING_FILE"


def _file() -> Path:
    override = os.environ.get(FILE_ENV)
    return Path(override) if override else platform_.data_root() / "test-keyring.json"


class PlaintextFileKeyring(KeyringBackend):
    """Entries in one JSON file: {"service\\x00username": "password"}."""

    priority = 0.1  # type: ignore[assignment]  # a plain value; never chosen by detection

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(_file().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def _write(self, data: dict[str, str]) -> None:
        path = _file()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(temporary, path)

    def get_password(self, service: str, username: str) -> str | None:
        return self._read().get(f"{service}\x00{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._read()
        data[f"{service}\x00{username}"] = password
        self._write(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._read()
        if data.pop(f"{service}\x00{username}", None) is None:
            raise PasswordDeleteError("no such password")
        self._write(data)


class StandInKeyring(PlaintextFileKeyring):
    """The system's keyring, played by the file of PlaintextFileKeyring (see the module)."""


class LockedKeyring(KeyringBackend):
    """A keyring that cannot be unlocked, like a Secret Service collection nobody unlocks."""

    priority = 0.1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")


class RefusingKeyring(KeyringBackend):
    """Reads nothing and refuses every write with a message that repeats the value given,
    as a careless backend might: what bitkey-dir reports must not repeat it."""

    priority = 0.1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError(f"cannot store {password!r} for {username}")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordDeleteError("no such password")
