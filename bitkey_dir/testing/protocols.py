"""The contract's tests of the optional protocols of :mod:`bitkey_dir.sources.base`: one or
more for each, skipped for a source that does not implement it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest

from bitkey_dir.core.errors import AuthError
from bitkey_dir.core.model import ComputerName, KeyId, Query, RecoveryKey
from bitkey_dir.core.rights import ORIGINS, RIGHT_NAMES, Holder, RightsChange, RightsRequest, Via
from bitkey_dir.core.rotation import Progress, Rotation, State
from bitkey_dir.runtime.credentials import Wanted
from bitkey_dir.sources.base import (
    CHECK_STATUSES,
    Audits,
    AuthStatus,
    Check,
    Decrypts,
    DeviceKeys,
    DeviceRound,
    Diagnoses,
    Escrow,
    FollowsRotations,
    GrantsRights,
    HasParts,
    HoldsKeyPackages,
    KeepsDeleted,
    KeyRead,
    KnowsVolumes,
    ListsKeysByDevice,
    ReadsFiles,
    ReportsReads,
    Rotates,
    SearchesKeyIds,
    ShowsRights,
    SignsIn,
    Source,
    StoresNoKeyPackages,
    entries_of,
)
from bitkey_dir.testing.harness import ContractHarness, covers, one_line

__all__ = ["ProtocolTests"]

_ACTOR_KINDS = ("user", "app", "unknown")


def _within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it, once both are resolved."""
    inner, outer = path.expanduser().resolve(), folder.expanduser().resolve()
    return inner == outer or inner.is_relative_to(outer)


