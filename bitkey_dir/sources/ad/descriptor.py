"""Windows security descriptors as Active Directory stores them (MS-DTYP 2.4): SIDs, ACEs,
ACLs and the self-relative descriptor of ``nTSecurityDescriptor``. Pure: bytes in, values
out, values in, bytes out.

Bytes from a directory are not trusted: every length and offset is checked against the
buffer, and anything that does not add up raises :class:`DescriptorError` (a ValueError)
with a short reason, never IndexError or struct.error. ACE types this module does not know
(callback, label, resource ACEs) are kept as opaque bytes, so a DACL read and written back
loses nothing. :meth:`SecurityDescriptor.to_bytes` writes the canonical layout (SACL, DACL,
owner, group, each aligned): ``parse(sd.to_bytes()) == sd`` for every descriptor.
"""

from __future__ import annotations

import re
import struct
import uuid
from dataclasses import dataclass, field, replace
from typing import Final

# ACE types (MS-DTYP 2.4.4.1) that carry a mask and a SID, and those with object GUIDs.
ACCESS_ALLOWED: Final = 0x00
ACCESS_DENIED: Final = 0x01
SYSTEM_AUDIT: Final = 0x02
ACCESS_ALLOWED_OBJECT: Final = 0x05
ACCESS_DENIED_OBJECT: Final = 0x06
SYSTEM_AUDIT_OBJECT: Final = 0x07
_PLAIN_TYPES: Final = frozenset({ACCESS_ALLOWED, ACCESS_DENIED, SYSTEM_AUDIT})
_OBJECT_TYPES: Final = frozenset({ACCESS_ALLOWED_OBJECT, ACCESS_DENIED_OBJECT, SYSTEM_AUDIT_OBJECT})

# ACE flags.
OBJECT_INHERIT: Final = 0x01
CONTAINER_INHERIT: Final = 0x02
NO_PROPAGATE_INHERIT: Final = 0x04
INHERIT_ONLY: Final = 0x08
INHERITED: Final = 0x10

# The object ACE's flags saying which GUIDs follow.
_OBJECT_TYPE_PRESENT: Final = 0x1
_INHERITED_OBJECT_TYPE_PRESENT: Final = 0x2

# Descriptor control bits.
SE_DACL_PRESENT: Final = 0x0004
SE_SACL_PRESENT: Final = 0x0010
SE_SELF_RELATIVE: Final = 0x8000

ACL_REVISION_DS: Final = 4
_HEADER: Final = struct.Struct("<BBHIIII")
_ACL_HEADER: Final = struct.Struct("<BBHHH")
_MAX_SUB_AUTHORITIES: Final = 15
_SID_TEXT: Final = re.compile(r"S-1-(\d+)((?:-\d+){0,15})", re.IGNORECASE)


class DescriptorError(ValueError):
    """Bytes or text that are not a security descriptor, an ACL, an ACE or a SID."""


# -- SIDs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Sid:
    """A security identifier: ``S-1-5-21-…-1105``.

    >>> str(Sid.parse("s-1-5-32-544")), Sid.parse("S-1-5-11").to_bytes().hex()
    ('S-1-5-32-544', '01010000000000050b000000')
    """

    authority: int
    subs: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Sid:
        found = _SID_TEXT.fullmatch(text.strip())
        if found is None:
            raise DescriptorError(f"not a SID: {text[:80]!r}")
        authority = int(found.group(1))
        subs = tuple(int(part) for part in found.group(2).split("-")[1:])
        if authority >= 1 << 48 or any(sub >= 1 << 32 for sub in subs):
            raise DescriptorError(f"a SID part out of range: {text[:80]!r}")
        return cls(authority, subs)

    @classmethod
    def read(cls, data: bytes, pos: int, end: int | None = None) -> tuple[Sid, int]:
        """The SID at ``pos`` and where it ends; nothing past ``end`` is read."""
        end = len(data) if end is None else min(end, len(data))
        if pos < 0 or pos + 8 > end:
            raise DescriptorError("a SID runs past its buffer")
        revision, count = data[pos], data[pos + 1]
        if revision != 1:
            raise DescriptorError(f"a SID of revision {revision}")
        if count > _MAX_SUB_AUTHORITIES:
            raise DescriptorError(f"a SID with {count} sub-authorities")
        stop = pos + 8 + 4 * count
        if stop > end:
            raise DescriptorError("a SID runs past its buffer")
        authority = int.from_bytes(data[pos + 2 : pos + 8], "big")
        subs = struct.unpack_from(f"<{count}I", data, pos + 8)
        return cls(authority, tuple(subs)), stop

    @classmethod
    def from_bytes(cls, data: bytes) -> Sid:
        sid, stop = cls.read(data, 0)
        if stop != len(data):
            raise DescriptorError("bytes left after a SID")
        return sid

    def to_bytes(self) -> bytes:
        return (
            bytes([1, len(self.subs)])
            + self.authority.to_bytes(6, "big")
            + struct.pack(f"<{len(self.subs)}I", *self.subs)
        )

    def __str__(self) -> str:
        return "-".join(["S-1", str(self.authority), *map(str, self.subs)])

    def child(self, rid: int) -> Sid:
        """The SID of a domain's account: the domain SID and a relative ID."""
        return Sid(self.authority, (*self.subs, rid))


