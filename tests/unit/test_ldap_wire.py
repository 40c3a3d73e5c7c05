"""The search reply decoder against replies encoded by ldap3's own ASN.1 classes and pyasn1.

Every well-formed reply here comes from an encoder the decoder does not share (pyasn1's BER
encoder over ldap3's RFC 4511 classes), and where handy ldap3's fast decoder reads the same
bytes as a second opinion. Malformed replies are either cut from those encodings or written by
hand, where no conforming encoder would produce them.
"""

from __future__ import annotations

import contextlib
import string
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ldap3.protocol.controls import build_control
from ldap3.protocol.rfc2696 import paged_search_control
from ldap3.protocol.rfc4511 import (
    LDAPDN,
    URI,
    AttributeDescription,
    AttributeValue,
    BindResponse,
    Controls,
    ExtendedResponse,
    LDAPMessage,
    LDAPString,
    MessageID,
    PartialAttribute,
    PartialAttributeList,
    ProtocolOp,
    ResponseName,
    ResultCode,
    SearchResultDone,
    SearchResultEntry,
    SearchResultReference,
    Vals,
)
from ldap3.strategy.base import BaseStrategy
from ldap3.utils.asn1 import decode_message_fast
from pyasn1.codec.ber import encoder  # type: ignore[import-untyped]
from pyasn1.codec.cer import encoder as cer_encoder  # type: ignore[import-untyped]

from bitkey_dir.sources.ad.wire import (
    PAGED_RESULTS,
    Entry,
    Replies,
    SearchFailed,
    WireError,
    decode_controls,
    decode_done,
    decode_entry,
    decode_message,
    message_end,
    paged_cookie,
    read_page,
)

Attributes = list[tuple[str, list[bytes]]]

SEARCH_ENTRY = 0x64
SEARCH_DONE = 0x65
NOTICE_OF_DISCONNECTION = "1.3.6.1.4.1.1466.20036"
SORT_RESPONSE = "1.2.840.113556.1.4.474"

# --- replies, encoded by pyasn1 -------------------------------------------------------------


def _message(message_id: int, operation: str, body: Any, controls: Sequence[Any] = ()) -> bytes:
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    choice = ProtocolOp()
    choice[operation] = body
    message["protocolOp"] = choice
    if controls:
        wrapped = Controls()
        for position, control in enumerate(controls):
            wrapped.setComponentByPosition(position, control)
        message["controls"] = wrapped
    return bytes(encoder.encode(message))


def _entry(message_id: int, dn: str, attributes: Attributes) -> bytes:
    entry = SearchResultEntry()
    entry["object"] = LDAPDN(dn)
    listed = PartialAttributeList()
    for position, (name, values) in enumerate(attributes):
        attribute = PartialAttribute()
        attribute["type"] = AttributeDescription(name)
        vals = Vals()
        for index, value in enumerate(values):
            vals.setComponentByPosition(index, AttributeValue(value))
        attribute["vals"] = vals
        listed.setComponentByPosition(position, attribute)
    entry["attributes"] = listed
    return _message(message_id, "searchResEntry", entry)


def _result(kind: Any, code: int, message: str, matched: str = "") -> Any:
    result = kind()
    result["resultCode"] = ResultCode(code)
    result["matchedDN"] = LDAPDN(matched)
    result["diagnosticMessage"] = LDAPString(message)
    return result


def _done(
    message_id: int,
    code: int = 0,
    message: str = "",
    controls: Sequence[Any] = (),
    matched: str = "",
) -> bytes:
    return _message(
        message_id, "searchResDone", _result(SearchResultDone, code, message, matched), controls
    )


def _paged(cookie: bytes, size: int = 0) -> Any:
    return paged_search_control(False, size, cookie or None)


def _reference(message_id: int, *uris: str) -> bytes:
    reference = SearchResultReference()
    for position, uri in enumerate(uris):
        reference.setComponentByPosition(position, URI(uri))
    return _message(message_id, "searchResRef", reference)


def _notice(message: str, code: int = 52) -> bytes:
    notice = _result(ExtendedResponse, code, message)
    notice["responseName"] = ResponseName(NOTICE_OF_DISCONNECTION)
    return _message(0, "extendedResp", notice)


