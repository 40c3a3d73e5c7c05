"""The platform module: the POSIX implementation for real, the Windows one with stand-ins for
msvcrt and pywin32, so that a wrong name or a wrong call there fails here too."""

from __future__ import annotations

import errno
import importlib
import os
import signal
import stat
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bitkey_dir.runtime import platform
from bitkey_dir.runtime.platform import LOCK_OFFSET
from bitkey_dir.runtime.windows import Ace

ME = "S-1-5-21-1-2-3-1001"
OTHER = "S-1-5-21-1-2-3-1002"
EVERYONE = "S-1-1-0"
ADMINS = "S-1-5-32-544"
SYSTEM = "S-1-5-18"


# --- POSIX, for real ---------------------------------------------------------------------

posix = pytest.mark.skipif(sys.platform == "win32", reason="the POSIX implementation")


@posix
def test_open_file_refuses_a_symbolic_link(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError, match="link") as caught:
        platform.open_file(tmp_path / "link", os.O_RDONLY)
    assert caught.value.errno == errno.ELOOP


@posix
def test_os_flags_never_follow_never_block_never_inherit() -> None:
    flags = platform.os_flags(os.O_RDONLY)
    assert flags & os.O_NOFOLLOW
    assert flags & os.O_NONBLOCK
    assert flags & os.O_CLOEXEC


@posix
def test_read_at_leaves_the_position(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abcdef")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert platform.read_at(fd, 2, 3) == b"de"
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
    finally:
        os.close(fd)


@posix
def test_locked_excludes_another_open_file(tmp_path: Path) -> None:
    import fcntl

    path = tmp_path / "trail"
    path.touch()
    first, second = os.open(path, os.O_RDWR), os.open(path, os.O_RDWR)
    try:
        with platform.locked(first), pytest.raises(BlockingIOError):
            fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released again
    finally:
        os.close(first)
        os.close(second)


@posix
def test_a_private_folder_is_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        platform.make_private_folder(tmp_path / "state")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


@posix
def test_a_private_file_is_0600_new_or_old_and_never_a_link(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        platform.create_private_file(tmp_path / "new")
        (tmp_path / "old").write_text("x")
        (tmp_path / "old").chmod(0o644)
        platform.create_private_file(tmp_path / "old")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "old").stat().st_mode) == 0o600
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OSError, match="link") as caught:
        platform.create_private_file(tmp_path / "dangling")
    assert caught.value.errno == errno.ELOOP
    assert not (tmp_path / "nowhere").exists()


@posix
@pytest.mark.parametrize(
    ("mode", "refused"),
    [(0o777, True), (0o1777, False), (0o770, False), (0o755, False)],
)
@posix
def test_others_may_plant_only_where_everybody_writes_without_the_sticky_bit(
    tmp_path: Path, mode: int, refused: bool
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    assert (platform.others_may_plant(folder) is not None) is refused


@posix
@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="giving a file to another user needs root",
)
@posix
def test_a_file_of_another_user_is_named(tmp_path: Path) -> None:
    path = tmp_path / "trail"
    path.touch()
    fd = os.open(path, os.O_RDONLY)
    try:
        assert platform.owned_by_another(fd, path) is None  # root's own
        os.chown(path, 4242, 4242)
        assert platform.owned_by_another(fd, path) == "uid 4242"
    finally:
        os.close(fd)