# -- ACEs and ACLs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ace:
    """One access control entry. For the types this module knows, ``mask``, ``sid`` and the
    object GUIDs are read, and ``tail`` holds what follows the SID (a callback ACE's
    application data, or padding); any other type keeps its body whole in ``tail``."""

    type: int
    flags: int
    mask: int = 0
    sid: Sid | None = None
    object_type: uuid.UUID | None = None
    inherited_object_type: uuid.UUID | None = None
    tail: bytes = field(default=b"", repr=False)

    @property
    def known(self) -> bool:
        return self.type in _PLAIN_TYPES or self.type in _OBJECT_TYPES

    @property
    def allows(self) -> bool:
        return self.type in (ACCESS_ALLOWED, ACCESS_ALLOWED_OBJECT)

    @property
    def denies(self) -> bool:
        return self.type in (ACCESS_DENIED, ACCESS_DENIED_OBJECT)

    @property
    def inherited(self) -> bool:
        return bool(self.flags & INHERITED)

    @classmethod
    def read(cls, data: bytes, pos: int, end: int) -> tuple[Ace, int]:
        if pos + 4 > end:
            raise DescriptorError("an ACE runs past its ACL")
        kind, flags, size = struct.unpack_from("<BBH", data, pos)
        if size < 4 or size % 4 or pos + size > end:
            raise DescriptorError(f"an ACE of {size} bytes does not fit its ACL")
        stop = pos + size
        if kind not in _PLAIN_TYPES and kind not in _OBJECT_TYPES:
            return cls(kind, flags, tail=bytes(data[pos + 4 : stop])), stop
        if pos + 8 > stop:
            raise DescriptorError("an ACE too short for its mask")
        (mask,) = struct.unpack_from("<I", data, pos + 4)
        at = pos + 8
        object_type = inherited_type = None
        if kind in _OBJECT_TYPES:
            if at + 4 > stop:
                raise DescriptorError("an object ACE too short for its flags")
            (present,) = struct.unpack_from("<I", data, at)
            at += 4
            if present & ~(_OBJECT_TYPE_PRESENT | _INHERITED_OBJECT_TYPE_PRESENT):
                raise DescriptorError(f"an object ACE with flags {present:#x}")
            for bit in (_OBJECT_TYPE_PRESENT, _INHERITED_OBJECT_TYPE_PRESENT):
                if present & bit:
                    if at + 16 > stop:
                        raise DescriptorError("an object ACE's GUID runs past it")
                    guid = uuid.UUID(bytes_le=bytes(data[at : at + 16]))
                    at += 16
                    if bit == _OBJECT_TYPE_PRESENT:
                        object_type = guid
                    else:
                        inherited_type = guid
        sid, at = Sid.read(data, at, stop)
        ace = cls(kind, flags, mask, sid, object_type, inherited_type, bytes(data[at:stop]))
        return ace, stop

    def to_bytes(self) -> bytes:
        if not self.known:
            body = self.tail
        else:
            if self.sid is None:
                raise DescriptorError(f"an ACE of type {self.type} without a SID")
            body = struct.pack("<I", self.mask & 0xFFFFFFFF)
            if self.type in _OBJECT_TYPES:
                present = (_OBJECT_TYPE_PRESENT if self.object_type else 0) | (
                    _INHERITED_OBJECT_TYPE_PRESENT if self.inherited_object_type else 0
                )
                body += struct.pack("<I", present)
                body += self.object_type.bytes_le if self.object_type else b""
                body += self.inherited_object_type.bytes_le if self.inherited_object_type else b""
            elif self.object_type or self.inherited_object_type:
                raise DescriptorError("object GUIDs on an ACE type without them")
            body += self.sid.to_bytes() + self.tail
        size = 4 + len(body)
        if size % 4:
            raise DescriptorError("an ACE whose size is not a multiple of 4")
        if size > 0xFFFF:
            raise DescriptorError("an ACE of more than 65535 bytes")
        return struct.pack("<BBH", self.type, self.flags, size) + body

    def same_grant(self, other: Ace) -> bool:
        """The same entry apart from being inherited: what a revoke looks for."""
        return replace(self, flags=self.flags & ~INHERITED) == replace(
            other, flags=other.flags & ~INHERITED
        )


