"""The contract every source implements, whether built in or a third-party plugin.

docs/SOURCES.md explains it for plugin authors; ``bitkey_dir.testing`` checks it. In short:
a source is built from its ``[sources.NAME]`` settings (``from_settings``), answers queries,
and reports recoverable problems through ``warn`` instead of raising, so that one bad file or
one odd object never hides the keys that were found. Failures that make the answer
untrustworthy raise :class:`~bitkey_dir.core.errors.AuthError` (sign-in, rights: exit 3) or
:class:`~bitkey_dir.core.errors.SourceError` (unreachable, failing: exit 4); bad settings raise
:class:`~bitkey_dir.core.errors.ConfigError` from ``from_settings``.

Operations may ask several sources at once, each from its own thread, but never one source
from two threads: a source needs no locks of its own. ``close()`` is called once when an
operation is done with the source, also after a failure.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from bitkey_dir.core.model import KeyEntry

if TYPE_CHECKING:
    from bitkey_dir.core.model import KeyId, Query, RecoveryKey
    from bitkey_dir.core.reports import (
        CHECK_STATUSES,
        AuthStatus,
        Check,
        CheckStatus,
        Escrow,
        KeyRead,
        TokenStatus,
    )
    from bitkey_dir.core.rights import Holder, RightsChange, RightsRequest
    from bitkey_dir.core.rotation import Progress, Rotation
    from bitkey_dir.runtime.config import Settings
    from bitkey_dir.runtime.credentials import Secret, Wanted

# Re-exported for plugins, but loaded on first use: an export or a lookup needs neither the
# reports nor the rights model, and their dataclasses cost start-up time on every run.
_LAZY: Final = {
    "CHECK_STATUSES": "bitkey_dir.core.reports",
    "AuthStatus": "bitkey_dir.core.reports",
    "Check": "bitkey_dir.core.reports",
    "CheckStatus": "bitkey_dir.core.reports",
    "Escrow": "bitkey_dir.core.reports",
    "KeyRead": "bitkey_dir.core.reports",
    "TokenStatus": "bitkey_dir.core.reports",
    "Holder": "bitkey_dir.core.rights",
    "RightsChange": "bitkey_dir.core.rights",
    "RightsRequest": "bitkey_dir.core.rights",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CHECK_STATUSES",
    "Audits",
    "AuthStatus",
    "Check",
    "CheckStatus",
    "Decrypts",
    "DeviceKeys",
    "DeviceRound",
    "Diagnoses",
    "Escrow",
    "FindsByScanning",
    "FollowsRotations",
    "GrantsRights",
    "HasParts",
    "Holder",
    "HoldsKeyPackages",
    "KeepsDeleted",
    "KeyRead",
    "KnowsVolumes",
    "ListsKeys",
    "ListsKeysByDevice",
    "ReadsFiles",
    "ReportsReads",
    "RightsChange",
    "RightsRequest",
    "Rotates",
    "SearchesKeyIds",
    "ShowsRights",
    "SignsIn",
    "Source",
    "SourceFactory",
    "StoresNoKeyPackages",
    "TokenStatus",
    "Warn",
    "entries_of",
]

Warn = Callable[[str], None]


@runtime_checkable
class Source(Protocol):
    """A place where recovery keys are escrowed.

    Optional: a ``principal`` attribute or property, the directory account the source reads
    keys as (``str | None``); the access trail records it next to each revealed key.
    """

    @property
    def name(self) -> str:
        """The source's name in the config, or the path given with --source."""
        ...

    def find(self, query: Query, warn: Warn) -> Iterable[RecoveryKey]:
        """Keys answering ``query`` (``query.matches(key)`` is true for each): by full Key
        ID or 8+ digit prefix, or by computer name (exact or with ``*``). Keys of deleted
        computers only when ``query.include_deleted``. An empty answer means "not here"."""
        ...

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        """Every key, streamed (exports hold millions): each key once, and may stop early."""
        ...

    def describe(self) -> str:
        """One line for `bitkey-dir sources`: where the keys come from, never a secret."""
        ...

    def close(self) -> None:
        """Release connections; called once when the operation is done with the source."""
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

    def auth_status(self) -> AuthStatus:
        """What is stored (account, secret, tokens and their expiry), never a secret."""
        ...


@runtime_checkable
class Diagnoses(Protocol):
    """Optional: a source that can say what stands between it and a working lookup
    (`bitkey-dir doctor`): servers, certificates, sign-in, rights, files."""

    def diagnose(self, warn: Warn) -> list[Check]:
        """Every check made, in order; reads no recovery password into a result. Problems
        are findings, not exceptions: raise only when not even a check could be made."""
        ...


@runtime_checkable
class KeepsDeleted(Protocol):
    """Optional: a directory that still holds the keys of deleted computers (AD)."""

    def iter_deleted_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        """Keys whose computer object was deleted, marked deleted, with its last OU; none of
        them also given by ``iter_keys`` (an export with them writes both streams)."""
        ...


