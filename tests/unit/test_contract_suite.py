"""The contract suite itself: a source that breaks the contract fails the test that says so,
and every protocol in sources/base.py has a test, proven by such a source."""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bitkey_dir.core.model import KeyEntry, KeyId, KeyPackage, Query, RecoveryKey
from bitkey_dir.core.rights import Holder, RightsChange, RightsRequest, Via
from bitkey_dir.core.rotation import Progress, Rotation
from bitkey_dir.ops.rotate import by_hand
from bitkey_dir.runtime.credentials import Secret, Wanted
from bitkey_dir.sources import base
from bitkey_dir.sources.base import (
    AuthStatus,
    Check,
    DeviceKeys,
    DeviceRound,
    Escrow,
    KeyRead,
    Source,
    Warn,
)
from bitkey_dir.sources.files.source import FileSource
from bitkey_dir.testing import SourceContract
from tests.unit.file_contract import FileSourceContract as FileContract

# Shaped like a recovery password and one of the file contract's: never to be shown.
PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"


class Wrapped:
    """The file source, with one way of breaking the contract switched on."""

    def __init__(self, inner: FileSource, fault: str) -> None:
        self.inner = inner
        self.fault = fault

    @property
    def name(self) -> str:
        return "elsewhere" if self.fault == "answers to another name" else self.inner.name

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
            return f"keys: {PASSWORD}"
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()


# -- stand-ins: each adds one optional protocol, kept unless its fault is switched on ---------


class Escrowing(Wrapped):
    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        per_computer: dict[str, list[RecoveryKey]] = {}
        for key in self.inner.iter_keys(warn):
            if key.computer and not key.deleted:
                per_computer.setdefault(key.computer, []).append(key)
        for computer, keys in per_computer.items():
            # A directory dates every key; a key file may not say when it was made.
            dates = [key.created or datetime(2025, 1, 1, tzinfo=UTC) for key in keys]
            counted = 0 if self.fault == "counts no key" else len(keys)
            newest = max(dates) if counted else None
            yield Escrow(self.name, computer, None, counted, newest, "files")


class Packaging(Wrapped):
    packaged = False

    def with_key_packages(self) -> Packaging:
        packaging = Packaging(self.inner, self.fault)
        packaging.packaged = True
        return packaging

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        for key in super().iter_keys(warn):
            if self.packaged or self.fault == "reads key packages unasked":
                yield dataclasses.replace(key, key_package=KeyPackage(key.key_id.hex.encode()))
            else:
                yield key


class SigningIn(Wrapped):
    @property
    def login_secret(self) -> Wanted | None:
        return Wanted(self.name, "the password of helpdesk", "BITKEY_DIR_PASSWORD", self.name)

    def login(self, secret: Secret | None) -> str:
        return "signed in"

    def logout(self) -> list[str]:
        return []

    def auth_status(self) -> AuthStatus:
        shown = PASSWORD if self.fault == "shows the password in its status" else None
        return AuthStatus(account="helpdesk@corp.example", secret=shown or "password")


class Diagnosing(Wrapped):
    def diagnose(self, warn: Warn) -> list[Check]:
        if self.fault == "makes no check":
            return []
        checks = self.inner.diagnose(warn)
        if self.fault == "gives a fix of two lines":
            checks.append(Check("files", "x", "warn", "odd", "chmod 600 x\nchmod 700 ."))
        return checks


class KeepingApart(Wrapped):
    """Deleted computers' keys apart from the others, as Active Directory keeps them."""

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        for key in super().iter_keys(warn):
            if not key.deleted or self.fault == "gives deleted keys in both streams":
                yield key

    def iter_deleted_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        for key in self.inner.iter_keys(warn):
            if key.deleted:
                unmarked = self.fault == "gives deleted keys unmarked"
                yield dataclasses.replace(key, deleted=False) if unmarked else key


class Listing(Wrapped):
    def iter_key_entries(self, warn: Warn) -> Iterator[KeyEntry]:
        entries = [KeyEntry.of(key) for key in self.inner.iter_keys(warn)]
        yield from entries[1:] if self.fault == "lists too few keys" else entries


class Decrypting(Wrapped):
    def with_identities(self, identities: Sequence[Path]) -> Source:
        if self.fault == "ignores the identities":
            return Decrypting(self.inner, self.fault)
        opened = self.inner.with_identities(identities)
        if self.fault == "renames itself with identities":
            opened = dataclasses.replace(opened, name=f"{self.name} decrypting")
        return Decrypting(opened, self.fault)


