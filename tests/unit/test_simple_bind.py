"""The simple bind's own connection over a socket pair: what it sends, how it reads the
replies to a bind or an extended operation, and how it fails."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from bitkey_dir.sources.ad import ber
from bitkey_dir.sources.ad.connection import Connector
from bitkey_dir.sources.ad.servers import ServerUrl
from bitkey_dir.sources.ad.simple_bind import STARTTLS, WHO_AM_I, SimpleBindConnection
from bitkey_dir.sources.ad.wire import WireError

PASSWORD = "S3cret-Pass!"


def result(tag: int, code: int, message: str = "", extra: bytes = b"") -> bytes:
    """An LDAPResult-shaped operation: code, matchedDN, diagnostic message, then ``extra``."""
    body = ber.integer(code, 0x0A) + ber.octets(b"") + ber.text(message) + extra
    return ber.element(tag, body)


def reply(message_id: int, operation: bytes) -> bytes:
    return ber.element(0x30, ber.integer(message_id) + operation)


BIND_RESPONSE, EXTENDED_RESPONSE, SEARCH_ENTRY = 0x61, 0x78, 0x64


@pytest.fixture
def pair() -> Iterator[tuple[SimpleBindConnection, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(2)
    with theirs:
        yield SimpleBindConnection(ours), theirs
    ours.close()


def test_a_bind_sends_the_encoded_request_and_reads_its_result(
    pair: tuple[SimpleBindConnection, socket.socket],
) -> None:
    connection, server = pair
    server.sendall(reply(1, result(BIND_RESPONSE, 0)))
    assert connection.bind("helpdesk1@bitkey.test", PASSWORD) == (0, "")
    assert server.recv(4096) == ber.bind_request(1, "helpdesk1@bitkey.test", PASSWORD)
    assert connection.usage.bind_operations == 1
    assert PASSWORD not in repr(connection)


def test_a_refusal_is_the_servers_code_and_words(
    pair: tuple[SimpleBindConnection, socket.socket],
) -> None:
    connection, server = pair
    words = "80090308: LdapErr: DSID-0C09030B, AcceptSecurityContext error, data 52e"
    server.sendall(reply(1, result(BIND_RESPONSE, 49, words)))
    assert connection.bind("u", PASSWORD) == (49, words)


def test_replies_to_a_search_given_up_are_read_past(
    pair: tuple[SimpleBindConnection, socket.socket],
) -> None:
    connection, server = pair
    connection._last_id = 6  # search 6 was given up half-way
    stale = reply(6, ber.element(SEARCH_ENTRY, ber.text("CN=x") + ber.element(0x30, b"")))
    value = ber.octets(b"u:BITKEY\\helpdesk1", 0x8B)
    server.sendall(stale * 3 + reply(7, result(EXTENDED_RESPONSE, 0, extra=value)))
    assert connection.who_am_i() == "u:BITKEY\\helpdesk1"
    assert server.recv(4096) == ber.extended_request(7, WHO_AM_I)


def test_who_am_i_is_none_when_the_server_does_not_say(
    pair: tuple[SimpleBindConnection, socket.socket],
) -> None:
    connection, server = pair
    server.sendall(reply(1, result(EXTENDED_RESPONSE, 2, "not supported")))
    assert connection.who_am_i() is None
    assert connection.usage.extended_operations == 1


def test_a_notice_of_disconnection_is_a_wire_error_in_the_servers_words(
    pair: tuple[SimpleBindConnection, socket.socket],
) -> None:
    connection, server = pair
    server.sendall(reply(0, result(EXTENDED_RESPONSE, 52, "going down")))
    with pytest.raises(WireError, match="ended the connection: going down"):
        connection.bind("u", PASSWORD)


def test_a_closed_connection_or_an_unexpected_reply_is_a_wire_error(
    pair: tuple[SimpleBindConnection, socket.socket],
) -> None:
    connection, server = pair
    server.sendall(reply(1, result(EXTENDED_RESPONSE, 0)))
    with pytest.raises(WireError, match="unexpected reply"):
        connection.bind("u", PASSWORD)
    server.shutdown(socket.SHUT_WR)
    with pytest.raises(WireError, match="closed the connection"):
        connection.bind("u", PASSWORD)


def test_unbind_says_goodbye_and_closes_even_when_the_peer_is_gone(
    pair: tuple[SimpleBindConnection, socket.socket],
) -> None:
    connection, server = pair
    connection.unbind()
    assert server.recv(4096) == ber.unbind_request(1)
    assert connection.socket.fileno() == -1
    connection.unbind()  # already closed: nothing raised


def test_a_refused_starttls_is_a_wire_error_before_any_bind() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:

        def serve() -> None:
            peer, _ = listening.accept()
            with peer:
                peer.recv(4096)
                peer.sendall(reply(1, result(EXTENDED_RESPONSE, 2, "no TLS here")))

        thread = threading.Thread(target=serve)
        thread.start()
        with pytest.raises(WireError, match=r"refused StartTLS \(no TLS here\)"):
            SimpleBindConnection.open(
                listening.getsockname()[:2],
                ssl.create_default_context(),
                "dc1.bitkey.test",
                ldaps=False,
                starttls=True,
                timeout=2,
            )
        thread.join(5)
    assert STARTTLS == "1.3.6.1.4.1.1466.20037"


@pytest.mark.parametrize(
    ("auth", "read_only", "ldap3"),
    [("simple", True, False), ("simple", False, True), ("kerberos", True, True)],
)
def test_only_kerberos_and_writable_connections_are_ldap3s(
    auth: str, read_only: bool, ldap3: bool
) -> None:
    servers = (ServerUrl.parse("ldaps://dc1.bitkey.test"),)
    connector = Connector("lab", servers, user="u", auth=auth, read_only=read_only)
    assert connector.uses_ldap3 is ldap3
    assert connector.writable().uses_ldap3
