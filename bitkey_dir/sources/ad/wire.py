"""Paged LDAP searches whose replies are read and decoded here, straight from the socket.

ldap3 turns every search result entry into several dictionaries (with a copy of the request
and per-attribute formatting) before the caller sees it, and its synchronous strategy reads
until a socket read happens to end on a message boundary: in practice a whole page, which was
then decoded while the server waited for the next page request. At 14,000 recovery objects
that was most of an export's CPU time and a third of its wall time. Here the replies are
framed and decoded (RFC 4511 section 4.5.2, BER as restricted by section 5.1), and each page
is decoded only after the next one has been asked for, so that the caller's work overlaps
with the server preparing that next page.

Who sends the requests is the connection's business (:class:`Channel`): a simple bind's
read-only connection (simple_bind.py) encodes them itself with ber.py and
filter_compiler.py, without ldap3; a Kerberos or writable connection is ldap3's, and
ldap3 encodes them (search.py adapts it). doctor's StartTLS probe (probe.py) and the
simple bind's own replies are read with the same decoding.

ldap3 2.9 binds Kerberos without a SASL security layer (TLS protects the connection), and
bitkey-dir binds no other SASL mechanism, so every reply is a plain LDAP message.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from bitkey_dir.sources.ad.ber import PAGED_RESULTS, Control

Entry = tuple[str, dict[str, list[bytes]]]  # the DN, and each attribute (lower case) its values

NO_SUCH_OBJECT: Final = 32
EXTENDED_RESPONSE: Final = 0x78  # [APPLICATION 24]: message 0 is a notice of disconnection

_SEQUENCE: Final = 0x30
_SET: Final = 0x31
_INTEGER: Final = 0x02
_OCTETS: Final = 0x04
_ENUMERATED: Final = 0x0A
_SEARCH_ENTRY: Final = 0x64  # [APPLICATION 4], constructed
_SEARCH_DONE: Final = 0x65  # [APPLICATION 5]
_SEARCH_REFERENCE: Final = 0x73  # [APPLICATION 19]
_PROTOCOL_ERROR: Final = 2
_CONTROLS: Final = 0xA0  # [0]
_RESPONSE_VALUE: Final = 0x8B  # [11] of ExtendedResponse
_READ_SIZE: Final = 65536
_MAX_MESSAGE: Final = 64 << 20  # far above any real entry; a bound for a confused server


class WireError(Exception):
    """A reply that is not the LDAP the server should send."""


class SearchFailed(Exception):
    """The server ended the search with a result code other than success."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message or 'no message'} (result code {code})")
        self.code = code
        self.message = message


