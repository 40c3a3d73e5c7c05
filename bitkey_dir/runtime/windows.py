"""The Windows calls behind :class:`bitkey_dir.runtime.platform.WindowsAPI`: ``msvcrt`` and
pywin32 (a dependency on Windows only). Imported by the platform module on Windows alone;
mypy, run for the win32 platform, checks it against the modules' stubs."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass

FILE_ALL_ACCESS = 0x1F01FF


@dataclass(frozen=True)
class Ace:
    """One entry of a Windows DACL, as far as the checks in the platform module need it."""

    type: int
    flags: int
    mask: int
    sid: str


if sys.platform == "win32":
    import msvcrt

    import win32api
    import win32security

    class RealWindowsAPI:
        def lock(self, fd: int, *, unlock: bool = False) -> None:
            # LK_LOCK tries again each second, ten times, then raises OSError.
            msvcrt.locking(fd, msvcrt.LK_UNLCK if unlock else msvcrt.LK_LOCK, 1)

        def current_user_sid(self) -> str:
            token = win32security.OpenProcessToken(
                win32api.GetCurrentProcess(), win32security.TOKEN_QUERY
            )
            user, _attributes = win32security.GetTokenInformation(token, win32security.TokenUser)
            return win32security.ConvertSidToStringSid(user)

        def user_principal_name(self) -> str | None:
            try:
                return win32api.GetUserNameEx(win32api.NameUserPrincipal)
            except win32api.error:  # a local account has no UPN
                return None

        def owner_sid(self, path: str) -> str:
            descriptor = win32security.GetFileSecurity(
                path, win32security.OWNER_SECURITY_INFORMATION
            )
            return win32security.ConvertSidToStringSid(descriptor.GetSecurityDescriptorOwner())

        def dacl(self, path: str) -> list[Ace] | None:
            descriptor = win32security.GetFileSecurity(
                path, win32security.DACL_SECURITY_INFORMATION
            )
            acl = descriptor.GetSecurityDescriptorDacl()
            if acl is None:
                return None
            aces = []
            for index in range(acl.GetAceCount()):
                (ace_type, flags), mask, sid = acl.GetAce(index)
                aces.append(Ace(ace_type, flags, mask, win32security.ConvertSidToStringSid(sid)))
            return aces

        def protect(self, path: str, sids: Iterable[str]) -> None:
            acl = win32security.ACL()
            inherit = win32security.OBJECT_INHERIT_ACE | win32security.CONTAINER_INHERIT_ACE
            for sid in sids:
                acl.AddAccessAllowedAceEx(
                    win32security.ACL_REVISION,
                    inherit,
                    FILE_ALL_ACCESS,
                    win32security.ConvertStringSidToSid(sid),
                )
            descriptor = win32security.SECURITY_DESCRIPTOR()
            descriptor.SetSecurityDescriptorDacl(True, acl, False)
            win32security.SetFileSecurity(
                path,
                win32security.DACL_SECURITY_INFORMATION
                | win32security.PROTECTED_DACL_SECURITY_INFORMATION,
                descriptor,
            )