def _merged(attributes: Attributes) -> dict[str, list[bytes]]:
    merged: dict[str, list[bytes]] = {}
    for name, values in attributes:
        merged.setdefault(name.lower(), []).extend(values)
    return merged


def _decoded_entry(data: bytes) -> tuple[int, Entry]:
    message_id, tag, start, stop, end = decode_message(data)
    assert tag == SEARCH_ENTRY
    assert (stop, end) == (len(data), len(data))
    return message_id, decode_entry(data, start, stop)


def _controls_of(data: bytes) -> dict[str, bytes]:
    _, _, _, stop, end = decode_message(data)
    assert data[stop] == 0xA0
    first = data[stop + 1]
    start = stop + 2 + (first & 0x7F if first & 0x80 else 0)
    return decode_controls(data, start, end)


def _ldap3_entry(data: bytes) -> tuple[int, str, Attributes]:
    """What ldap3's own fast decoder finds in a SearchResultEntry message."""
    message = decode_message_fast(data)
    assert message["protocolOp"] == 4
    dn, attributes = message["payload"]
    return (
        message["messageID"],
        bytes(dn[3]).decode("utf-8"),
        [
            (bytes(name[3]).decode("ascii"), [bytes(value[3]) for value in vals[3]])
            for name, vals in (attribute[3] for attribute in attributes[3])
        ],
    )


def _four_byte_lengths(data: bytes) -> bytes:
    """The same elements, each length in the four-byte long form Active Directory sends."""
    framed = bytearray()
    pos = 0
    while pos < len(data):
        tag, first = data[pos], data[pos + 1]
        pos += 2
        length = first
        if first & 0x80:
            length = int.from_bytes(data[pos : pos + (first & 0x7F)], "big")
            pos += first & 0x7F
        contents = data[pos : pos + length]
        pos += length
        if tag & 0x20:
            contents = _four_byte_lengths(contents)
        framed += bytes([tag, 0x84]) + len(contents).to_bytes(4, "big") + contents
    return bytes(framed)


def _tlv(tag: int, *parts: bytes) -> bytes:
    """A short-form element, for malformed replies that no real encoder would produce."""
    contents = b"".join(parts)
    assert len(contents) < 0x80
    return bytes([tag, len(contents)]) + contents


# --- strategies -----------------------------------------------------------------------------

_names = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=24)
_values = st.lists(st.binary(max_size=300), max_size=5)
_attributes = st.lists(st.tuples(_names, _values), max_size=6)
_small_attributes = st.lists(
    st.tuples(_names, st.lists(st.binary(max_size=20), max_size=3)), max_size=3
)
_message_ids = st.integers(1, 2**31 - 1)


# --- entries --------------------------------------------------------------------------------


@given(dn=st.text(), attributes=_attributes, message_id=_message_ids)
@example(dn="CN=Büro 😀 \U0010fffd,DC=x", attributes=[], message_id=1)
@example(dn="", attributes=[("member", [b""]), ("Member", [b"a"]), ("MEMBER", [])], message_id=1)
def test_entries_round_trip(dn: str, attributes: Attributes, message_id: int) -> None:
    data = _entry(message_id, dn, attributes)
    assert _decoded_entry(data) == (message_id, (dn, _merged(attributes)))
    # ldap3 reads the same bytes the same way: the encoding is what the test meant to send.
    ldap3_id, ldap3_dn, ldap3_attributes = _ldap3_entry(data)
    assert (ldap3_id, ldap3_dn, _merged(ldap3_attributes)) == (message_id, dn, _merged(attributes))


@given(dn=st.text(max_size=40), attributes=_small_attributes, message_id=_message_ids)
def test_active_directory_four_byte_lengths_decode_the_same(
    dn: str, attributes: Attributes, message_id: int
) -> None:
    data = _four_byte_lengths(_entry(message_id, dn, attributes))
    assert data[1] == 0x84
    assert _decoded_entry(data) == (message_id, (dn, _merged(attributes)))
    assert _ldap3_entry(data)[1] == dn


def test_an_entry_without_attributes() -> None:
    data = _entry(5, "CN=PC1,OU=Computers,DC=bitkey,DC=test", [])
    assert _decoded_entry(data) == (5, ("CN=PC1,OU=Computers,DC=bitkey,DC=test", {}))