def _element(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """The tag at ``pos``, and where its contents start and stop."""
    if pos + 2 > end:
        raise WireError("a reply ends inside an element")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4:  # RFC 4511 5.1: definite lengths only
            raise WireError("a reply uses an indefinite or oversized length")
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    stop = pos + length
    if stop > end:
        raise WireError("a reply ends inside an element")
    return tag, pos, stop


def _expect(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    found, start, stop = _element(data, pos, end)
    if found != tag:
        raise WireError(f"a reply has element 0x{found:02x} where 0x{tag:02x} belongs")
    return start, stop


def _short_element(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """What _expect gives, without its general length reading for the usual short forms."""
    if pos + 3 <= end and data[pos] == tag:
        form = data[pos + 1]
        if form < 0x80:
            start, stop = pos + 2, pos + 2 + form
        elif form == 0x81:
            start, stop = pos + 3, pos + 3 + data[pos + 2]
        else:
            return _expect(data, pos, end, tag)
        if stop > end:
            raise WireError("a reply ends inside an element")
        return start, stop
    return _expect(data, pos, end, tag)


def _integer(data: bytes, start: int, stop: int) -> int:
    if start == stop:  # X.690 8.3.1: at least one content octet
        raise WireError("a reply has an empty integer")
    return int.from_bytes(data[start:stop], "big", signed=True)


def decode_entry(data: bytes, pos: int, end: int) -> Entry:
    """A SearchResultEntry's contents: the object's DN and its attributes' values."""
    # The DN, then the attributes' sequence, read here when their lengths take at most one
    # byte (a recovery object's: 100 to 200 bytes); _expect reads any other form.
    start, stop = _short_element(data, pos, end, _OCTETS)
    dn = data[start:stop].decode("utf-8", "replace")
    pos, end = _short_element(data, stop, end, _SEQUENCE)
    attributes: dict[str, list[bytes]] = {}
    names = _NAMES
    while pos < end:
        # An export decodes 14,000 entries of three attributes each, nearly all of them one
        # value with every length in one byte: 30 L 04 N <name> 31 S 04 V <value>. That shape
        # is checked and read here in one test (each index read only once the ones before
        # it say it is in bounds); anything else goes through _element in _attribute.
        if pos + 4 <= end:
            size = data[pos + 1]
            stop = pos + 2 + size
            at = pos + 4 + data[pos + 3]  # where the set of values starts
            if (
                size < 0x80
                and at + 4 <= stop <= end
                and data[pos] == _SEQUENCE
                and data[pos + 2] == _OCTETS
                and data[pos + 3] < 0x80
                and data[at] == _SET
                and data[at + 1] == stop - at - 2
                and data[at + 2] == _OCTETS
                and data[at + 3] == stop - at - 4
            ):
                raw = data[pos + 4 : at]
                name = names.get(raw) or _name(raw)
                if name in attributes:
                    attributes[name].append(data[at + 4 : stop])
                else:
                    attributes[name] = [data[at + 4 : stop]]
                pos = stop
                continue
        pos = _attribute(data, pos, end, attributes)
    return dn, attributes


_NAMES: dict[bytes, str] = {}  # attribute names as they come, and as this module gives them


def _name(raw: bytes) -> str:
    name = _NAMES.get(raw)
    if name is None:
        name = raw.decode("ascii", "replace").lower()
        if len(_NAMES) < 1024:  # a server cannot make it grow without bound
            _NAMES[raw] = name
    return name


def _merge(attributes: dict[str, list[bytes]], name: str, values: list[bytes]) -> None:
    if name in attributes:
        attributes[name].extend(values)
    else:
        attributes[name] = values


def _attribute(data: bytes, pos: int, end: int, attributes: dict[str, list[bytes]]) -> int:
    """One attribute of a search entry, whatever its length forms; where the next starts."""
    tag, start, pos = _element(data, pos, end)
    if tag != _SEQUENCE:
        raise WireError("an attribute of a search entry is not a sequence")
    tag, name_start, name_stop = _element(data, start, pos)
    tag2, value_pos, values_end = _element(data, name_stop, pos)
    if tag != _OCTETS or tag2 != _SET:
        raise WireError("an attribute of a search entry is malformed")
    values = []
    while value_pos < values_end:
        tag, start, value_pos = _element(data, value_pos, values_end)
        if tag != _OCTETS:
            raise WireError("an attribute value is not an octet string")
        values.append(data[start:value_pos])
    _merge(attributes, _name(data[name_start:name_stop]), values)
    return pos


def decode_done(data: bytes, pos: int, end: int) -> tuple[int, str]:
    """An LDAPResult's (a SearchResultDone's, a BindResponse's…) result code and diagnostic
    message."""
    code, message, _ = _result(data, pos, end)
    return code, message


def _result(data: bytes, pos: int, end: int) -> tuple[int, str, int]:
    """decode_done's two, and where what follows the LDAPResult's fields starts."""
    start, stop = _expect(data, pos, end, _ENUMERATED)
    code = _integer(data, start, stop)
    _, stop = _expect(data, stop, end, _OCTETS)  # matchedDN
    start, stop = _expect(data, stop, end, _OCTETS)
    return code, data[start:stop].decode("utf-8", "replace"), stop


def decode_extended(data: bytes, pos: int, end: int) -> tuple[int, str, bytes | None]:
    """An ExtendedResponse's result code, diagnostic message and responseValue, if any."""
    code, message, at = _result(data, pos, end)
    value = None
    while at < end:  # a referral [3], the responseName [10], the responseValue [11]
        tag, start, at = _element(data, at, end)
        if tag == _RESPONSE_VALUE:
            value = data[start:at]
    return code, message, value


def decode_controls(data: bytes, pos: int, end: int) -> dict[str, bytes]:
    """Each response control's OID and value."""
    controls: dict[str, bytes] = {}
    while pos < end:
        start, pos = _expect(data, pos, end, _SEQUENCE)
        oid_start, oid_stop = _expect(data, start, pos, _OCTETS)
        value = b""
        at = oid_stop
        while at < pos:  # criticality (BOOLEAN) is optional, then the optional value
            tag, value_start, at = _element(data, at, pos)
            if tag == _OCTETS:
                value = data[value_start:at]
        controls[data[oid_start:oid_stop].decode("ascii", "replace")] = value
    return controls


def paged_cookie(value: bytes) -> bytes:
    """The cookie of a paged-results response control (RFC 2696); empty on the last page."""
    start, stop = _expect(value, 0, len(value), _SEQUENCE)
    _, at = _expect(value, start, stop, _INTEGER)  # the server's size estimate
    cookie_start, cookie_stop = _expect(value, at, stop, _OCTETS)
    return value[cookie_start:cookie_stop]


def decode_message(data: bytes) -> tuple[int, int, int, int, int]:
    """An LDAPMessage's ID, its operation's tag and extent, and where the rest starts."""
    # A search entry of an export, read here without a call per element: a message with a
    # two- or four-byte length (Samba's and AD's), an ID of up to four bytes, and an
    # operation whose length has one of the forms below. Anything else, or anything out of
    # bounds, takes the general path, which says what is wrong.
    size = len(data)
    form = data[1] if size > 9 and data[0] == _SEQUENCE else 0
    head = 4 if form == 0x82 else 6 if form == 0x84 else 0
    if head and data[head] == _INTEGER and 0 < data[head + 1] <= 4:
        end = head + int.from_bytes(data[2:head], "big")
        at = head + 2 + data[head + 1]
        form = data[at + 1] if at + 2 <= end <= size else 0x80
        if form < 0x80:
            start = at + 2
            stop = start + form
        elif form == 0x82 and at + 4 <= end:
            start = at + 4
            stop = start + (data[at + 2] << 8 | data[at + 3])
        elif form == 0x84 and at + 6 <= end:
            start = at + 6
            stop = start + int.from_bytes(data[at + 2 : start], "big")
        else:
            stop = end + 1
        if stop <= end:
            message_id = int.from_bytes(data[head + 2 : at], "big", signed=True)
            return message_id, data[at], start, stop, end
    start, end = _expect(data, 0, len(data), _SEQUENCE)
    id_start, id_stop = _expect(data, start, end, _INTEGER)
    message_id = _integer(data, id_start, id_stop)
    tag, op_start, op_stop = _element(data, id_stop, end)
    return message_id, tag, op_start, op_stop, end


def message_end(data: bytes, pos: int) -> int | None:
    """Where the message starting at ``pos`` ends, or None until more of it has arrived."""
    available = len(data) - pos
    if available < 2:
        return None
    length = data[pos + 1]
    header = 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4:
            raise WireError("a reply uses an indefinite or oversized length")
        header += size
        if available < header:
            return None
        length = int.from_bytes(data[pos + 2 : pos + header], "big")
    if header + length > _MAX_MESSAGE:
        raise WireError(f"a reply claims {header + length} bytes")
    end = pos + header + length
    return end if end <= len(data) else None


class Replies:
    """Whole LDAP messages from a socket, each handed on as soon as its last byte arrives."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._pending = b""

    def receiving(self) -> list[bytes]:
        """At least one message; an empty list once the server has closed the connection."""
        messages: list[bytes] = []
        while not messages:
            try:
                chunk = self._sock.recv(_READ_SIZE)
            except OSError as exc:  # a time-out too: the socket carries ldap3's receive_timeout
                raise WireError(f"error receiving data: {exc}") from None
            if not chunk:
                return []
            data = self._pending + chunk if self._pending else chunk
            pos = 0
            size = len(data)
            while pos + 2 <= size:
                # Samba's replies to an export are a few hundred bytes, AD's carry four-byte
                # lengths: those two forms are framed here, any other by message_end.
                form = data[pos + 1]
                if form == 0x82 and pos + 4 <= size:
                    end = pos + 4 + (data[pos + 2] << 8 | data[pos + 3])
                elif form == 0x84 and pos + 6 <= size and data[pos + 2] == data[pos + 3] == 0:
                    end = pos + 6 + (data[pos + 4] << 8 | data[pos + 5])
                else:
                    found = message_end(data, pos)
                    if found is None:
                        break
                    end = found
                if end > size:
                    break
                messages.append(data[pos:end])
                pos = end
            self._pending = data[pos:]
        return messages


@dataclass
class Page:
    """One page of replies, read off the socket but not yet decoded."""

    entries: list[tuple[bytes, int, int]]  # each SearchResultEntry: its message, where it lies
    code: int
    message: str
    cookie: bytes  # empty on the last page

    def decoded(self) -> Iterator[Entry]:
        for data, start, stop in self.entries:
            yield decode_entry(data, start, stop)

    def check(self) -> None:
        if self.code != 0:
            raise SearchFailed(self.code, self.message)


@dataclass(frozen=True)
class PagedSearch:
    """What each page's request of one paged search repeats."""

    base: str
    search_filter: str
    scope: str
    attributes: Sequence[str]
    controls: Sequence[Control]
    page_size: int


class Channel(Protocol):
    """What a paged search needs of a connection: a way to send one page's request, and
    its replies, whole messages off the socket (:class:`Replies`)."""

    @property
    def replies(self) -> Replies: ...

    def send_search(self, search: PagedSearch, cookie: bytes) -> int:
        """Send the request for one page (the paged-results control added); its message ID."""
        ...

    def forget(self, message_id: int) -> None:
        """The search ``message_id`` has had its SearchResultDone, or was given up."""
        ...


def search(
    channel: Channel,
    base: str,
    search_filter: str,
    scope: str,
    attributes: Sequence[str],
    page_size: int,
    controls: Sequence[Control] = (),
) -> Iterator[Entry]:
    """Every entry a paged search finds, page after page.

    A page is read whole (it is small: at most ``page_size`` entries), the next one asked
    for, and only then decoded and handed on: Samba, for one, prepares a whole page before it
    sends the first entry, so the caller's work on this page hides behind that.

    Raises :class:`SearchFailed` with the server's result code (after the entries that came
    before it), :class:`WireError` on a broken connection or a reply that is not LDAP, and
    whatever the channel raises when a request cannot be sent.
    """
    replies = channel.replies
    asked = PagedSearch(base, search_filter, scope, attributes, controls, page_size)

    message_id = channel.send_search(asked, b"")
    while True:
        try:
            page = read_page(replies, message_id)
        finally:
            channel.forget(message_id)
        if page.code == 0 and page.cookie:
            message_id = channel.send_search(asked, page.cookie)
        yield from page.decoded()
        page.check()
        if not page.cookie:
            return


def read_page(replies: Any, message_id: int) -> Page:
    """The replies to search ``message_id``, up to and including its SearchResultDone.

    ``replies.receiving()`` gives whole messages, at least one, or none once the connection
    is closed (:class:`Replies`).
    """
    entries: list[tuple[bytes, int, int]] = []
    while True:
        messages = replies.receiving()
        if not messages:
            raise WireError("the server closed the connection during a search")
        for data in messages:
            got_id, tag, start, stop, end = decode_message(data)
            if got_id == 0:  # unsolicited: a notice of disconnection (RFC 4511 4.4.1)
                raise disconnected(data, tag, start, stop)
            if got_id != message_id:
                continue  # the rest of a search its reader gave up on
            if tag == _SEARCH_ENTRY:
                entries.append((data, start, stop))
            elif tag == _SEARCH_DONE:
                code, message = decode_done(data, start, stop)
                controls: dict[str, bytes] = {}
                if stop < end:
                    tag, controls_start, controls_stop = _element(data, stop, end)
                    if tag == _CONTROLS:
                        controls = decode_controls(data, controls_start, controls_stop)
                value = controls.get(PAGED_RESULTS)
                cookie = paged_cookie(value) if value and code == 0 else b""
                return Page(entries, code, message, cookie)
            elif tag == EXTENDED_RESPONSE:
                # Samba answers a search it refuses outright (an unknown critical control)
                # with an ExtendedResponse; it carries an LDAPResult all the same.
                code, message = decode_done(data, start, stop)
                return Page(entries, code or _PROTOCOL_ERROR, message, b"")
            elif tag != _SEARCH_REFERENCE:  # continuation references are not followed
                raise WireError(f"an unexpected reply (0x{tag:02x}) to search {message_id}")


def disconnected(data: bytes, tag: int, start: int, stop: int) -> WireError:
    """What a message with ID 0 says: the server's notice of disconnection (RFC 4511 4.4.1)."""
    if tag != EXTENDED_RESPONSE:
        return WireError("the server ended the connection: an unsolicited reply")
    code, message = decode_done(data, start, stop)
    return WireError(f"the server ended the connection: {message or f'result code {code}'}")