@runtime_checkable
class ListsKeys(Protocol):
    """Optional: a source that can list its keys without reading their passwords.

    The Key ID index is built from this; a source without it is indexed through
    ``iter_keys`` (its passwords are dropped, never stored). Implement it when reading a
    password costs more than listing (Entra audits every read) or needs more rights.
    """

    def iter_key_entries(self, warn: Warn) -> Iterator[KeyEntry]:
        """Every key ``iter_keys`` would give, as a KeyEntry, and also the keys of deleted
        computers (marked deleted) when the source keeps them; streamed, each key once."""
        ...


@dataclass(frozen=True)
class DeviceKeys:
    """One device's keys, from a listing of that device alone: the Key ID index replaces
    what it held for the device with these (none: the device holds no key now). Not
    ``listed``: the device is in the device list but its keys could not be listed (deleted
    meanwhile), so the index keeps what it held."""

    device_id: str
    entries: tuple[KeyEntry, ...]
    listed: bool = True


@dataclass
class DeviceRound:
    """What a listing by device says besides the keys, filled in as it goes."""

    # Where the next round of changes starts, set at the end. Given to a round over every
    # device, a cursor the caller holds (still good): the round may keep it.
    cursor: str | None = None
    devices: int = 0  # devices whose keys were listed
    vanished: int = 0  # devices deleted while their keys were listed: left as they were
    throttled: int = 0  # answers that asked to slow down (429, 503, 504)


@runtime_checkable
class ListsKeysByDevice(Protocol):
    """Optional: a source that lists its keys one device at a time, many devices at once,
    and can say which devices changed since an earlier round (Entra: devices/delta).

    The Key ID index refreshes through it without waiting for one page after another; the
    keys of a device not in the device list (deleted, or never listed) are not given, so
    the index keeps what ``ListsKeys`` last found of them (a full listing on a slower
    schedule). A new key on a device that did not change is seen by a round over every
    device (``since`` None), not by a round of changes.
    """

    def iter_device_keys(
        self, since: str | None, round: DeviceRound, warn: Warn
    ) -> Iterator[DeviceKeys]:
        """With ``since`` None, every device's keys; with a cursor an earlier round left
        in ``round.cursor``, only the keys of devices changed since. Sets ``round.cursor``
        when done (a round over every device may keep the one it was given). Raises
        ``SourceError`` for a cursor the directory no longer accepts."""
        ...


@runtime_checkable
class SearchesKeyIds(Protocol):
    """Optional: a directory whose own search finds a Key ID prefix about as quickly as one
    key by its full ID (AD: a filter on the recovery objects' names). A lookup by Key ID
    then always asks it, so its answer is complete whatever the Key ID index's age. Other
    sources are narrowed by the index (Entra must list a whole tenant to match 8 digits),
    and an answer taken from it says how old the index is."""

    searches_key_ids: bool  # True: every prefix ``find`` is given is searched in full


@runtime_checkable
class HasParts(Protocol):
    """Optional: one configured source that stands for several directories (the tenants
    of a multi-tenant app). Operations that ask sources ask each part as a source of its
    own, named ``NAME/PART``, so one part's failure never hides another's answer; the
    whole source is still what an export or `login` uses."""

    def parts(self) -> list[Source]:
        """The parts, each named ``NAME/PART`` (no two alike in any case, none with parts of
        its own), together holding every key of the whole; closing them is the caller's.
        The whole source's keys may carry the name of the part that holds them."""
        ...


@runtime_checkable
class Rotates(Protocol):
    """Optional: a directory that can have a device replace its recovery password (Entra
    through Intune). Sources without it are rotated by hand, with the steps given."""

    def rotate(self, query: Query, warn: Warn) -> list[Rotation]:
        """Ask each device whose keys answer ``query`` to rotate them, without reading a
        password; one Rotation per device, none when no key answers. Missing rights raise
        AuthError."""
        ...


@runtime_checkable
class FollowsRotations(Protocol):
    """Optional: a directory that rotates (``Rotates``) and can say later how a rotation it
    was asked for went (Intune's device action results), for `rotate --wait`."""

    def rotation_progress(self, rotation: Rotation, warn: Warn) -> Progress:
        """What the directory says now of ``rotation``, one this source's ``rotate``
        returned as "requested": pending, done (with the new keys' IDs), failed or not
        supported. Reads no password. Missing rights raise AuthError; a failed request
        SourceError (it is asked again)."""
        ...


@runtime_checkable
class ShowsRights(Protocol):
    """Optional: a directory that can say who may read its keys (`bitkey-dir rights show`)."""

    def rights_holders(self, scope: str | None, warn: Warn) -> list[Holder]:
        """Each principal holding a right on keys within ``scope`` (AD: an OU's DN; None:
        the whole directory), once per right, with what gives it (ACEs, roles) and names
        resolved where the directory allows. Rights it may not read raise AuthError."""
        ...


