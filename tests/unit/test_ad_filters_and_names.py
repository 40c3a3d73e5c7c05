"""Filter escaping, GUID bytes, DN parsing and recovery object names: hostile input included."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bitkey_dir.core.model import ComputerName, KeyId
from bitkey_dir.sources.ad.filters import (
    computer_filter,
    escape_filter_value,
    key_id_filter,
    wildcard_filter_value,
)
from bitkey_dir.sources.ad.names import (
    dn_head,
    dn_levels,
    guid_from_bytes,
    key_id_from_bytes,
    leaf_value,
    parent_dn,
    parse_recovery_name,
    rdn_value,
    recovery_created,
    split_dn,
    unescape_dn_value,
)
from bitkey_dir.sources.ad.servers import ServerUrl

# What may follow a backslash in a filter value: exactly two hex digits.
_RAW_SPECIAL = re.compile(r"[*()\x00]|\\(?![0-9a-f]{2})")


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


@given(st.text())
def test_escaped_values_hold_no_filter_syntax(text: str) -> None:
    escaped = escape_filter_value(text)
    assert _RAW_SPECIAL.search(escaped) is None
    # Unescaping gives the original back: nothing was lost or invented.
    assert re.sub(r"\\([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), escaped) == text


@given(st.text())
def test_wildcards_stay_wildcards_and_nothing_else_does(text: str) -> None:
    escaped = wildcard_filter_value(text)
    assert escaped.count("*") == text.count("*")
    assert _RAW_SPECIAL.search(escaped.replace("*", "")) is None


@given(st.text(min_size=1, max_size=255).filter(lambda t: t.strip().strip("*$")))
def test_computer_filters_are_well_formed_for_any_name(text: str) -> None:
    try:
        name = ComputerName.parse(text)
    except Exception:
        return
    built = computer_filter(name)
    assert _balanced(built)
    assert built.startswith("(&(objectCategory=computer)(|")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("PC(01)", r"(cn=PC\2801\29)"),
        ("*)(objectClass=*", r"(cn=*\29\28objectClass=*)"),
        ("a\\b", r"(cn=a\5cb)"),
        ('O"Brien', '(cn=O"Brien)'),
    ],
)
def test_hostile_computer_names_are_escaped(typed: str, expected: str) -> None:
    assert expected in computer_filter(ComputerName.parse(typed))


def test_account_name_gets_its_dollar_unless_the_user_ends_with_a_wildcard() -> None:
    assert "(sAMAccountName=PC-1$)" in computer_filter(ComputerName.parse("PC-1"))
    assert "(sAMAccountName=pc-1$)" in computer_filter(ComputerName.parse("pc-1$"))
    assert "(sAMAccountName=PC-*)" in computer_filter(ComputerName.parse("PC-*"))
    assert "(dNSHostName=PC-1.*)" in computer_filter(ComputerName.parse("PC-1"))
    assert "(dNSHostName=pc-1.corp.example.com)" in computer_filter(
        ComputerName.parse("pc-1.corp.example.com")
    )


def test_full_key_id_filter_uses_the_mixed_endian_bytes() -> None:
    key_id = KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7")
    assert key_id_filter(key_id) == (
        r"(&(objectClass=msFVE-RecoveryInformation)(msFVE-RecoveryGuid="
        r"\e1\a4\3e\06\0c\22\93\42\ba\01\47\54\62\0a\96\e7))"
    )
    assert key_id_filter(KeyId.parse("063ea4e1-220c")) == (
        "(&(objectClass=msFVE-RecoveryInformation)(name=*{063EA4E1-220C*))"
    )


@given(st.uuids())
def test_guid_bytes_round_trip(value: uuid.UUID) -> None:
    assert guid_from_bytes(value.bytes_le) == str(value).upper()


def test_guid_from_bytes_rejects_wrong_lengths() -> None:
    assert guid_from_bytes(b"") is None
    assert guid_from_bytes(b"\x00" * 15) is None


@pytest.mark.parametrize(
    ("name", "offset"),
    [
        ("2005-09-30T17:08:23-08:00{063EA4E1-220C-4293-BA01-4754620A96E7}", -8),
        ("2024-04-05T12:00:00+05:30{063EA4E1-220C-4293-BA01-4754620A96E7}", 5.5),
        ("2023-12-31T23:59:00+00:00{063EA4E1-220C-4293-BA01-4754620A96E7}", 0),
        (
            "2023-12-31T23:59:00+00:00{063EA4E1-220C-4293-BA01-4754620A96E7}\nDEL:"
            "b1f5e2a0-0000-4000-8000-000000000000",
            0,
        ),
    ],
)
def test_recovery_names_keep_their_offset(name: str, offset: float) -> None:
    parsed = parse_recovery_name(name)
    assert parsed.created is not None
    assert parsed.created.utcoffset() == timedelta(hours=offset)
    assert str(parsed.key_id) == "063EA4E1-220C-4293-BA01-4754620A96E7"


@given(st.text())
def test_any_recovery_name_parses_without_error(name: str) -> None:
    parsed = parse_recovery_name(name)
    assert parsed.created is None or parsed.created.utcoffset() is not None


def test_dn_helpers_respect_escapes() -> None:
    dn = r"CN=2024-04-05T12:00:00\+05:30{X},CN=PC\, Lab,OU=Corp,DC=bitkey,DC=test"
    assert split_dn(dn)[:2] == [("CN", "2024-04-05T12:00:00+05:30{X}"), ("CN", "PC, Lab")]
    assert parent_dn(dn) == r"CN=PC\, Lab,OU=Corp,DC=bitkey,DC=test"
    assert unescape_dn_value(r"LT003\0ADEL:1234") == "LT003\nDEL:1234"
    assert unescape_dn_value(r"B\C3\BCro") == "Büro"


@given(st.text())
def test_dn_helpers_never_fail(dn: str) -> None:
    split_dn(dn)
    parent_dn(dn)


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("ldaps://dc1.corp.example.com", ("dc1.corp.example.com", 636, True)),
        ("ldap://dc1:3890", ("dc1", 3890, False)),
        ("LDAPS://127.0.0.10", ("127.0.0.10", 636, True)),
    ],
)
def test_server_urls(url: str, parsed: tuple[str, int, bool]) -> None:
    server = ServerUrl.parse(url)
    assert (server.host, server.port, server.ldaps) == parsed


@pytest.mark.parametrize(
    "url",
    ["http://dc1", "ldaps://", "ldaps://dc1/dc=x", "ldaps://u@dc1", "dc1", "ldaps://dc1:99999"],
)
def test_bad_server_urls(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        ServerUrl.parse(url)


# RFC 4514's grammar for a value as a reference splitter: an escape is a backslash and the one
# character after it (two hex digits are that character and one more plain one).
_REFERENCE_PIECES = {
    separator: re.compile(rf"(?:\\.|\\\Z|[^\\{separator}])*", re.DOTALL) for separator in ",+"
}


def _reference_split(text: str, separator: str = ",") -> list[str]:
    parts, position = [], 0
    while True:
        found = _REFERENCE_PIECES[separator].match(text, position)
        assert found is not None
        parts.append(found.group())
        position = found.end() + 1
        if position > len(text):
            return parts


@given(st.text(alphabet="a=\\,+5C ", max_size=40))
def test_dn_levels_split_only_at_unescaped_commas(dn: str) -> None:
    levels = dn_levels(dn)
    assert levels == _reference_split(dn)
    assert ",".join(levels) == dn


@given(st.text(alphabet="a=\\,+5C ", max_size=40))
def test_dn_head_is_the_first_two_levels_and_the_rest(dn: str) -> None:
    levels = _reference_split(dn)
    assert dn_head(dn) == (levels[0], levels[1] if len(levels) > 1 else None, ",".join(levels[2:]))


@given(st.text(alphabet="a=\\,+5C {}-:0", max_size=40))
def test_the_fast_paths_agree_with_full_unescaping(dn: str) -> None:
    rdn = _reference_split(dn)[0]
    first = _reference_split(rdn, "+")[0]  # the first value of a multi-valued RDN
    assert rdn_value(rdn) == unescape_dn_value(first.partition("=")[2].strip())
    assert leaf_value(dn) == rdn_value(rdn)


@given(st.binary(min_size=16, max_size=16))
def test_guid_bytes_read_as_uuid_reads_them(value: bytes) -> None:
    expected = str(uuid.UUID(bytes_le=value)).upper()
    assert guid_from_bytes(value) == expected
    assert str(key_id_from_bytes(value)) == expected
    assert key_id_from_bytes(value) == KeyId.parse(expected)  # the same as a parsed one
    assert hash(key_id_from_bytes(value)) == hash(KeyId.parse(expected))


_OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_RECOVERY_NAMES = st.one_of(
    st.text(alphabet="0123456789-:T+{}ABCDEFabcdefZ. \nDEL", max_size=60),
    st.builds(
        lambda created, guid, tail: f"{created.isoformat()}{{{str(guid).upper()}}}{tail}",
        st.datetimes(timezones=st.none() | _OFFSETS),
        st.uuids(),
        st.sampled_from(["", "\nDEL:3f2e", "}", "{", " x"]),
    ),
)


@given(_RECOVERY_NAMES)
@example(" 2024-01-01T08:00:00+05:30 {063EA4E1-220C-4293-BA01-4754620A96E7}")
@example("2024-01-01T08:00:00{063EA4E1-220C-4293-BA01-4754620A96E7}")  # no offset: no date
@example("2024-01-01T08:00:00+00:00{063EA4E1-220C-4293-BA01-4754620A96E7}\nDEL:x")
def test_recovery_created_reads_the_date_parse_recovery_name_reads(name: str) -> None:
    assert recovery_created(name) == parse_recovery_name(name).created
