"""A source that only lists its keys is complete with FindsByScanning: it keeps the whole
contract, deleted computers' keys included, whether they come from iter_keys or apart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bitkey_dir.core.model import RecoveryKey
from bitkey_dir.sources.base import FindsByScanning, KeepsDeleted, Source, Warn
from tests.unit.file_contract import FileSourceContract as FileContract


class Listed(FindsByScanning):
    """The file source's keys, reached only through iter_keys."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        yield from self.inner.iter_keys(warn)

    def describe(self) -> str:
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()


class ListedApart(Listed):
    """Deleted computers' keys kept apart, as Active Directory keeps them."""

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        return (key for key in self.inner.iter_keys(warn) if not key.deleted)

    def iter_deleted_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        return (key for key in self.inner.iter_keys(warn) if key.deleted)


class TestListedSource(FileContract):
    def build(self, table: dict[str, object] | None = None, name: str | None = None) -> Any:
        return Listed(super().build(table, name))


class TestListedSourceKeepingDeletedApart(FileContract):
    def build(self, table: dict[str, object] | None = None, name: str | None = None) -> Any:
        source = ListedApart(super().build(table, name))
        assert isinstance(source, KeepsDeleted)
        return source