@posix
def test_core_dumps_are_limited() -> None:
    # In a child: a limit lowered in the test process could not be raised again.
    code = (
        "import resource; from bitkey_dir.runtime import platform; platform.limit_core_dumps(); "
        "print(resource.getrlimit(resource.RLIMIT_CORE))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "(0, 0)"


@posix
def test_posix_stop_signals() -> None:
    assert platform.stop_signals() == (signal.SIGTERM, signal.SIGHUP)


# --- Windows, with stand-ins --------------------------------------------------------------


class FakeACL:
    def __init__(self, aces: list[tuple[tuple[int, int], int, str]] | None = None) -> None:
        self.aces = list(aces or [])

    def GetAceCount(self) -> int:
        return len(self.aces)

    def GetAce(self, index: int) -> tuple[tuple[int, int], int, str]:
        return self.aces[index]

    def AddAccessAllowedAceEx(self, revision: int, flags: int, mask: int, sid: str) -> None:
        assert revision == 2
        self.aces.append(((0, flags), mask, sid))


class FakeDescriptor:
    def __init__(self, owner: str = ME, dacl: FakeACL | None = None) -> None:
        self.owner, self.dacl = owner, dacl

    def GetSecurityDescriptorOwner(self) -> str:
        return self.owner

    def GetSecurityDescriptorDacl(self) -> FakeACL | None:
        return self.dacl

    def SetSecurityDescriptorDacl(self, present: bool, acl: FakeACL, defaulted: bool) -> None:
        assert present
        assert not defaulted
        self.dacl = acl


class FakeWindows:
    """msvcrt, win32api and win32security as far as bitkey_dir.runtime.windows uses them."""

    def __init__(self) -> None:
        self.files: dict[str, FakeDescriptor] = {}
        self.locks: list[tuple[int, int, int, int]] = []
        self.written: list[tuple[str, int, FakeDescriptor]] = []
        self.msvcrt = types.ModuleType("msvcrt")
        self.msvcrt.LK_UNLCK, self.msvcrt.LK_LOCK = 0, 1  # type: ignore[attr-defined]
        self.msvcrt.locking = self.locking  # type: ignore[attr-defined]
        self.win32api = types.ModuleType("win32api")
        self.win32api.GetCurrentProcess = lambda: -1  # type: ignore[attr-defined]
        self.win32api.NameUserPrincipal = 8  # type: ignore[attr-defined]
        self.win32api.error = type("error", (Exception,), {})  # type: ignore[attr-defined]
        self.win32api.GetUserNameEx = self.get_user_name_ex  # type: ignore[attr-defined]
        self.upn: str | None = "helpdesk@corp.example"
        security = types.ModuleType("win32security")
        constants = {
            "TOKEN_QUERY": 8,
            "TokenUser": 1,
            "OWNER_SECURITY_INFORMATION": 1,
            "DACL_SECURITY_INFORMATION": 4,
            "PROTECTED_DACL_SECURITY_INFORMATION": 0x80000000,
            "ACL_REVISION": 2,
            "OBJECT_INHERIT_ACE": 1,
            "CONTAINER_INHERIT_ACE": 2,
        }
        for name, value in constants.items():
            setattr(security, name, value)
        functions = {
            "OpenProcessToken": self.open_process_token,
            "GetTokenInformation": self.get_token_information,
            "ConvertSidToStringSid": lambda sid: sid,
            "ConvertStringSidToSid": lambda sid: sid,
            "GetFileSecurity": self.get_file_security,
            "SetFileSecurity": self.set_file_security,
            "ACL": FakeACL,
            "SECURITY_DESCRIPTOR": FakeDescriptor,
        }
        for name, function in functions.items():
            setattr(security, name, function)
        self.win32security = security

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        self.locks.append((fd, mode, nbytes, os.lseek(fd, 0, os.SEEK_CUR)))

    def get_user_name_ex(self, kind: int) -> str:
        assert kind == 8
        if self.upn is None:
            raise self.win32api.error(1332, "GetUserNameEx", "No mapping")  # type: ignore[attr-defined]
        return self.upn

    def open_process_token(self, process: int, access: int) -> int:
        assert process == -1
        assert access == 8
        return 77

    def get_token_information(self, token: int, kind: int) -> tuple[str, int]:
        assert token == 77
        assert kind == 1
        return ME, 0

    def get_file_security(self, path: str, info: int) -> FakeDescriptor:
        assert info in (1, 4)
        return self.files[path]

    def set_file_security(self, path: str, info: int, descriptor: FakeDescriptor) -> None:
        self.written.append((path, info, descriptor))


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWindows]:
    fake = FakeWindows()
    monkeypatch.setitem(sys.modules, "msvcrt", fake.msvcrt)
    monkeypatch.setitem(sys.modules, "win32api", fake.win32api)
    monkeypatch.setitem(sys.modules, "win32security", fake.win32security)
    monkeypatch.setattr(sys, "platform", "win32")
    module: Any = importlib.reload(importlib.import_module("bitkey_dir.runtime.windows"))
    api = module.RealWindowsAPI()
    monkeypatch.setattr(platform, "_windows_api", lambda: api)
    yield fake
    monkeypatch.undo()
    importlib.reload(importlib.import_module("bitkey_dir.runtime.windows"))


def test_windows_lock_is_one_byte_beyond_any_trail_and_appends_still_land_at_the_end(
    windows: FakeWindows, tmp_path: Path
) -> None:
    path = tmp_path / "trail.jsonl"
    path.write_bytes(b'{"a": 1}\n')
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    try:
        with platform.locked(fd):
            os.write(fd, b'{"b": 2}\n')
    finally:
        os.close(fd)
    assert windows.locks == [(fd, 1, 1, LOCK_OFFSET), (fd, 0, 1, LOCK_OFFSET)]
    assert path.read_bytes() == b'{"a": 1}\n{"b": 2}\n'


def test_windows_lock_is_released_when_the_write_fails(
    windows: FakeWindows, tmp_path: Path
) -> None:
    path = tmp_path / "trail.jsonl"
    path.touch()
    fd = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(OSError, match="full"), platform.locked(fd):
            raise OSError(errno.ENOSPC, "full")
    finally:
        os.close(fd)
    assert [mode for _fd, mode, _n, _at in windows.locks] == [1, 0]


def test_windows_flags_are_binary_and_follow_nothing_posix_only(windows: FakeWindows) -> None:
    flags = platform.os_flags(os.O_RDONLY)
    assert not flags & getattr(os, "O_NOFOLLOW", 0)
    assert not flags & getattr(os, "O_NONBLOCK", 0)
    assert flags & getattr(os, "O_BINARY", 0) == getattr(os, "O_BINARY", 0)