@runtime_checkable
class GrantsRights(Protocol):
    """Optional: a directory where `bitkey-dir rights grant|revoke` can delegate reading
    keys (AD: the inheritable ACEs on an OU). A source with it also ``ShowsRights``."""

    def change_rights(self, request: RightsRequest, warn: Warn) -> RightsChange:
        """Add or remove exactly the entries a helpdesk needs for ``request.principal``;
        with ``request.what_if`` change nothing and say what would change. A principal the
        directory does not know raises InputError; a change it may not make, AuthError."""
        ...


@runtime_checkable
class KnowsVolumes(Protocol):
    """Optional: a directory that can say which keys belong to the same volume, so that a
    disclosed key can be checked for a newer one (`audit --disclosed`)."""

    def volume_keys(self, key_id: KeyId, warn: Warn) -> list[RecoveryKey] | None:
        """The key with this full ID (once) and the other keys escrowed for its volume, of
        the same computer, read without their passwords (``recovery_password`` None) or key
        packages; None when the directory no longer holds the key."""
        ...


@runtime_checkable
class ReportsReads(Protocol):
    """Optional: a directory that audits every key read (Entra), for `bitkey-dir reads`."""

    def iter_key_reads(self, since: datetime, warn: Warn) -> Iterator[KeyRead]:
        """Every key read recorded at or after ``since``, newest first, each with a
        timezone-aware time."""
        ...


@runtime_checkable
class Audits(Protocol):
    """Optional: a directory that knows every computer, so escrow coverage can be audited."""

    @property
    def name(self) -> str: ...

    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        """Every computer once, with its key count and newest key date; never a password."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Decrypts(Protocol):
    """Optional: a source that reads encrypted exports (``find --identity``)."""

    def with_identities(self, identities: Sequence[Path]) -> Source:
        """The same source (its name, its keys), also trying these age or SSH identity
        files; the source it was asked of is left as it was."""
        ...


@runtime_checkable
class HoldsKeyPackages(Protocol):
    """Optional: a directory that escrows key packages (AD's msFVE-KeyPackage). A key
    package is as sensitive as the password, so it is read only when asked for."""

    def with_key_packages(self) -> Source:
        """The same source, also reading each key's key package (``RecoveryKey.key_package``)."""
        ...


@runtime_checkable
class StoresNoKeyPackages(Protocol):
    """Optional: a directory known never to escrow key packages (Entra ID); such a source
    is not also :class:`HoldsKeyPackages`."""

    @property
    def no_key_packages(self) -> str:
        """One sentence saying so, for the warning of ``export --key-packages``."""
        ...


@runtime_checkable
class ReadsFiles(Protocol):
    """Optional: a source that reads files, so an export never writes where it reads."""

    def folder_holding(self, path: Path) -> Path | None:
        """The file or folder this source reads that is or holds ``path`` (which need not
        exist yet), else None. Paths are compared as paths: ``/keys-old`` is not in ``/keys``."""
        ...


class SourceFactory(Protocol):
    """What the registry loads by type name: normally a Source class with this classmethod."""

    def from_settings(self, name: str, settings: Settings) -> Source:
        """Validate the settings (ending with ``settings.reject_unknown()``) and build a source."""
        ...


class FindsByScanning:
    """A ``find`` for a source that can list its keys and has no quicker way to look them up:
    inherit it, write ``iter_keys`` (and ``iter_deleted_keys`` if the source keeps deleted
    computers' keys), and the source is complete.

    It reads every key and keeps those the query itself accepts (``Query.matches``: a Key ID
    or its prefix, a computer name in any case, ``*``, a short name against a DNS name), so
    the answer is exactly what the built-in sources give; keys of deleted computers only when
    ``query.include_deleted``. What ``iter_keys`` warns about is passed on: on a lookup, any
    row it could not read might have been the key asked for. Override ``find`` for the
    queries the store answers faster (a lookup by Key ID in an indexed table) and call this
    one for the rest.
    """

    def find(self: Source, query: Query, warn: Warn) -> list[RecoveryKey]:
        """The matching keys, held as a list (a lookup answers few; the scan is streamed)."""
        keys: Iterable[RecoveryKey] = self.iter_keys(warn)
        if query.include_deleted and isinstance(self, KeepsDeleted):
            keys = itertools.chain(keys, self.iter_deleted_keys(warn))
        return [key for key in keys if query.matches(key)]


def entries_of(source: Source, warn: Warn) -> Iterator[KeyEntry]:
    """What the index keeps of ``source``: its own listing without passwords
    (``ListsKeys``), else its keys with the passwords dropped on the spot, and the keys of
    deleted computers when it keeps them."""
    if isinstance(source, ListsKeys):
        yield from source.iter_key_entries(warn)
        return
    for key in source.iter_keys(warn):
        yield KeyEntry.of(key)
    if isinstance(source, KeepsDeleted):
        for key in source.iter_deleted_keys(warn):
            yield KeyEntry.of(key)