def test_repeated_attribute_names_merge_in_order_whatever_their_case() -> None:
    data = _entry(
        2,
        "CN=x",
        [
            ("msFVE-RecoveryPassword", [b"1", b"2"]),
            ("name", [b"n"]),
            ("MSFVE-RECOVERYPASSWORD", [b"3"]),
            ("msfve-recoverypassword", []),
            ("msFVE-recoveryPassword", [b"", b"4"]),
        ],
    )
    assert _decoded_entry(data)[1][1] == {
        "msfve-recoverypassword": [b"1", b"2", b"3", b"", b"4"],
        "name": [b"n"],
    }


@pytest.mark.parametrize(
    "size",
    [0, 1, 127, 128, 255, 256, 65535, 65536, 70000, 1 << 24],
    ids=lambda size: f"{size}B",
)
def test_values_of_every_length_form(size: int) -> None:
    # 128 and up need a two-byte length, 65536 and up three, 16 MiB four (and so does the
    # message holding it).
    value = bytes(range(256)) * (size // 256) + bytes(size % 256)
    data = _entry(9, "CN=big", [("objectGUID", [b"\x00"]), ("msFVE-KeyPackage", [value, b"z"])])
    assert _decoded_entry(data) == (
        9,
        ("CN=big", {"objectguid": [b"\x00"], "msfve-keypackage": [value, b"z"]}),
    )


def test_a_long_dn_and_many_attributes() -> None:
    dn = "CN=" + "é" * 40_000 + ",DC=test"
    attributes = [(f"attr{n}", [n.to_bytes(2, "big")] * (n % 4)) for n in range(3000)]
    data = _entry(1, dn, attributes)
    assert data[1] == 0x83  # a three-byte message length
    assert _decoded_entry(data) == (1, (dn, _merged(attributes)))


# --- SearchResultDone and its controls ------------------------------------------------------


@pytest.mark.parametrize("code", [0, 32, 50, 127, 128, 255, 256, 4096, 65536, 2**31 - 1])
@pytest.mark.parametrize(
    "message",
    [
        "",
        "ok",
        "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT)",
        "Zugriff verweigert ✗ 😀",
    ],
)
def test_search_done_without_controls(code: int, message: str) -> None:
    data = _done(12, code, message, matched="DC=bitkey,DC=test")
    message_id, tag, start, stop, end = decode_message(data)
    assert (message_id, tag, stop, end) == (12, SEARCH_DONE, len(data), len(data))
    assert decode_done(data, start, stop) == (code, message)
    payload = decode_message_fast(data)["payload"]
    assert (int(payload[0][3]), bytes(payload[2][3]).decode()) == (code, message)


@given(
    cookie=st.binary(max_size=600),
    size=st.integers(0, 2**31 - 1),
    code=st.sampled_from([0, 4, 32, 50]),
    message=st.text(max_size=100),
)
@example(cookie=b"", size=0, code=0, message="")
def test_search_done_with_a_paged_cookie(cookie: bytes, size: int, code: int, message: str) -> None:
    data = _done(3, code, message, [_paged(cookie, size)])
    _, tag, start, stop, end = decode_message(data)
    assert tag == SEARCH_DONE
    assert decode_done(data, start, stop) == (code, message)
    assert stop < end == len(data)
    controls = _controls_of(data)
    assert list(controls) == [PAGED_RESULTS]
    assert paged_cookie(controls[PAGED_RESULTS]) == cookie
    # ldap3's reading of the same control.
    (control,) = decode_message_fast(data)["controls"]
    _, decoded = BaseStrategy.decode_control_fast(control[3])
    assert decoded["value"] == {"size": size, "cookie": cookie}


def test_several_controls_with_and_without_criticality_and_value() -> None:
    data = _done(
        4,
        controls=[
            build_control(SORT_RESPONSE, True, b"\x30\x03\x0a\x01\x00", encode_control_value=False),
            build_control("1.2.3.4", True, None),
            build_control("1.2.3.5", False, None),
            _paged(b"\x00next\xff", 500),
        ],
    )
    controls = _controls_of(data)
    assert controls == {
        SORT_RESPONSE: b"\x30\x03\x0a\x01\x00",
        "1.2.3.4": b"",
        "1.2.3.5": b"",
        PAGED_RESULTS: controls[PAGED_RESULTS],
    }
    assert paged_cookie(controls[PAGED_RESULTS]) == b"\x00next\xff"


def test_a_control_list_with_four_byte_lengths() -> None:
    data = _four_byte_lengths(_done(4, 0, "", [_paged(b"c" * 300, 7)]))
    _, _, start, stop, end = decode_message(data)
    assert decode_done(data, start, stop) == (0, "")
    assert data[stop : stop + 2] == b"\xa0\x84"
    controls = decode_controls(data, stop + 6, end)
    assert paged_cookie(controls[PAGED_RESULTS]) == b"c" * 300


def test_empty_paged_cookie_is_empty_bytes() -> None:
    assert paged_cookie(_controls_of(_done(1, 0, "", [_paged(b"")]))[PAGED_RESULTS]) == b""


# --- malformed replies ----------------------------------------------------------------------


def _decode_everything(data: bytes) -> None:
    """Every decoder, over every extent a caller could hand it: only WireError may escape."""
    extents = [(0, len(data))]
    with contextlib.suppress(WireError):
        _, _, start, stop, end = decode_message(data)
        extents += [(start, stop), (stop, end)]
    for start, stop in extents:
        for decode in (decode_entry, decode_done, decode_controls):
            with contextlib.suppress(WireError):
                decode(data, start, stop)
        with contextlib.suppress(WireError):
            paged_cookie(data[start:stop])
    with contextlib.suppress(WireError, SearchFailed):
        _drain(_Strategy([data]), 1)


def _cuts(length: int) -> Iterator[int]:
    """Every cut near either end of a message, and a sample of those in between."""
    edge = 80
    if length <= 3 * edge:
        yield from range(length)
        return
    yield from range(edge)
    yield from range(edge, length - edge, 997)
    yield from range(length - edge, length)


@given(dn=st.text(max_size=30), attributes=_small_attributes, message_id=_message_ids)
def test_every_truncated_entry_is_a_wire_error(
    dn: str, attributes: Attributes, message_id: int
) -> None:
    data = _entry(message_id, dn, attributes)
    for cut in range(len(data)):
        with pytest.raises(WireError):
            decode_message(data[:cut])
        _decode_everything(data[:cut])
    # The entry's own contents cut short inside a message that still claims them all.
    _, _, start, stop, _ = decode_message(data)
    for cut in range(start, stop):
        with contextlib.suppress(WireError):
            decode_entry(data[:cut], start, cut)


@pytest.mark.parametrize("size", [200, 70000])
def test_truncated_entries_with_long_lengths(size: int) -> None:
    for data in (
        _entry(1, "CN=x", [("a", [b"v" * size, b""])]),
        _four_byte_lengths(_entry(1, "CN=x", [("a", [b"v" * size])])),
    ):
        for cut in _cuts(len(data)):
            with pytest.raises(WireError):
                decode_message(data[:cut])
            _decode_everything(data[:cut])


@given(cookie=st.binary(max_size=40), message=st.text(max_size=20))
def test_every_truncated_done_is_a_wire_error(cookie: bytes, message: str) -> None:
    data = _done(2, 50, message, [_paged(cookie)])
    for cut in range(len(data)):
        with pytest.raises(WireError):
            decode_message(data[:cut])
        _decode_everything(data[:cut])


@given(st.binary(max_size=200))
@example(b"")
@example(b"\x30")
@example(b"\x30\x00")
@example(b"\x30\x03\x02\x01\x01")
@example(b"\x30\x84\xff\xff\xff\xff")
@example(b"\x30\x05\x02\x01\x01\x64\x00")
@example(b"\x30\x07\x02\x01\x00\x78\x02\x0a\x00")
def test_arbitrary_bytes_raise_only_wire_errors(data: bytes) -> None:
    _decode_everything(data)


@given(
    st.sampled_from(
        [
            _entry(7, "CN=PC,DC=x", [("cn", [b"PC"]), ("objectGUID", [b"\x01" * 16])]),
            _four_byte_lengths(_entry(7, "CN=PC", [("cn", [b"PC", b"pc"])])),
            _done(7, 0, "", [_paged(b"cookie", 3), build_control("1.2.3", True, None)]),
            _done(7, 50, "denied"),
            _notice("bye"),
            _reference(7, "ldap://dc2/DC=x"),
        ]
    ),
    st.data(),
)
def test_corrupted_replies_raise_only_wire_errors(data: bytes, draw: st.DataObject) -> None:
    # Random bytes rarely get past the first tag; a corrupted real reply reaches every branch.
    corrupted = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 3))):
        position = draw.draw(st.integers(0, len(corrupted) - 1))
        action = draw.draw(st.sampled_from(["replace", "delete", "insert"]))
        byte = draw.draw(st.integers(0, 255))
        if action == "replace":
            corrupted[position] = byte
        elif action == "delete":
            del corrupted[position]
        else:
            corrupted.insert(position, byte)
    _decode_everything(bytes(corrupted))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x30\x80\x02\x01\x01\x64\x00\x00\x00", id="indefinite-message"),
        pytest.param(b"\x30\x85\x00\x00\x00\x00\x07\x02\x01\x01\x64\x00", id="5-byte-message"),
        pytest.param(b"\x30\xff" + bytes(127) + b"\x02\x01\x01", id="127-byte-message"),
        pytest.param(b"\x30\x06\x02\x80\x01\x00\x00\x64\x00", id="indefinite-id"),
        pytest.param(b"\x30\x07\x02\x01\x01\x64\x80\x00\x00", id="indefinite-operation"),
    ],
)
def test_indefinite_and_oversized_message_lengths(data: bytes) -> None:
    with pytest.raises(WireError, match="indefinite or oversized length"):
        decode_message(data)


