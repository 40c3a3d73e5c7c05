"""LDAP requests as BER (RFC 4511 section 5.1): bind, search, extended, unbind, controls.

Pure code: what a read-only connection with a simple bind sends (simple_bind.py), encoded
as ldap3 encodes it (definite, minimal lengths; defaulted fields left out), so that a server
sees the same bytes whichever connection asked. Search filters are filter_compiler.py's.
"""

from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Sequence
from typing import Final

Control = tuple[str, bool, bytes | None]  # (OID, criticality, value)

PAGED_RESULTS: Final = "1.2.840.113556.1.4.319"
SCOPES: Final = {"BASE": 0, "LEVEL": 1, "SUBTREE": 2}

_BOOLEAN: Final = 0x01
_INTEGER: Final = 0x02
_OCTETS: Final = 0x04
_ENUMERATED: Final = 0x0A
_SEQUENCE: Final = 0x30
_BIND: Final = 0x60  # [APPLICATION 0]
_UNBIND: Final = 0x42  # [APPLICATION 2], primitive NULL
_SEARCH: Final = 0x63  # [APPLICATION 3]
_EXTENDED: Final = 0x77  # [APPLICATION 23]
_SIMPLE: Final = 0x80  # [0] of AuthenticationChoice
_REQUEST_NAME: Final = 0x80  # [0] of ExtendedRequest
_REQUEST_VALUE: Final = 0x81  # [1]
_CONTROLS: Final = 0xA0  # [0] of LDAPMessage


class PasswordRefused(ValueError):
    """A password that SASLprep (RFC 4013) refuses; the message never holds the password."""


def length(size: int) -> bytes:
    """A definite length in its shortest form (X.690 8.1.3)."""
    if size < 0x80:
        return bytes((size,))
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def element(tag: int, contents: bytes) -> bytes:
    return bytes((tag,)) + length(len(contents)) + contents


def integer(value: int, tag: int = _INTEGER) -> bytes:
    """A two's-complement INTEGER (or ENUMERATED) in as few octets as it takes."""
    size = value.bit_length() // 8 + 1
    return element(tag, value.to_bytes(size, "big", signed=True))


def octets(value: bytes, tag: int = _OCTETS) -> bytes:
    return element(tag, value)


def boolean(value: bool, tag: int = _BOOLEAN) -> bytes:
    return element(tag, b"\xff" if value else b"\x00")


def text(value: str, tag: int = _OCTETS) -> bytes:
    """An LDAPString: UTF-8 (RFC 4511 4.1.2)."""
    return element(tag, value.encode("utf-8"))


def message(message_id: int, operation: bytes, controls: Sequence[Control] = ()) -> bytes:
    """An LDAPMessage: its ID, the operation, and the request controls when there are any."""
    body = integer(message_id) + operation
    if controls:
        body += element(_CONTROLS, b"".join(control(*each) for each in controls))
    return element(_SEQUENCE, body)


def control(oid: str, criticality: bool, value: bytes | None) -> bytes:
    """A Control; criticality FALSE is the default, so it is left out (as ldap3 does)."""
    body = text(oid)
    if criticality:
        body += boolean(True)
    if value is not None:
        body += octets(value)
    return element(_SEQUENCE, body)


def paged_results(size: int, cookie: bytes) -> Control:
    """The paged-results control (RFC 2696), not critical: a page of ``size`` entries."""
    return (PAGED_RESULTS, False, element(_SEQUENCE, integer(size) + octets(cookie)))


def bind_request(message_id: int, name: str, password: str) -> bytes:
    """A simple bind, LDAP v3. The result holds the password: it is only ever sent."""
    body = integer(3) + text(name) + octets(sasl_prep(password).encode("utf-8"), _SIMPLE)
    return message(message_id, element(_BIND, body))


def unbind_request(message_id: int) -> bytes:
    return message(message_id, bytes((_UNBIND, 0)))


def extended_request(message_id: int, oid: str, value: bytes | None = None) -> bytes:
    body = text(oid, _REQUEST_NAME)
    if value is not None:
        body += octets(value, _REQUEST_VALUE)
    return message(message_id, element(_EXTENDED, body))


def search_request(
    message_id: int,
    base: str,
    scope: str,
    compiled_filter: bytes,
    attributes: Sequence[str],
    controls: Sequence[Control] = (),
) -> bytes:
    """A SearchRequest that never dereferences aliases, has no size or time limit and asks
    for values, not only types. ``compiled_filter`` is filter_compiler.compile_filter's."""
    wanted = b"".join(text(name) for name in attributes)
    body = b"".join(
        (
            text(base),
            integer(SCOPES[scope], _ENUMERATED),
            integer(0, _ENUMERATED),  # derefAliases: neverDerefAliases
            integer(0),  # sizeLimit
            integer(0),  # timeLimit
            boolean(False),  # typesOnly
            compiled_filter,
            element(_SEQUENCE, wanted),
        )
    )
    return message(message_id, element(_SEARCH, body), controls)


# StringPrep tables (RFC 3454) SASLprep prohibits (RFC 4013 2.3), each with the words for it.
_PROHIBITED: Final = (
    (stringprep.in_table_c12, "a non-ASCII space"),
    (stringprep.in_table_c21, "an ASCII control character"),
    (stringprep.in_table_c22, "a non-ASCII control character"),
    (stringprep.in_table_c3, "a private-use character"),
    (stringprep.in_table_c4, "a non-character code point"),
    (stringprep.in_table_c5, "a surrogate code point"),
    (stringprep.in_table_c6, "a character inappropriate for plain text"),
    (stringprep.in_table_c7, "a character inappropriate for canonical representation"),
    (stringprep.in_table_c8, "a display-changing or deprecated character"),
    (stringprep.in_table_c9, "a tagging character"),
)


def sasl_prep(password: str) -> str:
    """A simple bind's password prepared by SASLprep (RFC 4013), as ldap3 sends it: non-ASCII
    spaces mapped to a space, soft hyphens and the like dropped, NFKC (Unicode 3.2).

    >>> sasl_prep("I\\u00adX"), sasl_prep("\\u2168")
    ('IX', 'IX')
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in password
        if not stringprep.in_table_b1(char)
    )
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not prepared:
        raise PasswordRefused("the password is empty once prepared (SASLprep, RFC 4013)")
    for char in prepared:
        for table, words in _PROHIBITED:
            if table(char):
                raise PasswordRefused(f"the password holds {words} (SASLprep, RFC 4013)")
    right_to_left = any(stringprep.in_table_d1(char) for char in prepared)
    if right_to_left and (
        any(stringprep.in_table_d2(char) for char in prepared)
        or not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1]))
    ):
        raise PasswordRefused(
            "the password mixes right-to-left and left-to-right text (SASLprep, RFC 4013)"
        )
    return prepared
