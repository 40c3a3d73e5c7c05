"""Bounds on work an input can ask for: wildcard patterns and age headers."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.errors import AuthError
from bitkey_dir.core.model import ComputerName
from bitkey_dir.runtime.encryption import MAX_RECIPIENTS, check_header, uses_passphrase

PATTERN_CHARS = st.sampled_from(list("ab*.-Ää"))
NAME_CHARS = st.sampled_from(list("ab.-ÄäB"))


@given(st.text(PATTERN_CHARS, min_size=1, max_size=12), st.text(NAME_CHARS, max_size=12))
def test_wildcards_match_exactly_what_a_regular_expression_would(pattern: str, name: str) -> None:
    if not pattern.strip("*"):
        return
    parsed = ComputerName.parse(pattern)
    regex = re.compile(".*".join(map(re.escape, parsed.text.split("*"))), re.I | re.S)
    short = "." not in parsed.text
    expected = bool(regex.fullmatch(name)) or (
        short and regex.fullmatch(name.split(".", 1)[0]) is not None
    )
    assert parsed.matches(name) == expected


@pytest.mark.timeout(5)
def test_a_backtracking_pattern_costs_nothing() -> None:
    pattern = ComputerName.parse("*a" * 100 + "*b")
    assert not pattern.matches("a" * 255)


def age_file(*stanzas: str, armored: bool = False) -> bytes:
    body = b"age-encryption.org/v1\n" + "".join(f"-> {s}\n{'A' * 43}\n" for s in stanzas).encode()
    body += b"--- " + b"M" * 43 + b"\n" + b"\x00" * 64
    if not armored:
        return body
    encoded = base64.b64encode(body)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return (
        b"-----BEGIN AGE ENCRYPTED FILE-----\n"
        + b"\n".join(lines)
        + b"\n-----END AGE ENCRYPTED FILE-----\n"
    )


@pytest.mark.parametrize("armored", [False, True])
def test_a_file_to_a_few_recipients_is_tried(armored: bool) -> None:
    check_header(age_file(*(["X25519 " + "k" * 43] * 5), armored=armored))


@pytest.mark.parametrize("armored", [False, True])
def test_a_file_to_more_recipients_than_any_export_is_not_tried(armored: bool) -> None:
    with pytest.raises(AuthError, match="recipients"):
        check_header(age_file(*(["X25519 " + "k" * 43] * (MAX_RECIPIENTS + 1)), armored=armored))


@pytest.mark.parametrize(
    ("work", "allowed"), [("18", True), ("22", True), ("23", False), ("40", False), ("x", False)]
)
def test_a_passphrase_asking_for_too_much_work_is_not_tried(work: str, allowed: bool) -> None:
    data = age_file(f"scrypt {'s' * 22} {work}")
    assert uses_passphrase(data)
    if allowed:
        check_header(data)
    else:
        with pytest.raises(AuthError, match="work factor"):
            check_header(data)


def test_an_armored_passphrase_file_is_known_as_one() -> None:
    assert uses_passphrase(age_file(f"scrypt {'s' * 22} 18", armored=True))
    assert not uses_passphrase(age_file("X25519 " + "k" * 43, armored=True))


def test_a_header_that_never_ends_is_not_tried() -> None:
    with pytest.raises(AuthError, match="does not end"):
        check_header(b"age-encryption.org/v1\n" + b"-> X25519 k\nAAAA\n" * 20_000)