def test_cer_encoded_replies_are_refused() -> None:
    # pyasn1's CER encoder frames constructed elements with indefinite lengths, which RFC 4511
    # section 5.1 forbids.
    message = LDAPMessage()
    message["messageID"] = MessageID(1)
    choice = ProtocolOp()
    entry = SearchResultEntry()
    entry["object"] = LDAPDN("CN=x")
    entry["attributes"] = PartialAttributeList()
    choice["searchResEntry"] = entry
    message["protocolOp"] = choice
    data = bytes(cer_encoder.encode(message))
    assert data[:2] == b"\x30\x80"
    with pytest.raises(WireError, match="indefinite"):
        decode_message(data)


@pytest.mark.parametrize(
    ("contents", "match"),
    [
        # The same entry contents, the attribute list's length in each refused form.
        (_tlv(0x04, b"CN=x") + b"\x30\x80" + _tlv(0x30) + b"\x00\x00", "indefinite"),
        (_tlv(0x04, b"CN=x") + b"\x30\x85\x00\x00\x00\x00\x00", "oversized"),
        (
            _tlv(0x04, b"CN=x")
            + _tlv(0x30, _tlv(0x30, _tlv(0x04, b"a"), _tlv(0x31, b"\x04\x85\x00\x00\x00\x00\x01"))),
            "oversized",
        ),
        (_tlv(0x04, b"CN=x") + _tlv(0x30, b"\x30\x80\x04\x01a\x31\x00\x00\x00"), "indefinite"),
        (_tlv(0x04, b"CN=x") + _tlv(0x30, _tlv(0x30, _tlv(0x04, b"a"), _tlv(0x30))), "malformed"),
        (
            _tlv(0x04, b"CN=x")
            + _tlv(0x30, _tlv(0x30, _tlv(0x04, b"a"), _tlv(0x31, _tlv(0x02, b"\x01")))),
            "octet",
        ),
        (_tlv(0x04, b"CN=x") + _tlv(0x30, _tlv(0x04, b"a")), "not a sequence"),
        (_tlv(0x04, b"CN=x") + _tlv(0x31), "0x31 where 0x30"),
        (_tlv(0x0C, b"CN=x") + _tlv(0x30), "0x0c where 0x04"),
    ],
)
def test_malformed_entry_contents(contents: bytes, match: str) -> None:
    with pytest.raises(WireError, match=match):
        decode_entry(contents, 0, len(contents))


