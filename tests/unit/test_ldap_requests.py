"""The requests a simple bind's connection sends, byte for byte against ldap3's encoders.

ldap3 (with pyasn1) is the oracle: what it sends for a filter, a search, a bind, an
extended operation, an unbind or a control, ber.py and filter_compiler.py must send too.
Filters are generated (nested and/or/not, every kind of item, escapes, non-ASCII, binary
values) and taken from every filter the AD source builds; hostile ones must fail with
FilterError, quickly.
"""

from __future__ import annotations

import ast
import string
import time
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from ldap3 import SIMPLE
from ldap3.core.exceptions import LDAPException
from ldap3.operation.bind import bind_operation
from ldap3.operation.extended import extended_operation
from ldap3.operation.search import search_operation
from ldap3.operation.unbind import unbind_operation
from ldap3.protocol.rfc2696 import paged_search_control
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.strategy.base import build_controls_list
from ldap3.utils.asn1 import encode
from pyasn1.type.univ import OctetString  # type: ignore[import-untyped]

from bitkey_dir.core.model import ComputerName, KeyId
from bitkey_dir.sources.ad import ber, filters, forest
from bitkey_dir.sources.ad.ber import PasswordRefused
from bitkey_dir.sources.ad.filter_compiler import MAX_DEPTH, FilterError, compile_filter
from tests.conftest import ROOT

Control = tuple[str, bool, bytes | None]


def _message(message_id: int, kind: str, request: Any, controls: Any = None) -> bytes:
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName(kind, request)
    built = build_controls_list(controls)
    if built is not None:
        message["controls"] = built
    return bytes(encode(message))


def ldap3_search(
    search_filter: str,
    *,
    message_id: int = 7,
    base: str = "DC=bitkey,DC=test",
    scope: str = "SUBTREE",
    attributes: Sequence[str] = ("cn",),
    controls: Sequence[Any] = (),
) -> bytes:
    """What ldap3 sends, with the arguments bitkey-dir's ldap3 path gives it."""
    request = search_operation(
        base, search_filter, scope, "NEVER", list(attributes), 0, 0, False, True, True, None,
        validator=None, check_names=False,
    )  # fmt: skip
    return _message(message_id, "searchRequest", request, list(controls) or None)


def own_search(
    search_filter: str,
    *,
    message_id: int = 7,
    base: str = "DC=bitkey,DC=test",
    scope: str = "SUBTREE",
    attributes: Sequence[str] = ("cn",),
    controls: Sequence[Control] = (),
) -> bytes:
    compiled = compile_filter(search_filter)
    return ber.search_request(message_id, base, scope, compiled, attributes, controls)


# --- generated filters ----------------------------------------------------------------------

SPECIAL = "()*\\\x00"
descriptors = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,12}\Z")
numeric_oids = st.lists(st.integers(0, 2**20), min_size=2, max_size=6).map(
    lambda parts: ".".join(map(str, parts))
)
attributes = st.one_of(
    st.sampled_from(["cn", "objectClass", "msFVE-RecoveryGuid", "sAMAccountName", "name"]),
    descriptors,
    numeric_oids,
    st.tuples(descriptors, st.sampled_from([";binary", ";lang-de"])).map("".join),
)
literal = st.characters(blacklist_characters=SPECIAL, blacklist_categories=("Cs",))
escape = st.tuples(st.integers(0, 255), st.booleans()).map(
    lambda pair: f"\\{pair[0]:02X}" if pair[1] else f"\\{pair[0]:02x}"
)
# ldap3 strips the white space around values (RFC 4515 keeps it): generated values have none.
values = st.lists(st.one_of(literal, literal, escape), max_size=12).map("".join)


def plain(value: str) -> bool:
    return value == value.strip()


@st.composite
def items(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["=", "~=", ">=", "<=", "present", "substrings", "extensible"]))
    attribute = draw(attributes)
    if kind == "present":
        return f"({attribute}=*)"
    if kind == "substrings":
        parts = draw(st.lists(values, min_size=2, max_size=5))
        value = "*".join(parts)
        assume(plain(value) and any(parts))
        return f"({attribute}={value})"
    value = draw(values)
    assume(plain(value))
    if kind != "extensible":
        return f"({attribute}{kind}{value})"
    rule = draw(st.one_of(st.none(), numeric_oids, descriptors.filter(lambda d: d.lower() != "dn")))
    dn = draw(st.booleans())
    named = draw(st.booleans()) or rule is None
    left = (attribute if named else "") + (":dn" if dn else "") + (f":{rule}" if rule else "")
    return f"({left}:={value})"


search_filters = st.recursive(
    items(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4).map(lambda parts: "(&" + "".join(parts) + ")"),
        st.lists(inner, min_size=1, max_size=4).map(lambda parts: "(|" + "".join(parts) + ")"),
        inner.map(lambda part: f"(!{part})"),
    ),
    max_leaves=12,
)