class Reading(Wrapped):
    def folder_holding(self, path: Path) -> Path | None:
        if self.fault == "holds none of its files":
            return None
        if self.fault == "compares paths as text":
            return next((p for p in self.inner.paths if str(path).startswith(str(p))), None)
        return self.inner.folder_holding(path)


class SearchingIds(Wrapped):
    searches_key_ids = True

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        found = super().find(query, warn)
        if self.fault == "misses keys of a prefix" and query.key_id and not query.key_id.is_full:
            return found[:-1]
        return found


class InParts(Wrapped):
    def parts(self) -> list[Source]:
        parts: list[Source] = []
        for path in self.inner.paths:
            name = f"{self.name}/{path.name}"
            if self.fault == "names its parts without its own name":
                name = path.name
            parts.append(Wrapped(dataclasses.replace(self.inner, name=name, paths=(path,)), ""))
        return parts[:1] if self.fault == "loses keys in its parts" else parts


class Rotating(Wrapped):
    def rotate(self, query: Query, warn: Warn) -> list[Rotation]:
        if self.fault == "rotates every device":
            return by_hand(Wrapped(self.inner, "ignores the query"), query, warn)
        return by_hand(self, query, warn)


class Following(Wrapped):
    """Rotates through a service that reports how each rotation went, as Intune does."""

    def rotate(self, query: Query, warn: Warn) -> list[Rotation]:
        found = by_hand(self, query, warn)
        return [dataclasses.replace(r, outcome="requested", steps=()) for r in found]

    def rotation_progress(self, rotation: Rotation, warn: Warn) -> Progress:
        new = KeyId.from_uuid(uuid.uuid4())
        if self.fault == "names the new key by a prefix":
            new = KeyId.parse(new.short)
        return Progress("done", (new,))


class Volumes(Wrapped):
    def volume_keys(self, key_id: KeyId, warn: Warn) -> list[RecoveryKey] | None:
        keys = {key.key_id: key for key in self.inner.iter_keys(warn)}
        itself = keys.get(key_id)
        if itself is None:
            return [] if self.fault == "gives an empty volume for a key it lacks" else None
        volume = [key for key in keys.values() if key.computer == itself.computer]
        if self.fault == "shows passwords with the volume":
            return volume
        return [dataclasses.replace(key, recovery_password=None) for key in volume]


class ByDevice(Wrapped):
    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        for key in super().iter_keys(warn):  # the computer stands for the device
            yield dataclasses.replace(key, device_id=key.computer)

    def iter_device_keys(
        self, since: str | None, round: DeviceRound, warn: Warn
    ) -> Iterator[DeviceKeys]:
        if since is not None:
            return
        devices: dict[str, list[KeyEntry]] = {}
        for key in self.iter_keys(warn):
            devices.setdefault(key.device_id or "", []).append(KeyEntry.of(key))
        lost = 1 if self.fault == "loses a device's key" else 0
        for device, entries in devices.items():
            round.devices += 1
            yield DeviceKeys(device, tuple(entries[lost:]))
        round.cursor = "now"


class Reads(Wrapped):
    def __init__(self, inner: FileSource, fault: str) -> None:
        super().__init__(inner, fault)
        now = datetime.now(UTC)
        self.reads = [self._read(now - timedelta(days=900)), self._read(now - timedelta(minutes=1))]

    def _read(self, time: datetime, key_id: KeyId | None = None) -> KeyRead:
        return KeyRead(self.name, time, "helpdesk@corp.example", "user", key_id, None, True, None)

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        found = super().find(query, warn)
        if self.fault != "forgets its reads":
            self.reads += [self._read(datetime.now(UTC), key.key_id) for key in found]
        return found

    def iter_key_reads(self, since: datetime, warn: Warn) -> Iterator[KeyRead]:
        reads = sorted(self.reads, key=lambda read: read.time)
        if self.fault != "reports reads before the time asked":
            reads = [read for read in reads if read.time >= since]
        yield from reads if self.fault == "reports reads oldest first" else reversed(reads)


class NoPackages(Wrapped):
    @property
    def no_key_packages(self) -> str:
        if self.fault == "says it in two lines":
            return "This directory escrows\nno key packages."
        return "This directory escrows recovery passwords only, never key packages."

    # None blocks a protocol's method (typing's rule): only the fault holds key packages.
    with_key_packages: Callable[[], Source] | None = None

    def __init__(self, inner: FileSource, fault: str) -> None:
        super().__init__(inner, fault)
        if fault == "also holds key packages":
            self.with_key_packages = lambda: self