def test_four_byte_lengths_are_the_limit() -> None:
    contents = _tlv(0x04, b"CN=x") + b"\x30\x84\x00\x00\x00\x00"
    assert decode_entry(contents, 0, len(contents)) == ("CN=x", {})
    with pytest.raises(WireError, match="ends inside"):
        decode_entry(b"\x04\x84\xff\xff\xff\xff", 0, 6)


def test_invalid_utf8_is_replaced_rather_than_raised() -> None:
    contents = _tlv(0x04, b"CN=\xff\xfe") + _tlv(
        0x30, _tlv(0x30, _tlv(0x04, b"n\xe4me"), _tlv(0x31))
    )
    assert decode_entry(contents, 0, len(contents)) == ("CN=\ufffd\ufffd", {"n\ufffdme": []})
    done = _tlv(0x0A, b"\x00") + _tlv(0x04) + _tlv(0x04, b"\xc3")
    assert decode_done(done, 0, len(done)) == (0, "\ufffd")


def test_an_empty_result_code_is_a_wire_error() -> None:
    # X.690 8.3.1: an INTEGER or ENUMERATED has at least one content octet.
    contents = _tlv(0x0A) + _tlv(0x04) + _tlv(0x04)
    with pytest.raises(WireError, match="empty integer"):
        decode_done(contents, 0, len(contents))
    with pytest.raises(WireError, match="empty integer"):
        decode_message(_tlv(0x30, _tlv(0x02) + _tlv(0x65, contents)))


