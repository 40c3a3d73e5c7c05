"""The source contract as a test suite, for built-in sources and plugins alike.

A plugin's tests subclass :class:`SourceContract` in a pytest module, say which
``[sources.NAME]`` settings build a working source and which keys it must hold, and inherit
every test below (the way keyring's backends subclass ``BackendBasicTests``)::

    from bitkey_dir.testing import SourceContract

    class TestVaultSource(SourceContract):
        def settings(self):
            return {"type": "vault", "url": "https://vault.example"}

        def expected_keys(self):
            return [RecoveryKey("contract", KeyId.parse("…"), RecoveryPassword.parse("…"),
                                computer="PC-0042")]

The source is built through the registry (``type`` is looked up as a configured source's
would be: built in, or the installed entry point), so an unregistered plugin fails here.
docs/SOURCES.md explains the contract these tests check. pytest is needed to run them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pytest

from bitkey_dir.core.errors import AuthError, BitkeyError, ConfigError, SourceError
from bitkey_dir.core.model import ComputerName, KeyEntry, KeyId, Query, RecoveryKey
from bitkey_dir.runtime.config import Settings
from bitkey_dir.sources.base import (
    CHECK_STATUSES,
    Audits,
    AuthStatus,
    Check,
    Diagnoses,
    Escrow,
    HoldsKeyPackages,
    KeepsDeleted,
    SignsIn,
    Source,
    entries_of,
)
from bitkey_dir.sources.registry import load_source_type

__all__ = ["SourceContract"]


class SourceContract:
    """Every test a source must pass. Subclass it (as ``TestSomething``) and override
    :meth:`settings` and :meth:`expected_keys`; override :meth:`failing_settings` to also
    check how the source fails."""

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

    def _check_key(self, source: Source, key: RecoveryKey) -> None:
        assert isinstance(key, RecoveryKey), f"yielded {type(key).__name__}, not a RecoveryKey"
        assert key.source == source.name, f"key.source is {key.source!r}, not the source name"
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
        shown = [text for text in self.secrets() if text]
        for key in self.expected_keys():
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

    @pytest.fixture(autouse=True)
    def _warnings_are_checked(self) -> Iterator[None]:
        self.warned = []
        yield
        self.check_warnings()

    def check_warnings(self) -> None:
        """Every warning is one line, without a recovery password or a credential."""
        for message in self.warned:
            self.assert_nothing_secret_in(message, "a warning")
            assert "\n" not in message.strip(), f"a warning is not one line: {message!r}"

    # -- building from settings -----------------------------------------------------------

    def test_it_is_built_from_its_settings(self) -> None:
        with self.opened() as source:
            assert isinstance(source, Source)
            assert source.name == self.name

    def test_an_unknown_setting_is_a_config_error(self) -> None:
        table = {**self.settings(), "surely_not_a_setting": True}
        with pytest.raises(ConfigError, match="surely_not_a_setting"):
            self.build(table)

    def test_describe_is_one_line_without_a_secret(self) -> None:
        with self.opened() as source:
            text = source.describe()
            assert isinstance(text, str)
            assert text.strip()
            assert "\n" not in text
            self.assert_nothing_secret_in(text, "describe()")

    def test_repr_never_shows_a_password(self) -> None:
        with self.opened() as source:
            keys = list(source.iter_keys(self.warn))
            self.assert_nothing_secret_in(repr(source) + repr(keys) + str(keys), "a repr")

    # -- finding --------------------------------------------------------------------------

    def test_find_by_full_key_id(self) -> None:
        wanted = self.readable()
        with self.opened() as source:
            found = self.find(source, Query(key_id=wanted.key_id))
        assert any(self.same(key, wanted, named=False) for key in found), found

    def test_find_by_key_id_in_any_case_and_with_braces(self) -> None:
        wanted = self.readable()
        typed = KeyId.parse("{" + str(wanted.key_id).lower() + "}")
        with self.opened() as source:
            found = self.find(source, Query(key_id=typed))
        assert any(self.same(key, wanted, named=False) for key in found)

    def test_find_by_the_eight_digits_of_the_recovery_screen(self) -> None:
        wanted = self.readable()
        with self.opened() as source:
            found = self.find(source, Query(key_id=KeyId.parse(wanted.key_id.short)))
        assert any(self.same(key, wanted, named=False) for key in found)

    def test_find_by_computer_name_in_any_case(self) -> None:
        wanted = self.readable()
        assert wanted.computer is not None
        with self.opened() as source:
            found = self.find(source, Query(computer=ComputerName.parse(wanted.computer.lower())))
        assert any(self.same(key, wanted) for key in found)

    def test_find_by_a_computer_name_pattern(self) -> None:
        wanted = self.readable()
        assert wanted.computer is not None
        pattern = wanted.computer[:3] + "*"
        with self.opened() as source:
            found = self.find(source, Query(computer=ComputerName.parse(pattern)))
        assert any(self.same(key, wanted) for key in found)

    def test_an_unknown_key_is_an_empty_answer_not_an_error(self) -> None:
        held = {key.key_id.hex for key in self.expected_keys()}
        absent = next(
            KeyId.parse(f"{n:08X}-0000-4000-8000-000000000000")
            for n in range(0xFFFFFFF0, 0xFFFFFFFF)
            if not any(h.startswith(f"{n:08X}") for h in held)
        )
        with self.opened() as source:
            assert self.find(source, Query(key_id=absent)) == []
            assert self.find(source, Query(key_id=KeyId.parse(absent.short))) == []
            nobody = ComputerName.parse("NO-SUCH-COMPUTER-7Q")
            assert self.find(source, Query(computer=nobody)) == []

    def test_hostile_names_are_looked_for_literally(self) -> None:
        # Filter and query syntax of every kind: each must mean only itself.
        with self.opened() as source:
            for text in ("PC*)(cn=*", "x' or '1'='1", "%", "_", "PC\\0042", "a]b[c", "\u202eFDP"):
                assert self.find(source, Query(computer=ComputerName.parse(text))) == []

    def test_deleted_computers_keys_only_when_asked(self) -> None:
        deleted = [key for key in self.expected_keys() if key.deleted]
        with self.opened() as source:
            for key in deleted:
                assert not self.find(source, Query(key_id=key.key_id))
                asked = self.find(source, Query(key_id=key.key_id, include_deleted=True))
                assert any(self.same(found, key, named=False) for found in asked)

    # -- every key ------------------------------------------------------------------------

    def test_iter_keys_yields_every_key_once(self) -> None:
        with self.opened() as source:
            keys = list(source.iter_keys(self.warn))
            if isinstance(source, KeepsDeleted):
                keys += list(source.iter_deleted_keys(self.warn))
        for key in keys:
            self._check_key(source, key)
        identities = [(key.key_id, key.computer, key.deleted, key.location) for key in keys]
        assert len(identities) == len(set(identities)), "a key was yielded twice"
        for expected in self.expected_keys():
            assert any(self.same(key, expected) for key in keys), f"missing {expected.key_id}"

    def test_iter_keys_can_stop_early_and_start_again(self) -> None:
        with self.opened() as source:
            stream = source.iter_keys(self.warn)
            first = next(stream)
            stop = getattr(stream, "close", None)  # a generator; a plain iterator has nothing
            if stop is not None:
                stop()
            again = list(source.iter_keys(self.warn))
            assert any(key.key_id == first.key_id for key in again)

    def test_close_may_be_called_more_than_once(self) -> None:
        source = self.build()
        list(source.iter_keys(self.warn))
        source.close()
        source.close()

    def test_separate_sources_may_be_asked_at_once(self) -> None:
        wanted = self.readable()
        results: list[list[RecoveryKey]] = []
        problems: list[BaseException] = []

        def ask() -> None:
            try:
                with self.opened() as source:
                    results.append(self.find(source, Query(key_id=wanted.key_id)))
            except BaseException as exc:  # reported below, not lost in the thread
                problems.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not problems, problems
        assert len(results) == 3
        assert all(any(self.same(key, wanted, named=False) for key in found) for found in results)

    def test_the_key_id_index_lists_every_key_and_no_password(self) -> None:
        with self.opened() as source:
            keys = list(source.iter_keys(self.warn))
            deleted = (
                list(source.iter_deleted_keys(self.warn))
                if isinstance(source, KeepsDeleted)
                else []
            )
        with self.opened() as source:
            entries = list(entries_of(source, self.warn))
        assert all(isinstance(entry, KeyEntry) for entry in entries)
        listed = {entry.key_id for entry in entries}
        assert {key.key_id for key in keys} <= listed, "a key is missing from the listing"
        assert {key.key_id for key in deleted} <= listed, "a deleted computer's key is missing"
        assert {key.key_id for key in keys + deleted} >= listed, "the listing has extra keys"
        self.assert_nothing_secret_in(repr(entries), "the index entries")
        for key in self.expected_keys():
            if key.computer and not key.deleted:
                named = [e for e in entries if e.key_id == key.key_id and e.computer]
                assert named, f"{key.key_id}: listed without its computer"

    # -- optional parts of the contract ---------------------------------------------------

    def test_principal_is_a_name_or_none(self) -> None:
        with self.opened() as source:
            self.find(source, Query(key_id=self.readable().key_id))
            principal = getattr(source, "principal", None)
            assert principal is None or (isinstance(principal, str) and principal.strip())

    def test_escrow_counts_the_computers_that_hold_keys(self) -> None:
        with self.opened() as source:
            if not isinstance(source, Audits):
                pytest.skip("the source does not audit escrow (optional)")
            rows = list(source.iter_escrow(self.warn))
        assert all(isinstance(row, Escrow) and row.source == self.name for row in rows)
        assert all(row.keys >= 0 and (row.keys == 0) == (row.newest is None) for row in rows)
        for key in self.expected_keys():
            if key.computer and not key.deleted:
                named = [r for r in rows if r.computer.casefold() == key.computer.casefold()]
                assert any(row.keys >= 1 for row in named), f"{key.computer} counts no key"

    def test_key_packages_only_when_asked_and_never_shown(self) -> None:
        with self.opened() as source:
            if not isinstance(source, HoldsKeyPackages):
                pytest.skip("the source holds no key packages (optional)")
            plain = list(source.iter_keys(self.warn))
            assert all(key.key_package is None for key in plain), "a package read unasked"
            packaged = source.with_key_packages()
            try:
                assert isinstance(packaged, Source)
                keys = list(packaged.iter_keys(self.warn))
            finally:
                packaged.close()
        assert sorted(str(k.key_id) for k in keys) == sorted(str(k.key_id) for k in plain)
        self.assert_nothing_secret_in(repr(keys) + str(keys), "a repr with key packages")
        for expected in self.expected_keys():
            if expected.key_package is not None:
                held = [k.key_package for k in keys if k.key_id == expected.key_id]
                assert expected.key_package in held, f"{expected.key_id}: not its key package"

    def test_auth_status_is_typed_and_shows_no_secret(self) -> None:
        with self.opened() as source:
            if not isinstance(source, SignsIn):
                pytest.skip("the source keeps no credentials (optional)")
            status = source.auth_status()
        assert isinstance(status, AuthStatus)
        self.assert_nothing_secret_in(json.dumps(status.to_record()), "auth_status()")

    def test_diagnose_gives_typed_checks_and_no_secret(self) -> None:
        with self.opened() as source:
            if not isinstance(source, Diagnoses):
                pytest.skip("the source has no diagnosis of its own (optional)")
            checks = source.diagnose(self.warn)
        assert checks, "diagnose() made no check"
        for check in checks:
            assert isinstance(check, Check)
            assert check.status in CHECK_STATUSES, check.status
            assert check.fix is None or "\n" not in check.fix, "a fix is one line"
        self.assert_nothing_secret_in(
            json.dumps([check.to_record() for check in checks]), "diagnose()"
        )

    def test_a_source_that_cannot_answer_raises_a_documented_error(self) -> None:
        table = self.failing_settings()
        if table is None:
            pytest.skip("no failing_settings() given")
        source = self.build(table)
        try:
            with pytest.raises(BitkeyError) as failed:
                self.find(source, Query(key_id=self.readable().key_id))
        finally:
            source.close()
        assert isinstance(failed.value, AuthError | SourceError)
        assert "\n" not in failed.value.message
        self.assert_nothing_secret_in(str(failed.value), "the error")
