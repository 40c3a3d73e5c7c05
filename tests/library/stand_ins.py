"""Stand-in sources for the Client's tests: each counts its openings, askings and closings, and
notices being asked from two threads at once or after it was closed.

They are registered as built-in types for the test (:func:`registered`); a config names them
as ``type = "counting"`` and so on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from bitkey_dir.core.errors import SourceError
from bitkey_dir.core.model import KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.runtime.config import Settings
from bitkey_dir.runtime.credentials import Secret, Wanted
from bitkey_dir.sources import registry
from bitkey_dir.sources.base import AuthStatus, Source, Warn

KNOWN_ID = "063EA4E1-220C-4293-BA01-4754620A96E7"
KNOWN_PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"


@dataclass
class Ledger:
    """Every stand-in opened in a test, and what went wrong with them."""

    opened: list[Counting] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)  # asked from two threads at once
    after_close: list[str] = field(default_factory=list)  # asked after being closed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, source: Counting) -> None:
        with self.lock:
            self.opened.append(source)

    def unclosed(self) -> list[str]:
        return [source.name for source in self.opened if not source.closed]


LEDGER = Ledger()


@dataclass(eq=False)
class Counting:
    """Answers KNOWN_ID (computer PC-0042); ``fail`` makes it fail, ``delay_ms`` slow."""

    type_name: ClassVar[str] = "counting"

    name: str
    fail: bool = False
    delay: float = 0.0
    asked: int = 0
    closed: int = 0
    _busy: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> Counting:
        fail = settings.boolean("fail", False)
        delay = settings.integer("delay_ms", 0, minimum=0) / 1000
        settings.reject_unknown()
        source = cls(name, fail, delay)
        LEDGER.open(source)
        return source

    def key(self) -> RecoveryKey:
        return RecoveryKey(
            source=self.name,
            key_id=KeyId.parse(KNOWN_ID),
            recovery_password=RecoveryPassword.parse(KNOWN_PASSWORD),
            computer="PC-0042",
        )

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        if self.closed:
            LEDGER.after_close.append(self.name)
        if not self._busy.acquire(blocking=False):
            LEDGER.shared.append(self.name)
            return []
        try:
            time.sleep(self.delay)
            self.asked += 1
            if self.fail:
                raise SourceError(f"{self.name} is down: choose another with --source")
            return [key for key in [self.key()] if query.matches(key)]
        finally:
            self._busy.release()

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        yield self.key()

    def describe(self) -> str:
        return f"stand-in {self.name}"

    def close(self) -> None:
        self.closed += 1


class Slotted:
    """A source with no instance dictionary: nothing can be set on it."""

    __slots__ = ("closed", "name")
    type_name: ClassVar[str] = "slotted"
    opened: ClassVar[list[Slotted]] = []

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = 0

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> Slotted:
        settings.reject_unknown()
        source = cls(name)
        cls.opened.append(source)
        return source

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        return []

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        yield from ()

    def describe(self) -> str:
        return "slotted"

    def close(self) -> None:
        self.closed += 1


@dataclass(eq=False)
class Parted:
    """A source with two parts (as tenants are), NAME/a and NAME/b."""

    type_name: ClassVar[str] = "parted"

    name: str
    tenants: list[Counting]

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> Parted:
        settings.reject_unknown()
        parts = [Counting(f"{name}/{part}") for part in ("a", "b")]
        for part in parts:
            LEDGER.open(part)
        return cls(name, parts)

    def parts(self) -> list[Source]:
        return list(self.tenants)

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        return [key for tenant in self.tenants for key in tenant.find(query, warn)]

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        for tenant in self.tenants:
            yield from tenant.iter_keys(warn)

    def describe(self) -> str:
        return "two parts"

    def close(self) -> None:
        for tenant in self.tenants:
            tenant.close()


@dataclass(eq=False)
class Signing(Counting):
    """A stand-in that signs in: ``login`` keeps the secret it was given, for the test."""

    type_name: ClassVar[str] = "signing"
    given: ClassVar[list[str]] = []

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> Signing:
        settings.reject_unknown()
        source = cls(name)
        LEDGER.open(source)
        return source

    @property
    def login_secret(self) -> Wanted:
        return Wanted(self.name, "the password of helpdesk", "BITKEY_DIR_PASSWORD", "entry")

    def login(self, secret: Secret | None) -> str:
        assert secret is not None
        if secret.value.startswith("Wr0ng"):
            raise SourceError(f"{self.name} refused the password of helpdesk")
        Signing.given.append(secret.value)
        return "signed in as helpdesk"

    def logout(self) -> list[str]:
        return ["the password of helpdesk"]

    def auth_status(self) -> AuthStatus:
        return AuthStatus(account="helpdesk")


TYPES = {
    "counting": Counting,
    "slotted": Slotted,
    "parted": Parted,
    "signing": Signing,
}


def registered(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    """Make the stand-ins configurable for this test, with a fresh ledger."""
    global LEDGER  # noqa: PLW0603 - one ledger per test, read by the sources' factories
    LEDGER = Ledger()
    Slotted.opened.clear()
    Signing.given.clear()
    for name, kind in TYPES.items():
        monkeypatch.setitem(registry.BUILTIN_TYPES, name, f"{__name__}:{kind.__name__}")
    return LEDGER


def config_file(folder: Path, *, defaults: tuple[str, ...] = ("one",)) -> Path:
    """A config with stand-ins: one and two (counting; two is slow), down (failing),
    slotted, parted and signing."""
    path = folder / "stand-ins.toml"
    listed = ", ".join(f'"{name}"' for name in defaults)
    path.write_text(
        f"[defaults]\nsources = [{listed}]\n"
        "[keyring]\nallow_plaintext = true\n"
        '[sources.one]\ntype = "counting"\n'
        '[sources.two]\ntype = "counting"\ndelay_ms = 30\n'
        '[sources.down]\ntype = "counting"\nfail = true\n'
        '[sources.slotted]\ntype = "slotted"\n'
        '[sources.parted]\ntype = "parted"\n'
        '[sources.signing]\ntype = "signing"\n',
        encoding="utf-8",
    )
    return path
