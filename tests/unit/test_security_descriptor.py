"""Security descriptors (sources/ad/descriptor.py) and what their DACLs grant on recovery
objects (sources/ad/delegation.py): round trips, hostile bytes, and the access check."""

from __future__ import annotations

import contextlib
import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.rights import principal_form
from bitkey_dir.sources.ad.delegation import (
    CONTROL_ACCESS,
    GENERIC_ALL,
    GENERIC_READ,
    KEY_PACKAGE,
    READ_PROPERTY,
    RECOVERY_INFORMATION,
    RECOVERY_PASSWORD,
    Effective,
    class_default,
    evaluate,
    explain,
    helpdesk_aces,
    holders,
    reaching_recovery_objects,
    sddl,
    with_granted,
    with_revoked,
)
from bitkey_dir.sources.ad.descriptor import (
    ACCESS_ALLOWED,
    ACCESS_ALLOWED_OBJECT,
    ACCESS_DENIED,
    ACCESS_DENIED_OBJECT,
    CONTAINER_INHERIT,
    INHERIT_ONLY,
    INHERITED,
    NO_PROPAGATE_INHERIT,
    SE_DACL_PRESENT,
    SE_SELF_RELATIVE,
    Ace,
    Acl,
    DescriptorError,
    SecurityDescriptor,
    Sid,
)
from bitkey_dir.sources.ad.dsacls import shell_quoted

DOMAIN = Sid.parse("S-1-5-21-2679267703-1144114823-3801700133")
HELPDESK = DOMAIN.child(1105)
STAFF = DOMAIN.child(1200)
AUTHENTICATED = Sid.parse("S-1-5-11")
COMPUTER_CLASS = uuid.UUID("bf967a86-0de6-11d0-a285-00aa003049e2")
CI_IO = CONTAINER_INHERIT | INHERIT_ONLY

# -- strategies ---------------------------------------------------------------------------------

sids = st.builds(
    Sid,
    st.integers(0, (1 << 48) - 1),
    st.lists(st.integers(0, (1 << 32) - 1), max_size=15).map(tuple),
)
guids = st.one_of(st.none(), st.uuids())
known_aces = st.builds(
    Ace,
    st.sampled_from([ACCESS_ALLOWED, ACCESS_DENIED, 2]),
    st.integers(0, 255),
    st.integers(0, (1 << 32) - 1),
    sids,
    tail=st.binary(max_size=12).map(lambda b: b[: len(b) - len(b) % 4]),
)
object_aces = st.builds(
    Ace,
    st.sampled_from([ACCESS_ALLOWED_OBJECT, ACCESS_DENIED_OBJECT, 7]),
    st.integers(0, 255),
    st.integers(0, (1 << 32) - 1),
    sids,
    guids,
    guids,
)
opaque_aces = st.builds(
    Ace,
    st.sampled_from([3, 4, 9, 0x11, 0x12, 0x13]),
    st.integers(0, 255),
    tail=st.binary(max_size=40).map(lambda b: b[: len(b) - len(b) % 4]),
)
acls = st.builds(
    Acl, st.lists(st.one_of(known_aces, object_aces, opaque_aces), max_size=8).map(tuple)
)
descriptors = st.builds(
    SecurityDescriptor,
    st.integers(0, 0xFFFF).map(lambda c: c | SE_SELF_RELATIVE),
    st.one_of(st.none(), sids),
    st.one_of(st.none(), sids),
    st.one_of(st.none(), acls),
    st.one_of(st.none(), acls),
)


def normal(descriptor: SecurityDescriptor) -> SecurityDescriptor:
    """What parsing its bytes gives: the present bits say whether each ACL is there."""
    return SecurityDescriptor.parse(descriptor.to_bytes())


@given(descriptors)
def test_a_descriptor_survives_its_bytes(descriptor: SecurityDescriptor) -> None:
    again = normal(descriptor)
    assert (again.owner, again.group) == (descriptor.owner, descriptor.group)
    assert (again.dacl, again.sacl) == (descriptor.dacl, descriptor.sacl)
    assert again.to_bytes() == descriptor.to_bytes()


@given(st.binary(max_size=300))
def test_hostile_bytes_are_a_clean_error(data: bytes) -> None:
    try:
        parsed = SecurityDescriptor.parse(data)
    except DescriptorError:
        return
    assert normal(parsed) == parsed