@pytest.mark.skipif(sys.platform == "win32", reason="making a link needs a privilege there")
def test_windows_refuses_a_link_before_opening(windows: FakeWindows, tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError, match="link") as caught:
        platform.open_file(tmp_path / "link", os.O_RDONLY)
    assert caught.value.errno == errno.ELOOP
    os.close(platform.open_file(tmp_path / "real", os.O_RDONLY))


def test_windows_read_at(windows: FakeWindows, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abcdef")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert platform.read_at(fd, 1, 5) == b"f"
    finally:
        os.close(fd)


def test_windows_private_folder_gets_a_protected_dacl_for_me_system_and_admins(
    windows: FakeWindows, tmp_path: Path
) -> None:
    folder = tmp_path / "state"
    windows.files[str(folder)] = FakeDescriptor(owner=ME)
    platform.make_private_folder(folder)
    [(path, info, descriptor)] = windows.written
    assert path == str(folder)
    assert info == 4 | 0x80000000
    assert descriptor.dacl is not None
    assert [(flags, mask, sid) for (_t, flags), mask, sid in descriptor.dacl.aces] == [
        (3, 0x1F01FF, ME),
        (3, 0x1F01FF, SYSTEM),
        (3, 0x1F01FF, ADMINS),
    ]


def test_windows_leaves_the_dacl_of_a_folder_someone_else_owns(
    windows: FakeWindows, tmp_path: Path
) -> None:
    folder = tmp_path / "team"
    folder.mkdir()
    windows.files[str(folder)] = FakeDescriptor(owner=OTHER)
    platform.keep_private(folder)
    assert windows.written == []


@pytest.mark.parametrize(
    ("aces", "refused"),
    [
        ([((0, 0), 0x1F01FF, ME), ((0, 0), 0x1F01FF, SYSTEM), ((0, 0), 0x1F01FF, ADMINS)], False),
        ([((0, 0), 0x1200A9, EVERYONE)], False),  # read and execute only
        ([((0, 0), 0x2, "S-1-5-32-545")], True),  # Users may add files
        ([((0, 0), 0x10000000, "S-1-5-11")], True),  # Authenticated Users: generic all
        ([((0, 0x8), 0x1F01FF, EVERYONE)], False),  # inherit-only: not this folder
        ([((1, 0), 0x1F01FF, EVERYONE)], False),  # an access-denied ACE
        ([((0, 0), 0x1F01FF, OTHER)], False),  # one named colleague: a team's share
    ],
)
def test_windows_who_may_plant_a_file(
    windows: FakeWindows,
    tmp_path: Path,
    aces: list[tuple[tuple[int, int], int, str]],
    refused: bool,
) -> None:
    windows.files[str(tmp_path)] = FakeDescriptor(dacl=FakeACL(aces))
    assert (platform.others_may_plant(tmp_path) is not None) is refused


def test_windows_null_dacl_lets_everybody_write(windows: FakeWindows, tmp_path: Path) -> None:
    windows.files[str(tmp_path)] = FakeDescriptor(dacl=None)
    assert platform.others_may_plant(tmp_path) == "a NULL DACL: everybody may write"


@pytest.mark.parametrize(("owner", "named"), [(ME, False), (ADMINS, False), (OTHER, True)])
def test_windows_owner_of_a_file(
    windows: FakeWindows, tmp_path: Path, owner: str, named: bool
) -> None:
    path = tmp_path / "index.sqlite3"
    path.touch()
    windows.files[str(path)] = FakeDescriptor(owner=owner)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert (platform.owned_by_another(fd, path) == f"the account {owner}") is named
    finally:
        os.close(fd)


def test_windows_user_label_signals_and_no_core_limit(windows: FakeWindows) -> None:
    assert platform.current_user_label() == f"sid:{ME}"
    platform.limit_core_dumps()  # nothing to do, and no resource module needed
    expected = (signal.SIGTERM, *([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else []))
    assert platform.stop_signals() == expected  # SIGBREAK exists on Windows only


def test_windows_decision_is_pure() -> None:
    assert platform.windows_others_may_write([Ace(0, 0, 2, EVERYONE)], ME) is not None
    assert platform.windows_others_may_write([Ace(0, 0, 2, ME)], ME) is None


def test_windows_a_folder_already_private_is_left_as_it_is(
    windows: FakeWindows, tmp_path: Path
) -> None:
    private = FakeACL([((0, 3), 0x1F01FF, ME), ((0, 3), 0x1F01FF, SYSTEM)])
    windows.files[str(tmp_path)] = FakeDescriptor(owner=ME, dacl=private)
    platform.keep_private(tmp_path)
    assert windows.written == []


def test_windows_kerberos_names_the_logged_on_user(windows: FakeWindows) -> None:
    """ldap3 binds through SSPI with the logon's ticket; the trail names that user."""
    from bitkey_dir.sources.ad.connection import kerberos_principal

    assert kerberos_principal() == "helpdesk@corp.example"
    windows.upn = None  # a local account
    assert kerberos_principal() is None