# --- framing what the socket delivers ----------------------------------------------------------


class _Socket:
    """A socket that delivers prepared chunks, then end of stream (or an error)."""

    def __init__(self, chunks: Sequence[bytes], error: OSError | None = None) -> None:
        self.chunks = list(chunks)
        self.error = error

    def recv(self, size: int) -> bytes:
        if self.chunks:
            chunk = self.chunks.pop(0)
            assert len(chunk) <= size
            return chunk
        if self.error is not None:
            raise self.error
        return b""


def _read_all(replies: Replies) -> list[bytes]:
    messages: list[bytes] = []
    while batch := replies.receiving():
        assert batch, "receiving() hands on at least one message until the end"
        messages += batch
    return messages


@given(
    st.lists(st.integers(min_value=1, max_value=2**31 - 1), min_size=1, max_size=6),
    st.data(),
)
def test_messages_are_framed_whatever_the_reads_split(ids: list[int], draw: st.DataObject) -> None:
    messages = [_entry(n, f"CN=pc{n}", [("a", [b"v" * (n % 300)])]) for n in ids]
    stream = b"".join(messages)
    cuts = sorted(draw.draw(st.sets(st.integers(1, len(stream) - 1), max_size=20)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert _read_all(Replies(_Socket(chunks))) == messages


@given(
    st.lists(st.integers(min_value=1, max_value=2**31 - 1), min_size=1, max_size=6),
    st.data(),
)
def test_active_directory_four_byte_lengths_are_framed_whatever_the_reads_split(
    ids: list[int], draw: st.DataObject
) -> None:
    messages = [
        _four_byte_lengths(_entry(n, f"CN=pc{n}", [("a", [b"v" * (n % 300)])])) for n in ids
    ]
    stream = b"".join(messages)
    cuts = sorted(draw.draw(st.sets(st.integers(1, len(stream) - 1), max_size=20)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert _read_all(Replies(_Socket(chunks))) == messages


def test_each_message_is_handed_on_as_soon_as_it_is_complete() -> None:
    first, second = _entry(1, "CN=a", []), _done(1)
    replies = Replies(_Socket([first + second[:3], second[3:]]))
    assert replies.receiving() == [first]  # not held back until the read ends on a boundary
    assert replies.receiving() == [second]
    assert replies.receiving() == []


def test_a_message_cut_off_by_the_end_of_the_stream_is_not_handed_on() -> None:
    message = _entry(1, "CN=a", [])
    assert Replies(_Socket([message[:-1]])).receiving() == []


def test_a_read_error_or_time_out_is_a_wire_error() -> None:
    replies = Replies(_Socket([], TimeoutError("The read operation timed out")))
    with pytest.raises(WireError, match="timed out"):
        replies.receiving()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"\x30", None),  # the length has not arrived yet
        (b"\x30\x84\x00\x00", None),  # nor all of a long-form length
        (b"\x30\x03ab", None),
        (b"\x30\x02ab", 4),
        (b"\x30\x81\x01a", 4),
    ],
)
def test_message_end(header: bytes, expected: int | None) -> None:
    assert message_end(header, 0) == expected


@pytest.mark.parametrize(
    "header", [b"\x30\x80", b"\x30\x85\x00\x00\x00\x00\x01", b"\x30\x84\x7f\xff\xff\xff"]
)
def test_indefinite_oversized_or_absurd_lengths_are_refused_before_reading_on(
    header: bytes,
) -> None:
    with pytest.raises(WireError):
        message_end(header, 0)


# --- a page of replies ------------------------------------------------------------------------


def _page(replies: Any, message_id: int) -> Generator[Entry, None, bytes]:
    """What search() makes of one page: its entries, then its failure or its cookie."""
    page = read_page(replies, message_id)
    yield from page.decoded()
    page.check()
    return page.cookie


class _Strategy:
    """ldap3's strategy as _page sees it: whole LDAP messages, in the batches they arrived."""

    def __init__(self, *batches: list[bytes]) -> None:
        self.batches = list(batches)
        self.calls = 0

    def receiving(self) -> list[bytes]:
        self.calls += 1
        return self.batches.pop(0) if self.batches else []


def _drain(strategy: _Strategy, message_id: int) -> tuple[list[Entry], bytes]:
    entries: list[Entry] = []
    page = _page(strategy, message_id)
    while True:
        try:
            entries.append(next(page))
        except StopIteration as stop:
            cookie: bytes = stop.value
            return entries, cookie


def _yielded_before(error: type[Exception], strategy: _Strategy, message_id: int) -> list[Entry]:
    """The entries _page yields before it raises ``error``."""
    yielded: list[Entry] = []
    with pytest.raises(error):
        yielded.extend(_page(strategy, message_id))  # keeps what came before the raise
    return yielded


def test_page_yields_entries_across_batches_and_returns_the_cookie() -> None:
    strategy = _Strategy(
        [_entry(7, "CN=a", [("cn", [b"a"])])],
        [_entry(7, "CN=b", []), _entry(7, "CN=c", [("cn", [b"c"]), ("CN", [b"C"])])],
        [_done(7, 0, "", [_paged(b"next page", 100)])],
        [_entry(7, "CN=next page's", [])],  # the next page's replies are not this page's to read
    )
    entries, cookie = _drain(strategy, 7)
    assert entries == [("CN=a", {"cn": [b"a"]}), ("CN=b", {}), ("CN=c", {"cn": [b"c", b"C"]})]
    assert cookie == b"next page"
    assert strategy.batches == [[_entry(7, "CN=next page's", [])]]


def test_page_result_through_yield_from() -> None:
    cookies: list[bytes] = []

    def search() -> Iterator[Entry]:
        # Any: _page is annotated as a plain Iterator, which gives its return value no type.
        page: Any = _page(_Strategy([_entry(2, "CN=x", []), _done(2)]), 2)
        cookies.append((yield from page))

    assert list(search()) == [("CN=x", {})]
    assert cookies == [b""]


@pytest.mark.parametrize(
    "controls",
    [
        pytest.param([], id="no-controls"),
        pytest.param([_paged(b"")], id="empty-cookie"),
        pytest.param([build_control("1.2.3.4", False, None)], id="other-control"),
    ],
)
def test_the_last_page_returns_an_empty_cookie(controls: list[Any]) -> None:
    assert _drain(_Strategy([_done(9, 0, "", controls)]), 9) == ([], b"")


@given(
    entries=st.lists(st.tuples(st.text(max_size=20), _small_attributes), max_size=8),
    cookie=st.binary(max_size=40),
    stale_id=_message_ids.filter(lambda message_id: message_id != 7),
    draw=st.data(),
)
def test_page_whatever_the_batching_and_interleaving(
    entries: list[tuple[str, Attributes]], cookie: bytes, stale_id: int, draw: st.DataObject
) -> None:
    messages: list[bytes] = []
    for dn, attributes in entries:
        if draw.draw(st.booleans()):
            messages.append(_entry(stale_id, "CN=stale", [("cn", [b"stale"])]))
        if draw.draw(st.booleans()):
            messages.append(_reference(7, "ldap://dc2.bitkey.test/DC=bitkey,DC=test"))
        messages.append(_entry(7, dn, attributes))
    if draw.draw(st.booleans()):
        messages.append(_done(stale_id, 50, "an abandoned search"))
    messages.append(_done(7, 0, "", [_paged(cookie, len(entries))]))
    batches: list[list[bytes]] = [[]]
    for message in messages:
        split = draw.draw(st.booleans())
        if split and batches[-1]:
            batches.append([])
        batches[-1].append(message)
    strategy = _Strategy(*batches)
    assert _drain(strategy, 7) == ([(dn, _merged(attrs)) for dn, attrs in entries], cookie)
    assert strategy.batches == []
    assert strategy.calls == len(batches)


def test_page_skips_replies_to_other_searches() -> None:
    strategy = _Strategy(
        [
            _entry(3, "CN=old", [("cn", [b"old"])]),
            _done(3, 50, "old search failed"),
            _entry(4, "CN=mine", []),
            _entry(2**31 - 1, "CN=other", []),
        ],
        [_done(4, 0, "", [_paged(b"c")])],
    )
    assert _drain(strategy, 4) == ([("CN=mine", {})], b"c")


def test_page_skips_search_result_references() -> None:
    strategy = _Strategy(
        [_reference(5, "ldap://a/DC=a"), _entry(5, "CN=x", [])],
        [_reference(5, "ldap://b/DC=b", "ldap://c/DC=c"), _done(5)],
    )
    assert _drain(strategy, 5) == ([("CN=x", {})], b"")


def test_a_notice_of_disconnection_is_a_wire_error_with_the_servers_words() -> None:
    strategy = _Strategy(
        [_entry(8, "CN=x", [])],
        [_notice("The server is shutting down ✗"), _done(8)],
    )
    with pytest.raises(WireError, match="ended the connection: The server is shutting down ✗"):
        _drain(strategy, 8)
    # A page cut short hands on none of its entries: the search failed, nothing is complete.
    strategy = _Strategy([_entry(8, "CN=x", [])], [_notice("bye"), _done(8)])
    assert _yielded_before(WireError, strategy, 8) == []


def test_a_notice_without_a_message_names_its_result_code() -> None:
    with pytest.raises(WireError, match="result code 52"):
        _drain(_Strategy([_notice("")]), 8)


def test_any_other_unsolicited_reply_is_a_wire_error() -> None:
    with pytest.raises(WireError, match="unsolicited"):
        _drain(_Strategy([_entry(0, "CN=x", [])]), 8)


def test_a_closed_connection_is_a_wire_error() -> None:
    assert _yielded_before(WireError, _Strategy([_entry(1, "CN=x", [])]), 1) == []
    with pytest.raises(WireError, match="closed the connection"):
        _drain(_Strategy(), 1)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (50, "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS)"),
        (32, ""),
        (4096, "ü"),
    ],
)
def test_a_failed_search_raises_with_the_servers_code_and_message(code: int, message: str) -> None:
    strategy = _Strategy([_entry(6, "CN=x", []), _done(6, code, message, [_paged(b"ignored")])])
    assert _yielded_before(SearchFailed, strategy, 6) == [("CN=x", {})]
    with pytest.raises(SearchFailed) as failed:
        _drain(_Strategy([_done(6, code, message)]), 6)
    assert (failed.value.code, failed.value.message) == (code, message)
    assert f"(result code {code})" in str(failed.value)
    assert (message or "no message") in str(failed.value)


def test_an_unexpected_operation_for_our_search_is_a_wire_error() -> None:
    bind = _message(6, "bindResponse", _result(BindResponse, 0, ""))
    with pytest.raises(WireError, match=r"unexpected reply \(0x61\) to search 6"):
        _drain(_Strategy([bind]), 6)


@pytest.mark.parametrize(("code", "expected"), [(12, 12), (53, 53), (0, 2)])
def test_an_extended_response_to_our_search_ends_it_with_its_result(
    code: int, expected: int
) -> None:
    # Samba refuses a search with an unknown critical control this way, not with a
    # SearchResultDone; a "success" there is no answer to a search (protocolError, 2).
    extended = _message(6, "extendedResp", _result(ExtendedResponse, code, "refused"))
    strategy = _Strategy([_entry(6, "CN=x", [])], [extended])
    assert _yielded_before(SearchFailed, strategy, 6) == [("CN=x", {})]
    with pytest.raises(SearchFailed) as failed:
        _drain(_Strategy([extended]), 6)
    assert (failed.value.code, failed.value.message) == (expected, "refused")