@given(descriptors, st.integers(0, 400), st.integers(0, 255))
def test_a_damaged_descriptor_is_a_clean_error(
    descriptor: SecurityDescriptor, where: int, value: int
) -> None:
    data = bytearray(descriptor.to_bytes())
    if where < len(data):
        data[where] = value
    for cut in (data, data[: where % (len(data) + 1)]):
        with contextlib.suppress(DescriptorError):
            SecurityDescriptor.parse(bytes(cut))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "of 0 bytes"),
        (struct.pack("<BBHIIII", 2, 0, SE_SELF_RELATIVE, 0, 0, 0, 0), "revision 2"),
        (struct.pack("<BBHIIII", 1, 0, 0, 0, 0, 0, 0), "not self-relative"),
        (struct.pack("<BBHIIII", 1, 0, SE_SELF_RELATIVE | SE_DACL_PRESENT, 0, 0, 0, 9000), "ACL"),
        (struct.pack("<BBHIIII", 1, 0, SE_SELF_RELATIVE, 4, 0, 0, 0), "overlaps"),
        # an ACL that says it holds one ACE of 65532 bytes
        (
            struct.pack("<BBHIIII", 1, 0, SE_SELF_RELATIVE | SE_DACL_PRESENT, 0, 0, 0, 20)
            + struct.pack("<BBHHH", 4, 0, 16, 1, 0)
            + struct.pack("<BBH", 0, 0, 0xFFFC)
            + b"\0" * 4,
            "does not fit",
        ),
    ],
)
def test_what_is_wrong_is_named(data: bytes, reason: str) -> None:
    with pytest.raises(DescriptorError, match=reason):
        SecurityDescriptor.parse(data)


def test_sids_read_and_written_as_windows_does() -> None:
    sid = Sid.parse("S-1-5-21-1-2-3-512")
    assert sid.to_bytes().hex() == "010500000000000515000000010000000200000003000000" + "00020000"
    assert Sid.from_bytes(sid.to_bytes()) == sid
    assert str(Sid.parse("s-1-5-32-544")) == "S-1-5-32-544"
    for text in ("S-1-5-", "S-1", "X-1-5", "S-1-5-99999999999", "S-1-" + "-1" * 16):
        with pytest.raises(DescriptorError):
            Sid.parse(text)


@given(sids)
def test_any_sid_survives_text_and_bytes(sid: Sid) -> None:
    assert Sid.parse(str(sid)) == sid
    assert Sid.from_bytes(sid.to_bytes()) == sid


# -- what a DACL grants ------------------------------------------------------------------------


def dacl_of(*aces: Ace) -> list[Effective]:
    return [*class_default(DOMAIN), *reaching_recovery_objects(aces)]


def test_the_helpdesk_aces_grant_seeing_and_reading_and_nothing_more() -> None:
    effective = dacl_of(*helpdesk_aces(HELPDESK))
    token = {HELPDESK, AUTHENTICATED}
    assert evaluate(effective, token, "see").granted
    verdict = evaluate(effective, token, "password")
    assert verdict.granted
    # Read Property comes from the ACE that shows the objects, Control Access from the other.
    assert [entry.ace.object_type for entry in verdict.granting] == [None, RECOVERY_PASSWORD]
    assert not evaluate(effective, token, "key-package").granted
    with_packages = dacl_of(*helpdesk_aces(HELPDESK, key_packages=True))
    assert evaluate(with_packages, token, "key-package").granted


def test_generic_read_sees_the_objects_but_not_the_confidential_password() -> None:
    effective = dacl_of(Ace(ACCESS_ALLOWED, CONTAINER_INHERIT, GENERIC_READ, AUTHENTICATED))
    assert evaluate(effective, {HELPDESK, AUTHENTICATED}, "see").granted
    verdict = evaluate(effective, {HELPDESK, AUTHENTICATED}, "password")
    assert not verdict.granted
    assert verdict.denying is None  # no Control Access anywhere
    assert "no ACE on the OU gives" in explain(verdict, {}, "CORP\\helpdesk")


def test_a_group_membership_carries_the_right() -> None:
    effective = dacl_of(*helpdesk_aces(STAFF))
    assert not evaluate(effective, {HELPDESK}, "password").granted
    assert evaluate(effective, {HELPDESK, STAFF}, "password").granted
    assert set(holders(effective, "password")) == {STAFF, DOMAIN.child(512), Sid.parse("S-1-5-18")}


def test_a_deny_before_the_grant_wins_and_is_named() -> None:
    deny = Ace(ACCESS_DENIED_OBJECT, CI_IO, CONTROL_ACCESS, STAFF, RECOVERY_PASSWORD)
    effective = dacl_of(deny, *helpdesk_aces(HELPDESK))
    verdict = evaluate(effective, {HELPDESK, STAFF}, "password")
    assert not verdict.granted
    assert verdict.denying is not None
    assert "is denied to it by (OD;CIIO;CR;msFVE-RecoveryPassword;;" in explain(verdict, {}, "x")