class ProtocolTests(ContractHarness):
    """The tests of the optional protocols; :class:`~bitkey_dir.testing.SourceContract`
    inherits them."""

    @covers(Audits)
    def test_escrow_counts_the_computers_that_hold_keys(self) -> None:
        with self.opened_if(Audits, "does not audit escrow") as source:
            rows = list(source.iter_escrow(self.warn))
        assert all(isinstance(row, Escrow) for row in rows), rows
        assert all(self.named_by(source, row.source) for row in rows), "another source's row"
        assert all(row.keys >= 0 and (row.keys == 0) == (row.newest is None) for row in rows)
        for key in self.expected_keys():
            if key.computer and not key.deleted:
                named = [r for r in rows if r.computer.casefold() == key.computer.casefold()]
                assert any(row.keys >= 1 for row in named), f"{key.computer} counts no key"

    @covers(HoldsKeyPackages)
    def test_key_packages_only_when_asked_and_never_shown(self) -> None:
        with self.opened_if(HoldsKeyPackages, "holds no key packages") as source:
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

    @covers(SignsIn)
    def test_auth_status_is_typed_and_shows_no_secret(self) -> None:
        with self.opened_if(SignsIn, "keeps no credentials") as source:
            status = source.auth_status()
            wanted = source.login_secret
        assert isinstance(status, AuthStatus)
        self.assert_nothing_secret_in(json.dumps(status.to_record()), "auth_status()")
        assert wanted is None or isinstance(wanted, Wanted), f"login_secret is {wanted!r}"
        self.assert_nothing_secret_in(repr(wanted), "login_secret")

    @covers(Diagnoses)
    def test_diagnose_gives_typed_checks_and_no_secret(self) -> None:
        with self.opened_if(Diagnoses, "has no diagnosis of its own") as source:
            checks = source.diagnose(self.warn)
        assert checks, "diagnose() made no check"
        for check in checks:
            assert isinstance(check, Check)
            assert check.status in CHECK_STATUSES, check.status
            assert check.fix is None or "\n" not in check.fix, "a fix is one line"
        self.assert_nothing_secret_in(
            json.dumps([check.to_record() for check in checks]), "diagnose()"
        )

    @covers(KeepsDeleted)
    def test_deleted_keys_are_marked_deleted_and_given_apart(self) -> None:
        with self.opened_if(KeepsDeleted, "keeps no keys of deleted computers") as source:
            deleted = list(source.iter_deleted_keys(self.warn))
            live = {key.key_id for key in source.iter_keys(self.warn)}
        for key in deleted:
            self._check_key(source, key)
            assert key.deleted, f"{key.key_id}: given by iter_deleted_keys() but not deleted"
            # export --include-deleted writes both streams: a key in each is written twice
            assert key.key_id not in live, f"{key.key_id}: given by iter_keys() too"
        for expected in self.expected_keys():
            if expected.deleted:
                assert any(self.same(key, expected) for key in deleted), expected.key_id

    @covers(Decrypts)
    def test_with_identities_is_the_same_source(self) -> None:
        wanted = self.readable()
        with self.opened_if(Decrypts, "reads no encrypted exports") as source:
            before = sorted(str(key.key_id) for key in source.iter_keys(self.warn))
            derived = source.with_identities([])
            try:
                assert isinstance(derived, Source), f"with_identities() gave {derived!r}"
                assert derived.name == source.name, "with_identities() renamed the source"
                found = self.find(derived, Query(key_id=wanted.key_id))
                keys = list(derived.iter_keys(self.warn))
                self.assert_nothing_secret_in(repr(derived), "the repr with identities")
            finally:
                derived.close()
            after = sorted(str(key.key_id) for key in source.iter_keys(self.warn))
        assert any(self.same(key, wanted, named=False) for key in found)
        assert sorted(str(key.key_id) for key in keys) == before, "other keys with identities"
        assert after == before, "with_identities() changed the source it was asked of"

    @covers(Decrypts)
    def test_with_identities_opens_what_the_source_alone_cannot(self) -> None:
        with (
            self.opened_if(Decrypts, "reads no encrypted exports"),
            tempfile.TemporaryDirectory() as folder,
        ):
            sealed = self.sealed(Path(folder))
            if sealed is None:
                pytest.skip("no sealed() source given")
            assert sealed.keys, "sealed() gave no key"
            self.also_expected = [*self.also_expected, *sealed.keys]
            self.also_secret = [*self.also_secret, *self._identity_lines(sealed.identities)]
            source = self.build(sealed.settings)
            try:
                assert isinstance(source, Decrypts)
                for key in sealed.keys:
                    try:
                        locked = self.find(source, Query(key_id=key.key_id))
                    except AuthError:  # "cannot decrypt" is the documented answer too
                        locked = []
                    assert not any(found.key_id == key.key_id for found in locked), (
                        f"{key.key_id}: read without the identity files"
                    )
                opened = source.with_identities(sealed.identities)
                try:
                    for key in sealed.keys:
                        try:
                            found = self.find(opened, Query(key_id=key.key_id))
                        except AuthError as exc:
                            raise AssertionError(f"not opened with identities: {exc}") from exc
                        assert any(self.same(k, key, named=False) for k in found), key.key_id
                    self.assert_nothing_secret_in(repr(opened), "the repr with identities")
                finally:
                    opened.close()
            finally:
                source.close()

    @staticmethod
    def _identity_lines(identities: Sequence[Path]) -> list[str]:
        """The secret lines of identity files: everything but comments."""
        return [
            line.strip()
            for path in identities
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if line.strip() and not line.startswith("#")
        ]

    def _located_files(self, source: Source) -> list[Path]:
        """The existing files the keys' locations name ("PATH" or "PATH (where in it)")."""
        named: dict[Path, None] = {}
        for key in source.iter_keys(self.warn):
            text = key.location or ""
            for candidate in (text, text.rsplit(" (", 1)[0]):
                if candidate and Path(candidate).is_file():
                    named[Path(candidate)] = None
        return list(named)

    @covers(ReadsFiles)
    def test_folder_holding_answers_for_its_files_and_no_others(self) -> None:
        with self.opened_if(ReadsFiles, "reads no files") as source:
            read = list(self.read_paths()) or self._located_files(source)
            assert read, "override read_paths() with the files or folders the source reads"
            holders: list[Path] = []
            for path in read:
                inside = [path, path / "export.csv"] if path.is_dir() else [path]
                for target in inside:
                    holder = source.folder_holding(target)
                    assert isinstance(holder, Path), f"folder_holding({target}) gave {holder!r}"
                    assert _within(target, holder), f"{holder} does not hold {target}"
                    holders.append(holder)
            for holder in holders:
                # A name that only starts like a path read is not inside it.
                sibling = holder.with_name(holder.name + "-not-read")
                if not any(_within(sibling, other) for other in holders):
                    assert source.folder_holding(sibling) is None, f"{sibling} is not read"
            with tempfile.TemporaryDirectory() as outside:
                elsewhere = Path(outside) / "export.csv"
                assert source.folder_holding(elsewhere) is None, f"{elsewhere} is not read"

    @covers(SearchesKeyIds)
    def test_a_key_id_prefix_is_searched_in_full(self) -> None:
        wanted = self.readable()
        prefix = KeyId.parse(str(wanted.key_id)[:8])
        with self.opened_if(SearchesKeyIds, "searches no Key ID prefix itself") as source:
            assert source.searches_key_ids is True, "searches_key_ids must be True if set"
            every = {str(k.key_id) for k in source.iter_keys(self.warn) if prefix.matches(k.key_id)}
            found = self.find(source, Query(key_id=prefix))
        for key in found:
            self._check_key(source, key)
        assert {str(k.key_id) for k in found} == every, (
            f"find() by {prefix} is not every key iter_keys() has with those digits"
        )

    @covers(HasParts)
    def test_parts_are_named_name_slash_part_and_hold_every_key(self) -> None:
        wanted = self.readable()
        with self.opened_if(HasParts, "has no parts") as source:
            whole = sorted(str(key.key_id) for key in source.iter_keys(self.warn))
            parts = source.parts()
            held: list[str] = []
            found: list[RecoveryKey] = []
            try:
                assert isinstance(parts, list), f"parts() gave {parts!r}"
                assert parts, "a source with parts has at least one"
                for part in parts:
                    assert isinstance(part, Source), f"a part is {part!r}"
                    assert part.name.startswith(f"{source.name}/"), f"a part is {part.name!r}"
                    assert part.name != f"{source.name}/", "a part is named NAME/ only"
                    assert not isinstance(part, HasParts), f"{part.name} has parts of its own"
                    described = part.describe()
                    one_line(described, f"{part.name}: describe()")
                    self.assert_nothing_secret_in(described + repr(part), f"{part.name}")
                    for key in part.iter_keys(self.warn):
                        self._check_key(part, key)
                        held.append(str(key.key_id))
                    found += self.find(part, Query(key_id=wanted.key_id))
            finally:
                for part in parts:
                    part.close()
        names = [part.name.casefold() for part in parts]
        assert len(names) == len(set(names)), "two parts share a name (--source NAME/PART)"
        assert sorted(held) == whole, "the parts do not hold the keys of the whole source"
        assert any(self.same(key, wanted, named=False) for key in found), "no part finds it"

    @covers(Rotates)
    def test_rotate_asks_only_for_the_keys_asked_for(self) -> None:
        wanted = self.readable()
        query = Query(key_id=wanted.key_id)
        with self.opened_if(Rotates, "cannot have devices rotate their keys") as source:
            # A rotate that ignored its query would ask every device of the directory.
            assert source.rotate(Query(key_id=self.absent_key_id()), self.warn) == []
            nobody = Query(computer=ComputerName.parse("NO-SUCH-COMPUTER-7Q"))
            assert source.rotate(nobody, self.warn) == []
            rotations = source.rotate(query, self.warn)
        assert isinstance(rotations, list)
        for rotation in rotations:
            assert isinstance(rotation, Rotation), f"rotate() gave {rotation!r}"
            assert self.named_by(source, rotation.source), f"a rotation of {rotation.source}"
            assert rotation.outcome in ("requested", "by hand"), rotation.outcome
            assert rotation.key_ids, "a rotation names no key"
            for key_id in rotation.key_ids:
                assert isinstance(key_id, KeyId), f"a rotation names {key_id!r}"
                assert key_id.is_full, f"a rotation names the prefix {key_id}"
                assert wanted.key_id.matches(key_id), f"{key_id} was not asked for"
            one_line(rotation.detail, "a rotation's detail")
            assert rotation.outcome != "by hand" or rotation.steps, "by hand, without steps"
        assert any(wanted.key_id in rotation.key_ids for rotation in rotations)
        self.assert_nothing_secret_in(
            json.dumps([rotation.to_record() for rotation in rotations]) + repr(rotations),
            "rotate()",
        )

    @covers(FollowsRotations)
    def test_rotation_progress_is_a_known_state_without_a_secret(self) -> None:
        wanted = self.readable()
        with self.opened_if(FollowsRotations, "cannot say how a rotation went") as source:
            follows: FollowsRotations = source
            assert isinstance(source, Rotates), "follows rotations, but does not rotate"
            rotations = source.rotate(Query(key_id=wanted.key_id), self.warn)
            answers = [
                follows.rotation_progress(rotation, self.warn)
                for rotation in rotations
                if rotation.outcome == "requested"
            ]
        for progress in answers:
            assert isinstance(progress, Progress), f"rotation_progress() gave {progress!r}"
            assert progress.state in get_args(State), progress.state
            for key_id in progress.new_key_ids:
                assert isinstance(key_id, KeyId), f"a new key named {key_id!r}"
                assert key_id.is_full, f"a new key named by the prefix {key_id}"
            assert progress.state == "done" or not progress.new_key_ids, "new keys, not done"
            assert progress.retry_after is None or progress.retry_after >= 0
            one_line(progress.detail or "-", "a rotation's progress")
        self.assert_nothing_secret_in(
            json.dumps([progress.to_record() for progress in answers]) + repr(answers),
            "rotation_progress()",
        )

    @covers(ListsKeysByDevice)
    def test_keys_by_device_are_the_listing_of_the_listed_devices(self) -> None:
        with self.opened_if(ListsKeysByDevice, "lists no keys by device") as source:
            every = DeviceRound()
            parts = list(source.iter_device_keys(None, every, self.warn))
            again = DeviceRound()
            changed = list(source.iter_device_keys(every.cursor, again, self.warn))
        with self.opened() as source:
            listed = {entry.key_id: entry for entry in entries_of(source, self.warn)}
        assert all(isinstance(part, DeviceKeys) for part in parts + changed)
        devices = [part.device_id for part in parts]
        assert len(devices) == len(set(devices)), "a device was given twice"
        assert every.devices == len(parts), "DeviceRound.devices is not the devices given"
        for part in parts:
            for entry in part.entries:
                assert entry.key_id in listed, f"{entry.key_id}: not in the full listing"
                assert entry.device_id == listed[entry.key_id].device_id, entry.key_id
        given = {entry.key_id for part in parts for entry in part.entries}
        of_devices = {key for key, entry in listed.items() if entry.device_id in set(devices)}
        assert of_devices <= given, "a key of a listed device is missing"
        self.assert_nothing_secret_in(repr(parts + changed), "iter_device_keys()")

    @covers(KnowsVolumes)
    def test_volume_keys_give_the_key_and_its_volume_without_passwords(self) -> None:
        wanted = self.readable()
        with self.opened_if(KnowsVolumes, "cannot say which keys a volume has") as source:
            volume = source.volume_keys(wanted.key_id, self.warn)
            gone = source.volume_keys(self.absent_key_id(), self.warn)
        assert gone is None, f"volume_keys() of a key the source does not hold gave {gone!r}"
        assert isinstance(volume, list), f"volume_keys() gave {volume!r}"
        for key in volume:
            self._check_key(source, key)
            assert key.recovery_password is None, f"{key.key_id}: read with its password"
            assert key.key_package is None, f"{key.key_id}: read with its key package"
        itself = [key for key in volume if key.key_id == wanted.key_id]
        assert len(itself) == 1, "volume_keys() does not give the key itself, once"
        for key in volume:
            if key.computer and itself[0].computer:
                assert key.computer.casefold() == itself[0].computer.casefold(), key.computer
            if key.device_id and itself[0].device_id:
                assert key.device_id == itself[0].device_id, f"{key.key_id}: another device"
        self.assert_nothing_secret_in(repr(volume), "volume_keys()")

    @covers(ReportsReads)
    def test_key_reads_are_typed_newest_first_and_since_the_time_asked(self) -> None:
        wanted = self.readable()
        since = datetime.now(UTC) - timedelta(minutes=5)
        with self.opened_if(ReportsReads, "keeps no record of key reads") as source:
            self.find(source, Query(key_id=wanted.key_id))  # a read for the record
            reads = list(source.iter_key_reads(since, self.warn))
        for read in reads:
            assert isinstance(read, KeyRead), f"iter_key_reads() gave {read!r}"
            assert self.named_by(source, read.source), f"a read recorded by {read.source}"
            assert read.time.utcoffset() is not None, "a read's time has no timezone"
            assert read.time >= since, f"a read of {read.time}, before {since}"
            assert read.actor_kind in _ACTOR_KINDS, read.actor_kind
            assert read.key_id is None or (isinstance(read.key_id, KeyId) and read.key_id.is_full)
            assert isinstance(read.succeeded, bool)
        times = [read.time for read in reads]
        assert times == sorted(times, reverse=True), "the reads are not newest first"
        assert any(read.key_id == wanted.key_id for read in reads), "the read made is missing"
        self.assert_nothing_secret_in(repr(reads), "iter_key_reads()")

    @covers(StoresNoKeyPackages)
    def test_no_key_packages_is_one_sentence_and_no_key_has_one(self) -> None:
        with self.opened_if(
            StoresNoKeyPackages, "does not say it stores no key packages"
        ) as source:
            said = source.no_key_packages
            keys = list(source.iter_keys(self.warn))
        one_line(said, "no_key_packages")
        self.assert_nothing_secret_in(said, "no_key_packages")
        assert not isinstance(source, HoldsKeyPackages), "it also says it holds key packages"
        assert all(key.key_package is None for key in keys), "a key has a key package"

    @covers(ShowsRights)
    def test_rights_holders_say_who_holds_what_through_what(self) -> None:
        with self.opened_if(ShowsRights, "cannot say who may read its keys") as source:
            holders = source.rights_holders(self.rights_scope(), self.warn)
        assert isinstance(holders, list), f"rights_holders() gave {holders!r}"
        for holder in holders:
            assert isinstance(holder, Holder), f"rights_holders() gave {holder!r}"
            assert self.named_by(source, holder.source), f"a holder of {holder.source}"
            for text, what in ((holder.principal, "principal"), (holder.ident, "id")):
                one_line(text, f"a holder's {what}")
            one_line(holder.scope, "a holder's scope")
            assert holder.right in RIGHT_NAMES, holder.right
            assert holder.via, f"{holder.principal}: nothing gives it {holder.right}"
            for way in holder.via:
                assert isinstance(way, Via), f"{holder.principal}: via {way!r}"
                one_line(way.text, "what gives a right")
                assert way.origin in ORIGINS, way.origin
        pairs = [(holder.scope, holder.ident, holder.right) for holder in holders]
        assert len(pairs) == len(set(pairs)), "a holder listed twice for one right"
        self.assert_nothing_secret_in(
            json.dumps([holder.to_record() for holder in holders]) + repr(holders),
            "rights_holders()",
        )

    @covers(GrantsRights)
    def test_a_what_if_grant_or_revoke_changes_nothing(self) -> None:
        principal = self.rights_principal()
        scope = self.rights_scope()
        with self.opened_if(GrantsRights, "cannot change who may read its keys") as source:
            if principal is None:
                pytest.skip("no rights_principal() given")
            shows = isinstance(source, ShowsRights)  # not narrowed: it is both protocols
            assert shows, "it changes rights it cannot show"
            before = source.rights_holders(scope, self.warn)
            changes = []
            for action in ("grant", "revoke"):
                request = RightsRequest(action, scope, principal, True, True)
                changes.append(source.change_rights(request, self.warn))
                after = source.rights_holders(scope, self.warn)
                assert after == before, f"a what-if {action} changed who may read keys"
        for change, action in zip(changes, ("grant", "revoke"), strict=True):
            assert isinstance(change, RightsChange), f"change_rights() gave {change!r}"
            assert self.named_by(source, change.source), f"a change of {change.source}"
            assert change.action == action, f"asked to {action}, it says {change.action}"
            assert not change.applied, f"a what-if {action} says it was applied"
            for text in (change.principal, change.ident, *change.changed, *change.commands):
                one_line(text, f"a {action}'s principal, entries and commands")
            assert change.changed or change.unchanged, f"a {action} that names no entry"
        self.assert_nothing_secret_in(repr(changes), "change_rights()")