@dataclass(frozen=True, slots=True)
class Acl:
    """An access control list: its revision and its ACEs, in order."""

    aces: tuple[Ace, ...] = ()
    revision: int = ACL_REVISION_DS

    @classmethod
    def read(cls, data: bytes, pos: int) -> Acl:
        if pos < 0 or pos + 8 > len(data):
            raise DescriptorError("an ACL runs past the descriptor")
        revision, _, size, count, _ = _ACL_HEADER.unpack_from(data, pos)
        if revision not in (2, 4):
            raise DescriptorError(f"an ACL of revision {revision}")
        if size < 8 or pos + size > len(data):
            raise DescriptorError(f"an ACL of {size} bytes does not fit the descriptor")
        end, at, aces = pos + size, pos + 8, []
        for _ in range(count):
            ace, at = Ace.read(data, at, end)
            aces.append(ace)
        return cls(tuple(aces), revision)

    def to_bytes(self) -> bytes:
        body = b"".join(ace.to_bytes() for ace in self.aces)
        if 8 + len(body) > 0xFFFF or len(self.aces) > 0xFFFF:
            raise DescriptorError("an ACL of more than 65535 bytes")
        return _ACL_HEADER.pack(self.revision, 0, 8 + len(body), len(self.aces), 0) + body


# -- the descriptor ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecurityDescriptor:
    """A self-relative security descriptor. ``dacl`` None means no DACL was given (as when
    the SD-flags control asked for the owner only), not an empty one."""

    control: int = SE_SELF_RELATIVE
    owner: Sid | None = None
    group: Sid | None = None
    sacl: Acl | None = None
    dacl: Acl | None = None

    @classmethod
    def parse(cls, data: bytes) -> SecurityDescriptor:
        if len(data) < _HEADER.size:
            raise DescriptorError(f"a security descriptor of {len(data)} bytes")
        revision, _, control, owner_at, group_at, sacl_at, dacl_at = _HEADER.unpack_from(data)
        if revision != 1:
            raise DescriptorError(f"a security descriptor of revision {revision}")
        if not control & SE_SELF_RELATIVE:
            raise DescriptorError("a security descriptor that is not self-relative")
        for offset in (owner_at, group_at, sacl_at, dacl_at):
            if offset and offset < _HEADER.size:
                raise DescriptorError("a security descriptor's part overlaps its header")
        owner = Sid.read(data, owner_at)[0] if owner_at else None
        group = Sid.read(data, group_at)[0] if group_at else None
        sacl = Acl.read(data, sacl_at) if control & SE_SACL_PRESENT and sacl_at else None
        dacl = Acl.read(data, dacl_at) if control & SE_DACL_PRESENT and dacl_at else None
        return cls(control, owner, group, sacl, dacl)

    def to_bytes(self) -> bytes:
        control = self.control | SE_SELF_RELATIVE
        control = (control & ~SE_SACL_PRESENT) | (SE_SACL_PRESENT if self.sacl else 0)
        control = (control & ~SE_DACL_PRESENT) | (SE_DACL_PRESENT if self.dacl else 0)
        parts = [
            self.sacl.to_bytes() if self.sacl else b"",
            self.dacl.to_bytes() if self.dacl else b"",
            self.owner.to_bytes() if self.owner else b"",
            self.group.to_bytes() if self.group else b"",
        ]
        offsets, body, at = [], b"", _HEADER.size
        for part in parts:
            offsets.append(at if part else 0)
            body += part
            at += len(part)
        sacl_at, dacl_at, owner_at, group_at = offsets
        return _HEADER.pack(1, 0, control, owner_at, group_at, sacl_at, dacl_at) + body

    def with_dacl(self, aces: tuple[Ace, ...]) -> SecurityDescriptor:
        """This descriptor, its DACL holding ``aces`` (its revision kept)."""
        revision = self.dacl.revision if self.dacl else ACL_REVISION_DS
        return replace(self, dacl=Acl(aces, revision))