class Delegating(Wrapped):
    """Who may read keys kept in memory, as a directory's ACEs would be."""

    def __init__(self, inner: FileSource, fault: str) -> None:
        super().__init__(inner, fault)
        self.granted: set[str] = set()

    def rights_holders(self, scope: str | None, warn: Warn) -> list[Holder]:
        where = scope or "everywhere"
        admins = Via("(A;;GA;;;DA)", "class default")
        holders = [Holder(self.name, where, "Domain Admins", "S-1-5-21-1-512", _READ, (admins,))]
        for name in sorted(self.granted):
            way = Via(f"(OA;CIIO;RPCR;msFVE-RecoveryPassword;;{name})", "explicit")
            holders.append(Holder(self.name, where, name, name, _READ, (way,)))
        if self.fault == "gives a holder nothing that gives it":
            holders.append(Holder(self.name, where, "Everyone", "S-1-1-0", _READ, ()))
        return holders

    def change_rights(self, request: RightsRequest, warn: Warn) -> RightsChange:
        if not request.what_if or self.fault == "changes on a what-if":
            if request.action == "grant":
                self.granted.add(request.principal)
            else:
                self.granted.discard(request.principal)
        entry = f"(OA;CIIO;RPCR;msFVE-RecoveryPassword;;{request.principal})"
        return RightsChange(
            self.name,
            request.scope or "everywhere",
            request.action,
            request.principal,
            request.principal,
            applied=not request.what_if,
            changed=(entry,),
        )


_READ = "read recovery passwords"


def broken(fault: str, wrapper: type[Wrapped] = Wrapped) -> FileContract:
    class Broken(FileContract):
        def build(self, table: dict[str, object] | None = None, name: str | None = None) -> Any:
            return wrapper(super().build(table, name), fault)

        def rights_principal(self) -> str:
            return "BITKEY\\helpdesk"

    suite = Broken()
    suite.warned = []
    return suite


Test = Callable[[FileContract], None]
CASES: Sequence[tuple[str, Test, type[Wrapped]]] = [
    ("answers to another name", FileContract.test_it_is_built_from_its_settings, Wrapped),
    (
        "ignores the query",
        FileContract.test_an_unknown_key_is_an_empty_answer_not_an_error,
        Wrapped,
    ),
    (
        "shows deleted keys unasked",
        FileContract.test_deleted_computers_keys_only_when_asked,
        Wrapped,
    ),
    ("names another source", FileContract.test_find_by_full_key_id, Wrapped),
    ("yields a key twice", FileContract.test_iter_keys_yields_every_key_once, Wrapped),
    ("loses keys", FileContract.test_iter_keys_yields_every_key_once, Wrapped),
    (
        "describes with the password",
        FileContract.test_describe_is_one_line_without_a_secret,
        Wrapped,
    ),
    # one for each optional protocol
    ("counts no key", FileContract.test_escrow_counts_the_computers_that_hold_keys, Escrowing),
    (
        "reads key packages unasked",
        FileContract.test_key_packages_only_when_asked_and_never_shown,
        Packaging,
    ),
    (
        "shows the password in its status",
        FileContract.test_auth_status_is_typed_and_shows_no_secret,
        SigningIn,
    ),
    ("makes no check", FileContract.test_diagnose_gives_typed_checks_and_no_secret, Diagnosing),
    (
        "gives a fix of two lines",
        FileContract.test_diagnose_gives_typed_checks_and_no_secret,
        Diagnosing,
    ),
    (
        "gives deleted keys unmarked",
        FileContract.test_deleted_keys_are_marked_deleted_and_given_apart,
        KeepingApart,
    ),
    (
        "gives deleted keys in both streams",
        FileContract.test_deleted_keys_are_marked_deleted_and_given_apart,
        KeepingApart,
    ),
    (
        "lists too few keys",
        FileContract.test_the_key_id_index_lists_every_key_and_no_password,
        Listing,
    ),
    (
        "renames itself with identities",
        FileContract.test_with_identities_is_the_same_source,
        Decrypting,
    ),
    (
        "ignores the identities",
        FileContract.test_with_identities_opens_what_the_source_alone_cannot,
        Decrypting,
    ),
    (
        "holds none of its files",
        FileContract.test_folder_holding_answers_for_its_files_and_no_others,
        Reading,
    ),
    (
        "compares paths as text",
        FileContract.test_folder_holding_answers_for_its_files_and_no_others,
        Reading,
    ),
    (
        "misses keys of a prefix",
        FileContract.test_a_key_id_prefix_is_searched_in_full,
        SearchingIds,
    ),
    (
        "names its parts without its own name",
        FileContract.test_parts_are_named_name_slash_part_and_hold_every_key,
        InParts,
    ),
    (
        "loses keys in its parts",
        FileContract.test_parts_are_named_name_slash_part_and_hold_every_key,
        InParts,
    ),
    ("rotates every device", FileContract.test_rotate_asks_only_for_the_keys_asked_for, Rotating),
    (
        "names the new key by a prefix",
        FileContract.test_rotation_progress_is_a_known_state_without_a_secret,
        Following,
    ),
    (
        "loses a device's key",
        FileContract.test_keys_by_device_are_the_listing_of_the_listed_devices,
        ByDevice,
    ),
    (
        "shows passwords with the volume",
        FileContract.test_volume_keys_give_the_key_and_its_volume_without_passwords,
        Volumes,
    ),
    (
        "gives an empty volume for a key it lacks",
        FileContract.test_volume_keys_give_the_key_and_its_volume_without_passwords,
        Volumes,
    ),
    (
        "reports reads oldest first",
        FileContract.test_key_reads_are_typed_newest_first_and_since_the_time_asked,
        Reads,
    ),
    (
        "reports reads before the time asked",
        FileContract.test_key_reads_are_typed_newest_first_and_since_the_time_asked,
        Reads,
    ),
    (
        "forgets its reads",
        FileContract.test_key_reads_are_typed_newest_first_and_since_the_time_asked,
        Reads,
    ),
    (
        "says it in two lines",
        FileContract.test_no_key_packages_is_one_sentence_and_no_key_has_one,
        NoPackages,
    ),
    (
        "also holds key packages",
        FileContract.test_no_key_packages_is_one_sentence_and_no_key_has_one,
        NoPackages,
    ),
    (
        "gives a holder nothing that gives it",
        FileContract.test_rights_holders_say_who_holds_what_through_what,
        Delegating,
    ),
    (
        "changes on a what-if",
        FileContract.test_a_what_if_grant_or_revoke_changes_nothing,
        Delegating,
    ),
]


