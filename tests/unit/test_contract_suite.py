"""The contract suite itself: a source that breaks the contract fails the test that says so."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from bitkey_dir.core.model import Query, RecoveryKey
from bitkey_dir.sources.base import Source, Warn
from tests.unit import test_contract_file as file_contract

# Not imported by name: pytest would collect the whole suite again in this module.
FileContract = file_contract.TestFileSource


class Wrapped:
    """The file source, with one way of breaking the contract switched on."""

    def __init__(self, inner: Source, fault: str) -> None:
        self.inner = inner
        self.fault = fault

    @property
    def name(self) -> str:
        return self.inner.name

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        if self.fault == "ignores the query":
            return list(self.inner.iter_keys(warn))
        if self.fault == "shows deleted keys unasked":
            asked = dataclasses.replace(query, include_deleted=True)
            return list(self.inner.find(asked, warn))
        if self.fault == "crashes instead of failing":
            raise RuntimeError("connection reset")
        found = list(self.inner.find(query, warn))
        if self.fault == "names another source":
            return [dataclasses.replace(key, source="elsewhere") for key in found]
        if self.fault == "warns with the password":
            for key in found:
                if key.recovery_password is not None:
                    warn(f"read {key.recovery_password.reveal()}")
        return found

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        keys = list(self.inner.iter_keys(warn))
        if self.fault == "yields a key twice":
            keys.append(keys[0])
        if self.fault == "loses keys":
            keys = keys[:1]
        yield from keys

    def describe(self) -> str:
        if self.fault == "describes with the password":
            return "keys: 531058-303050-716078-383614-460922-106975-083446-139161"
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()


def broken(fault: str) -> FileContract:
    class Broken(FileContract):
        def build(self, table: dict[str, object] | None = None, name: str | None = None) -> Any:
            return Wrapped(super().build(table, name), fault)

    suite = Broken()
    suite.warned = []
    return suite


CASES: Sequence[tuple[str, Callable[[FileContract], None]]] = [
    ("ignores the query", FileContract.test_an_unknown_key_is_an_empty_answer_not_an_error),
    ("shows deleted keys unasked", FileContract.test_deleted_computers_keys_only_when_asked),
    ("names another source", FileContract.test_find_by_full_key_id),
    ("yields a key twice", FileContract.test_iter_keys_yields_every_key_once),
    ("loses keys", FileContract.test_iter_keys_yields_every_key_once),
    ("describes with the password", FileContract.test_describe_is_one_line_without_a_secret),
]


@pytest.mark.parametrize(("fault", "test"), CASES, ids=[fault for fault, _ in CASES])
def test_a_broken_source_fails_the_test_for_its_fault(
    fault: str, test: Callable[[FileContract], None]
) -> None:
    suite = broken(fault)
    with pytest.raises(AssertionError):
        test(suite)
    healthy = broken("none")
    test(healthy)  # the same test passes for the source that keeps the contract


def test_a_warning_with_a_password_fails_at_the_end_of_the_test() -> None:
    suite = broken("warns with the password")
    suite.test_find_by_full_key_id()
    with pytest.raises(AssertionError, match="a warning shows a recovery password"):
        suite.check_warnings()


def test_a_crash_instead_of_a_documented_error_fails() -> None:
    suite = broken("crashes instead of failing")
    with pytest.raises(RuntimeError):
        suite.test_a_source_that_cannot_answer_raises_a_documented_error()
