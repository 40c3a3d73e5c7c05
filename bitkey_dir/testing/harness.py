"""What every contract test stands on: the hooks a source's tests fill in, building and
opening the source, and the checks for secrets that run after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeVar

import pytest

from bitkey_dir.core.model import KeyId, Query, RecoveryKey
from bitkey_dir.runtime.config import Settings
from bitkey_dir.sources.base import HasParts, Source
from bitkey_dir.sources.registry import load_source_type

__all__ = ["ContractHarness", "Sealed", "covers", "one_line"]

_Test = TypeVar("_Test", bound=Callable[..., None])


def covers(*protocols: type) -> Callable[[_Test], _Test]:
    """Mark the test that checks these protocols of :mod:`bitkey_dir.sources.base`; the
    suite's own tests fail when a protocol there has no such test."""

    def mark(test: _Test) -> _Test:
        test.__dict__["contract_protocols"] = protocols
        return test

    return mark


def one_line(text: object, what: str) -> None:
    """``text`` is a line of text for people: a description, a detail, a message."""
    assert isinstance(text, str), f"{what} is {text!r}, not text"
    assert text.strip(), f"{what} is empty"
    assert "\n" not in text.strip(), f"{what} is not one line: {text!r}"


class Sealed(NamedTuple):
    """A source whose keys only identity files open (``Decrypts``): its settings, the
    identity files, and the keys they open."""

    settings: dict[str, object]
    identities: Sequence[Path]
    keys: Sequence[RecoveryKey]