def test_aces_that_do_not_reach_the_recovery_objects_give_nothing() -> None:
    full = GENERIC_ALL
    for ace in (
        Ace(ACCESS_ALLOWED, 0, full, HELPDESK),  # the OU itself only
        Ace(ACCESS_ALLOWED, CONTAINER_INHERIT | NO_PROPAGATE_INHERIT, full, HELPDESK),  # children
        Ace(ACCESS_ALLOWED_OBJECT, CI_IO, full, HELPDESK, None, COMPUTER_CLASS),  # computers
    ):
        assert not evaluate(dacl_of(ace), {HELPDESK}, "password").granted, ace
    inherited = Ace(ACCESS_ALLOWED, CONTAINER_INHERIT | INHERITED, full, HELPDESK)
    verdict = evaluate(dacl_of(inherited), {HELPDESK}, "key-package")
    assert verdict.granted
    assert verdict.granting[0].origin == "inherited"


def test_the_class_default_gives_domain_admins_everything() -> None:
    verdict = evaluate(dacl_of(), {DOMAIN.child(512)}, "key-package")
    assert verdict.granted
    assert verdict.granting[0].origin == "class default"


def test_a_property_ace_on_another_attribute_gives_nothing() -> None:
    other = Ace(ACCESS_ALLOWED_OBJECT, CI_IO, READ_PROPERTY | CONTROL_ACCESS, HELPDESK, KEY_PACKAGE)
    assert not evaluate(dacl_of(other), {HELPDESK}, "password").granted
    assert not evaluate(dacl_of(other), {HELPDESK}, "see").granted


def test_grant_then_revoke_gives_back_the_same_dacl() -> None:
    inherited = Ace(ACCESS_ALLOWED, CONTAINER_INHERIT | INHERITED, GENERIC_READ, AUTHENTICATED)
    explicit = Ace(ACCESS_ALLOWED, 0, READ_PROPERTY, STAFF)
    before = (explicit, inherited)
    granted, added = with_granted(before, helpdesk_aces(HELPDESK, key_packages=True))
    assert len(added) == 3
    assert (granted[0], granted[-1]) == (explicit, inherited)  # explicit first, canonical
    again, none = with_granted(granted, helpdesk_aces(HELPDESK))
    assert again == granted
    assert none == []
    revoked, removed = with_revoked(granted, helpdesk_aces(HELPDESK, key_packages=True))
    assert revoked == before
    assert len(removed) == 3
    descriptor = SecurityDescriptor(SE_SELF_RELATIVE, dacl=Acl(before))
    assert descriptor.with_dacl(revoked).to_bytes() == descriptor.to_bytes()


def test_revoke_leaves_inherited_and_other_aces() -> None:
    inherited = Ace(
        ACCESS_ALLOWED_OBJECT,
        CI_IO | INHERITED,
        READ_PROPERTY,
        HELPDESK,
        None,
        RECOVERY_INFORMATION,
    )
    kept, removed = with_revoked((inherited,), helpdesk_aces(HELPDESK))
    assert kept == (inherited,)
    assert removed == []


def test_sddl_names_the_schema_and_the_principal() -> None:
    see, read = helpdesk_aces(HELPDESK)
    assert sddl(see) == f"(OA;CIIO;RP;;msFVE-RecoveryInformation;{HELPDESK})"
    assert sddl(read, {HELPDESK: "CORP\\helpdesk"}) == (
        "(OA;CIIO;RPCR;msFVE-RecoveryPassword;msFVE-RecoveryInformation;CORP\\helpdesk)"
    )


# -- principals and the commands shown -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("helpdesk@corp.example", "upn"),
        ("CORP\\Helpdesk Staff", "down-level"),
        ("BUILTIN\\Administrators", "down-level"),
        ("S-1-5-21-1-2-3-1105", "sid"),
    ],
)
def test_principals_in_the_three_forms(text: str, form: str) -> None:
    assert principal_form(text) == form


@pytest.mark.parametrize(
    "text", ["", "helpdesk", "a@b@c", "@corp", "CORP\\", "A\\B\\C", "TOOLONGNETBIOSNAME\\x", "S-1-"]
)
def test_other_principals_are_bad_input(text: str) -> None:
    with pytest.raises(InputError):
        principal_form(text)


@given(st.text(max_size=40))
def test_a_shell_quoted_name_is_one_literal_argument(text: str) -> None:
    quoted = shell_quoted(text)
    if quoted is None:
        return
    inner = quoted[1:-1]
    assert inner == text
    assert not any(char in inner for char in '"$`%!\u2018\u2019\u201a\u201b\u201c\u201d\u201e')
    assert "\\\\" not in inner
    assert not inner.endswith("\\")
