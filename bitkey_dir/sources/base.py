"""The contract every source implements, whether built in or a third-party plugin.

A source is built from its ``[sources.NAME]`` settings (``from_settings``), answers queries,
and reports recoverable problems through ``warn`` instead of raising, so that one bad file or
one odd object never hides the keys that were found. Failures that make the answer
untrustworthy raise :class:`~bitkey_dir.errors.AuthError` or
:class:`~bitkey_dir.errors.SourceError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bitkey_dir.config import Settings
    from bitkey_dir.credentials import Secret, Wanted
    from bitkey_dir.model import Query, RecoveryKey

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Escrow:
    """One computer as a source sees it: its keys counted, the newest one's date."""

    source: str
    computer: str
    location: str | None  # AD: the OU holding the computer; Entra: its operating system
    keys: int
    newest: datetime | None
    group: str  # what the summary adds up by: the OU, or the operating system


@runtime_checkable
class Source(Protocol):
    """A place where recovery keys are escrowed."""

    @property
    def name(self) -> str:
        """The source's name in the config, or the path given with --source."""
        ...

    def find(self, query: Query, warn: Warn) -> Iterable[RecoveryKey]:
        """Keys answering ``query`` (by Key ID or prefix, or by computer name)."""
        ...

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        """Every key, streamed; used for exports."""
        ...

    # Optional: ``principal``, the directory account a source reads keys as (for the trail).

    def describe(self) -> str:
        """One line for `bitkey-dir sources`: where the keys come from, never a secret."""
        ...

    def close(self) -> None:
        """Release connections; called once when the lookup ends."""
        ...


@runtime_checkable
class SignsIn(Protocol):
    """Optional: a source with credentials that `login`, `logout` and `auth status` manage."""

    @property
    def login_secret(self) -> Wanted | None:
        """The secret `login` must read (a password, a client secret), or None."""
        ...

    def login(self, secret: Secret | None) -> str:
        """Prove the credential against the directory, then store it; one line saying so."""
        ...

    def logout(self) -> list[str]:
        """Remove everything stored for this source; what was removed."""
        ...

    def auth_status(self) -> dict[str, object]:
        """What is stored (account, secret, tokens and their expiry), never a secret."""
        ...


@runtime_checkable
class KeepsDeleted(Protocol):
    """Optional: a directory that still holds the keys of deleted computers (AD)."""

    def iter_deleted_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        """Keys whose computer object was deleted, marked deleted, with its last OU."""
        ...


@runtime_checkable
class Audits(Protocol):
    """Optional: a directory that knows every computer, so escrow coverage can be audited."""

    @property
    def name(self) -> str: ...

    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        """Every computer with its key count and newest key date; never a password."""
        ...

    def close(self) -> None: ...


class SourceFactory(Protocol):
    """What the registry loads by type name: normally a Source class with this classmethod."""

    def from_settings(self, name: str, settings: Settings) -> Source:
        """Validate the settings (ending with ``settings.reject_unknown()``) and build a source."""
        ...