@given(search_filters)
@example("(cn=*)")
@example("(cn=a*)")
@example("(cn=*a)")
@example("(cn=a**b*)")
@example("(cn=\\2a\\28\\29\\5c\\00)")
@example("(cn=Jürgen Ünal 日本)")
@example("(cn:dn:2.5.13.5:=x)")
@example("(:dn:2.5.13.5:=x)")
@example("(:caseExactMatch:=x)")
@example("(cn:DN:=x)")
@example("(cn=tab\there)")
@example("(cn=a=b)")
@example("(cn=" + "x" * 70000 + ")")
def test_filters_encode_as_ldap3_encodes_them(search_filter: str) -> None:
    assert own_search(search_filter) == ldap3_search(search_filter)


def _source_filters() -> set[str]:
    """Every constant in the AD source's modules that is a filter (``(…=…)``)."""
    found = set()
    for path in (ROOT / "bitkey_dir" / "sources" / "ad").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if text.startswith("(") and text.endswith(")") and "=" in text:
                    found.add(text)
    return found


KEY_ID = KeyId.parse("063EA4E1-2B5C-4A7D-9F10-4D8E6C2B1A90")
BUILT = [
    filters.key_id_filter(KEY_ID),
    filters.key_id_filter(KeyId.parse("063EA4E1")),
    *(
        filters.computer_filter(ComputerName.parse(name), deleted=deleted)
        for name in ("WS001", "ws00*", "pc(01)\\*", "*-PC.corp.example", "Jürgen-PC")
        for deleted in (False, True)
    ),
    f"(objectSid={filters.escape_filter_bytes(bytes(range(28)))})",
    f"(&{forest.RECOVERY_OBJECTS}(lastKnownParent="
    + filters.escape_filter_value("CN=LT003\\0ADEL:1f2e,CN=Deleted Objects,DC=bitkey,DC=test")
    + "))",
]


@pytest.mark.parametrize("search_filter", sorted(_source_filters()) + BUILT)
def test_every_filter_the_source_builds_encodes_as_ldap3_encodes_it(search_filter: str) -> None:
    assert own_search(search_filter) == ldap3_search(search_filter)


def test_the_source_has_filters_to_check() -> None:
    assert {"(objectClass=*)", "(objectCategory=computer)"} <= _source_filters()
    assert any(":1.2.840.113556.1.4.803:=" in text for text in _source_filters())


# --- hostile filters ------------------------------------------------------------------------

HOSTILE = [
    "",
    "   ",
    "cn=x",
    "(cn=x",
    "cn=x)",
    "(cn=x))",
    "((cn=x))",
    "(&(cn=x)",
    "(&)",
    "(|)",
    "(!)",
    "(!(cn=x)(cn=y))",
    "()",
    "(=x)",
    "(cn)",
    "(c n=x)",
    "(&(cn=x) (cn=y))",
    "(cn=a(b)",
    "(cn=\\)",
    "(cn=\\4)",
    "(cn=\\zz)",
    "(cn=\\é1)",
    "(cn=x\x00)",
    "(cn>=a*)",
    "(cn~=*)",
    "(cn=**)",
    "(cn:=a*b)",
    "(:=x)",
    "(:dn:=x)",
    "(cn::=x)",
    "(cn:a:b:=x)",
    "(cn:1.2.:=x)",
    "(\x01cn=x)",
    "(cn\x1f=x)",
    "(\u00e9=x)",
    "(cn=\ud800)",
    "(1=x)",
    "(cn;=x)",
    "(" * 100_000,
    ")" * 100_000,
    "(!" * 50_000 + "(cn=x)" + ")" * 50_000,
    "(&" * (MAX_DEPTH + 1) + "(cn=x)" + ")" * (MAX_DEPTH + 1),
    "(cn=" + "\\" * 100_000 + ")",
    "(" + "a" * 100_000,
    "(&" + "(cn=x)" * 20_000 + "(cn=\\q))",
]


@pytest.mark.parametrize("search_filter", HOSTILE, ids=lambda text: repr(text[:30]))
def test_hostile_filters_raise_a_clear_error_quickly(search_filter: str) -> None:
    started = time.perf_counter()
    with pytest.raises(FilterError, match=r"filter") as raised:
        compile_filter(search_filter)
    assert time.perf_counter() - started < 1
    assert len(str(raised.value)) < 200


def test_nesting_up_to_the_limit_compiles_as_ldap3_compiles_it() -> None:
    deep = "(&" * MAX_DEPTH + "(cn=x)" + ")" * MAX_DEPTH
    assert own_search(deep) == ldap3_search(deep)