class ContractHarness:
    """The hooks and helpers of :class:`~bitkey_dir.testing.SourceContract`, without tests."""

    #: The source's name in tests; every key it yields must carry it.
    name: ClassVar[str] = "contract"

    # -- what a subclass provides ---------------------------------------------------------

    def settings(self) -> dict[str, object]:
        """A ``[sources.NAME]`` table, ``type`` included, for a source that answers."""
        raise NotImplementedError("override settings() with the source's config table")

    def expected_keys(self) -> Sequence[RecoveryKey]:
        """Keys the source holds (it may hold more): at least one with a computer name and
        a readable password. Compared on Key ID, password, computer and deleted."""
        raise NotImplementedError("override expected_keys() with keys the source holds")

    def failing_settings(self) -> dict[str, object] | None:
        """A table for a source that cannot answer (unreachable, refused), or None."""
        return None

    def secrets(self) -> Sequence[str]:
        """Credentials the source uses (a bind password, a client secret): never shown."""
        return ()

    def base_dir(self) -> Path:
        """Where relative paths in the settings are taken from."""
        return Path.cwd()

    def sealed(self, folder: Path) -> Sealed | None:
        """For ``Decrypts``: a source, written into ``folder`` (emptied after the test), that
        holds keys only the identity files given open; None to check only that
        ``with_identities`` keeps the source as it is."""
        return None

    def rights_scope(self) -> str | None:
        """For ``ShowsRights`` and ``GrantsRights``: where to ask who may read keys (AD: an
        OU's DN); None for the source's whole directory."""
        return None

    def rights_principal(self) -> str | None:
        """For ``GrantsRights``: an account or group the directory knows, named as a user
        would (name@domain, DOMAIN\\name, a SID), for changes asked as what-ifs only."""
        return None

    def read_paths(self) -> Sequence[Path]:
        """For ``ReadsFiles``: files or folders the source reads. By default, the existing
        files its keys' locations name."""
        return ()

    # -- helpers --------------------------------------------------------------------------

    def build(self, table: dict[str, object] | None = None, name: str | None = None) -> Source:
        table = dict(self.settings() if table is None else table)
        where = f"contract: sources.{name or self.name}"
        factory = load_source_type(str(table.get("type", "")), where)
        return factory.from_settings(name or self.name, Settings(table, where, self.base_dir()))

    @contextmanager
    def opened(self) -> Iterator[Source]:
        source = self.build()
        try:
            yield source
        finally:
            source.close()

    @contextmanager
    def opened_if(self, protocol: type, lacking: str) -> Iterator[Any]:
        """The source, when it implements ``protocol`` (one of sources.base); else the test
        is skipped, ``lacking`` saying why. Typed Any: the source is both a Source and the
        protocol, which the type system cannot say."""
        with self.opened() as source:
            if not isinstance(source, protocol):
                pytest.skip(f"the source {lacking} (optional)")
            yield source

    def warn(self, message: str) -> None:
        """The ``warn`` callback given to the source; what it is told is checked at the end."""
        assert isinstance(message, str), f"warn() was given {type(message).__name__}"
        self.warned.append(message)

    def find(self, source: Source, query: Query) -> list[RecoveryKey]:
        found = list(source.find(query, self.warn))
        for key in found:
            self._check_key(source, key)
            assert query.matches(key), f"{source.name}: find({query.describe()}) gave {key!r}"
        return found

    @staticmethod
    def named_by(source: Source, said: str) -> bool:
        """Whether ``said`` names ``source``: its name, or for a source with parts the name
        of one of them (``NAME/PART``), which says where the key was found."""
        return said == source.name or (
            isinstance(source, HasParts) and said.startswith(f"{source.name}/")
        )

    def _check_key(self, source: Source, key: RecoveryKey) -> None:
        assert isinstance(key, RecoveryKey), f"yielded {type(key).__name__}, not a RecoveryKey"
        assert self.named_by(source, key.source), f"key.source is {key.source!r}, not its name"
        assert key.key_id.is_full

    def readable(self) -> RecoveryKey:
        for key in self.expected_keys():
            if key.recovery_password is not None and key.computer and not key.deleted:
                return key
        raise AssertionError(
            "expected_keys() must hold a live key with a computer name and a readable password"
        )

    @staticmethod
    def same(found: RecoveryKey, expected: RecoveryKey, *, named: bool = True) -> bool:
        """The same key; with ``named=False`` a key found without its computer's name also
        counts (a lookup by Key ID may skip the name to stay one request, as Entra's does)."""
        name = (found.computer or "").casefold()
        return (
            found.key_id == expected.key_id
            and found.recovery_password == expected.recovery_password
            and (name == (expected.computer or "").casefold() or (not named and not name))
            and found.deleted == expected.deleted
        )

    def _never_shown(self) -> list[str]:
        """Recovery passwords (both ways of writing them) and credentials."""
        shown = [text for text in [*self.secrets(), *self.also_secret] if text]
        for key in [*self.expected_keys(), *self.also_expected]:
            if key.recovery_password is not None:
                digits = key.recovery_password.reveal()
                shown += [digits, digits.replace("-", "")]
            if key.key_package is not None:
                shown += [key.key_package.to_base64(), key.key_package.reveal().hex()]
        return shown

    def assert_nothing_secret_in(self, text: str, what: str) -> None:
        leaked = [secret for secret in self._never_shown() if secret in text]
        assert not leaked, f"{what} shows a recovery password or a credential"

    warned: list[str]
    #: What a test brought in besides secrets() and expected_keys(): identity files, keys.
    also_secret: Sequence[str] = ()
    also_expected: Sequence[RecoveryKey] = ()

    @pytest.fixture(autouse=True)
    def _warnings_are_checked(self) -> Iterator[None]:
        self.warned = []
        self.also_secret, self.also_expected = (), ()
        yield
        self.check_warnings()

    def absent_key_id(self) -> KeyId:
        """A full Key ID that no expected key has, nor its first 8 digits."""
        held = {key.key_id.hex for key in self.expected_keys()}
        return next(
            KeyId.parse(f"{n:08X}-0000-4000-8000-000000000000")
            for n in range(0xFFFFFFF0, 0xFFFFFFFF)
            if not any(h.startswith(f"{n:08X}") for h in held)
        )

    def check_warnings(self) -> None:
        """Every warning is one line, without a recovery password or a credential."""
        for message in self.warned:
            self.assert_nothing_secret_in(message, "a warning")
            assert "\n" not in message.strip(), f"a warning is not one line: {message!r}"