def run(test: Test, suite: FileContract) -> None:
    """The test, where a skip is a failure: each case's source implements what it checks."""
    try:
        test(suite)
    except pytest.skip.Exception as skipped:
        pytest.fail(f"{test.__name__} was skipped: {skipped}")


@pytest.mark.parametrize(("fault", "test", "wrapper"), CASES, ids=[case[0] for case in CASES])
def test_a_broken_source_fails_the_test_for_its_fault(
    fault: str, test: Test, wrapper: type[Wrapped]
) -> None:
    with pytest.raises(AssertionError):
        run(test, broken(fault, wrapper))
    healthy = broken("none", wrapper)
    run(test, healthy)  # the same test passes for the source that keeps the contract
    healthy.check_warnings()


def test_a_warning_with_a_password_fails_at_the_end_of_the_test() -> None:
    suite = broken("warns with the password")
    suite.test_find_by_full_key_id()
    with pytest.raises(AssertionError, match="a warning shows a recovery password"):
        suite.check_warnings()


def test_a_crash_instead_of_a_documented_error_fails() -> None:
    suite = broken("crashes instead of failing")
    with pytest.raises(RuntimeError):
        suite.test_a_source_that_cannot_answer_raises_a_documented_error()


# -- nothing in sources/base.py goes unchecked ---------------------------------------------------


def protocol_tests() -> dict[str, list[str]]:
    """Each protocol the suite checks, and the tests that check it."""
    checked: dict[str, list[str]] = {}
    for name, test in inspect.getmembers(SourceContract, inspect.isfunction):
        for protocol in getattr(test, "contract_protocols", ()):
            checked.setdefault(protocol.__name__, []).append(name)
    return checked


def test_every_protocol_in_sources_base_has_a_contract_test() -> None:
    defined = {
        name
        for name, value in inspect.getmembers(base, inspect.isclass)
        if value.__module__ == base.__name__ and getattr(value, "_is_protocol", False)
    }
    assert len(defined) >= 18, sorted(defined)  # Source, SourceFactory and the optional ones
    assert sorted(defined - protocol_tests().keys()) == []


def test_every_protocol_test_is_proven_by_a_source_that_breaks_it() -> None:
    proven = {test.__name__ for _, test, _ in CASES}
    unproven = {name for names in protocol_tests().values() for name in names} - proven
    assert sorted(unproven) == []