def test_a_long_flat_filter_compiles_in_linear_time() -> None:
    flat = "(|" + "(cn=PC\\2a-0042)" * 20_000 + ")"
    started = time.perf_counter()
    compiled = compile_filter(flat)
    assert time.perf_counter() - started < 1
    assert own_search(flat) == ldap3_search(flat)
    assert len(compiled) > 20_000 * 10


@pytest.mark.parametrize("char", [chr(c) for c in range(1, 32)] + ["\x7f"])
def test_control_characters_in_values_are_sent_as_they_are(char: str) -> None:
    # RFC 4515 allows them in a value (only NUL must be escaped); ldap3 sends them too.
    value = f"a{char}b"
    assert own_search(f"(cn={value})") == ldap3_search(f"(cn={value})")


# --- searches, controls ---------------------------------------------------------------------

controls = st.lists(
    st.tuples(
        st.sampled_from(["1.2.840.113556.1.4.801", "1.2.840.113556.1.4.417", "1.3.6.1.4.1.42"]),
        st.booleans(),
        st.one_of(st.none(), st.binary(max_size=300)),
    ),
    max_size=3,
)


@given(
    message_id=st.integers(1, 2**31 - 1),
    base=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
    scope=st.sampled_from(["BASE", "LEVEL", "SUBTREE"]),
    wanted=st.lists(attributes, max_size=8),
    extra=controls,
    page_size=st.integers(0, 2**31 - 1),
    cookie=st.binary(max_size=400),
)
def test_search_requests_with_controls_encode_as_ldap3_encodes_them(
    message_id: int,
    base: str,
    scope: str,
    wanted: list[str],
    extra: list[Control],
    page_size: int,
    cookie: bytes,
) -> None:
    search_filter = "(&(objectClass=msFVE-RecoveryInformation)(cn=*))"
    expected = ldap3_search(
        search_filter,
        message_id=message_id,
        base=base,
        scope=scope,
        attributes=wanted or ["1.1"],
        controls=[*extra, paged_search_control(False, page_size, cookie or None)],
    )
    mine = own_search(
        search_filter,
        message_id=message_id,
        base=base,
        scope=scope,
        attributes=wanted or ["1.1"],
        controls=[*extra, ber.paged_results(page_size, cookie)],
    )
    assert mine == expected


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 65535, 65536, 70000])
def test_lengths_take_the_shortest_form_as_pyasn1s(size: int) -> None:
    assert ber.octets(b"x" * size) == bytes(encode(OctetString(b"x" * size)))


# --- bind, extended, unbind ------------------------------------------------------------------


@given(
    message_id=st.integers(1, 2**31 - 1),
    name=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80),
    password=st.text(min_size=1, max_size=60),
)
@example(1, "helpdesk1@bitkey.test", "Corr3ct-Horse!")
@example(2, "BITKEY\\helpdesk1", "pass\u00a0word\u00ad\u2168")  # mapped by SASLprep
@example(3, "u", "\x07bell")  # refused by SASLprep
@example(4, "u", "\u0627\u0031")  # right-to-left text that does not end so
def test_simple_binds_encode_as_ldap3_encodes_them(
    message_id: int, name: str, password: str
) -> None:
    try:
        expected = _message(message_id, "bindRequest", bind_operation(3, SIMPLE, name, password))
    except LDAPException:
        expected = None
    refused: PasswordRefused | None = None
    try:
        mine = ber.bind_request(message_id, name, password)
    except PasswordRefused as exc:
        refused, mine = exc, None
    if refused is None:
        assert mine == expected
        return
    assert password not in str(refused)
    # RFC 4013 6: right-to-left text must also end with a right-to-left character, which
    # ldap3 does not check; anything else refused is refused by both.
    assert expected is None or "right-to-left" in str(refused)


@pytest.mark.parametrize(
    ("oid", "value"),
    [
        ("1.3.6.1.4.1.1466.20037", None),
        ("1.3.6.1.4.1.4203.1.11.3", None),
        ("1.3.6.1.4.1.4203.1.11.1", b"\x30\x00"),
        ("1.2.3", b"x" * 300),
    ],
)
def test_extended_requests_encode_as_ldap3_encodes_them(oid: str, value: bytes | None) -> None:
    expected = _message(5, "extendedReq", extended_operation(oid, value))
    assert ber.extended_request(5, oid, value) == expected


@pytest.mark.parametrize("message_id", [1, 127, 128, 2**31 - 1])
def test_unbind_encodes_as_ldap3_encodes_it(message_id: int) -> None:
    assert ber.unbind_request(message_id) == _message(
        message_id, "unbindRequest", unbind_operation()
    )


def test_printable_ascii_passwords_pass_sasl_prep_unchanged() -> None:
    assert ber.sasl_prep(string.printable.strip()[:90]) == string.printable.strip()[:90]
