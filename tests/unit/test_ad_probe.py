"""doctor's StartTLS request on a plain LDAP connection, answered by hand over a socket pair:
granted, refused, cut short, not LDAP. (The TLS handshake after it is checked against the
Samba DC in tests/integration/test_doctor_ad.py.)"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from bitkey_dir.sources.ad.probe import ask_starttls


def extended_response(code: int, message_id: int = 0x7F) -> bytes:
    """An LDAPMessage holding an ExtendedResponse with this result code, RFC 4511 4.12."""
    result = bytes([0x0A, 0x01, code, 0x04, 0x00, 0x04, 0x00])
    operation = bytes([0x78, len(result)]) + result
    body = bytes([0x02, 0x01, message_id]) + operation
    return bytes([0x30, len(body)]) + body


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    with ours, theirs:
        yield ours, theirs


def answer(theirs: socket.socket, *chunks: bytes, close: bool = False) -> threading.Thread:
    """The server's side: read the request, then send ``chunks`` one by one."""

    def serve() -> None:
        theirs.recv(4096)
        for chunk in chunks:
            theirs.sendall(chunk)
        if close:
            theirs.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_granted(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    answer(theirs, extended_response(0))
    assert ask_starttls(ours) is None


def test_a_reply_that_comes_a_byte_at_a_time_is_read_whole(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    reply = extended_response(52)
    answer(theirs, *(reply[n : n + 1] for n in range(len(reply))))
    assert ask_starttls(ours) == "the server refused StartTLS (result 52)"


def test_a_notice_of_disconnection_is_a_refusal(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    answer(theirs, extended_response(2, message_id=0))
    assert ask_starttls(ours) == "the server refused StartTLS (result 2)"


@pytest.mark.parametrize(
    "reply",
    [
        bytes.fromhex("300c02017f65070a010004000400"),  # a SearchResultDone
        bytes.fromhex("3003020100"),  # a message with an ID and no operation
        b"\x30\x80\x00\x00",  # an indefinite length, which LDAP forbids
    ],
)
def test_anything_else_is_no_answer(
    pair: tuple[socket.socket, socket.socket], reply: bytes
) -> None:
    ours, theirs = pair
    answer(theirs, reply)
    assert ask_starttls(ours) == "the server did not answer the StartTLS request"


@pytest.mark.parametrize("sent", [b"", b"\x30\x0c\x02\x01"])
def test_a_server_that_hangs_up_is_said_to(
    pair: tuple[socket.socket, socket.socket], sent: bytes
) -> None:
    ours, theirs = pair
    answer(theirs, sent, close=True)
    assert ask_starttls(ours) == "the server closed the connection when asked for StartTLS"


def test_a_refusal_reaches_doctor_in_the_servers_words() -> None:
    # A plain LDAP listener that refuses StartTLS: the probe's finding names the refusal and
    # its result code, not a network failure ("connection refused" would send the admin to
    # the firewall).
    from bitkey_dir.sources.ad.probe import probe_tls
    from bitkey_dir.sources.ad.servers import ServerUrl

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(extended_response(52))

        threading.Thread(target=serve, daemon=True).start()
        found = probe_tls(ServerUrl.parse(f"ldap://127.0.0.1:{port}"), None, 5)
    assert not found.reached
    assert found.problem == "the server refused StartTLS (result 52)"
