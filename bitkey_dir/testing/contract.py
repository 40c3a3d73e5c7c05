"""The tests every source passes: :class:`SourceContract`, which plugins' tests subclass."""

from __future__ import annotations

import threading

import pytest

from bitkey_dir.core.errors import AuthError, BitkeyError, ConfigError, SourceError
from bitkey_dir.core.model import ComputerName, KeyEntry, KeyId, Query, RecoveryKey
from bitkey_dir.sources.base import KeepsDeleted, ListsKeys, Source, SourceFactory, entries_of
from bitkey_dir.testing.harness import covers, one_line
from bitkey_dir.testing.protocols import ProtocolTests

__all__ = ["SourceContract"]


class SourceContract(ProtocolTests):
    """Every test a source must pass. Subclass it (as ``TestSomething``) and override
    :meth:`settings` and :meth:`expected_keys`; override :meth:`failing_settings` to also
    check how the source fails."""

    # -- building from settings -----------------------------------------------------------

    @covers(Source, SourceFactory)
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
            one_line(text, "describe()")
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
        absent = self.absent_key_id()
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

    @covers(ListsKeys)
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
