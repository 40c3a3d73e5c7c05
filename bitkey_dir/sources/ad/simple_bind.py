"""A read-only LDAP connection bound with a name and password, without ldap3.

Every lookup, export, audit and doctor run of a source with ``auth = "simple"``, and every
portal sign-in as an AD account, binds this way and then only searches (and asks Who am I?):
importing ldap3 and pyasn1 for that cost an export about a tenth of its CPU time. Requests
are encoded by ber.py and filter_compiler.py, replies decoded by wire.py; the TLS rules are
connection.py's (the standard library's certificate and host name checks). Kerberos binds
and connections that may write stay with ldap3 (connection.py chooses).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from bitkey_dir.sources.ad.ber import (
    bind_request,
    extended_request,
    paged_results,
    search_request,
    unbind_request,
)
from bitkey_dir.sources.ad.filter_compiler import compile_filter
from bitkey_dir.sources.ad.wire import (
    EXTENDED_RESPONSE,
    PagedSearch,
    Replies,
    WireError,
    decode_done,
    decode_extended,
    decode_message,
    disconnected,
)

STARTTLS: Final = "1.3.6.1.4.1.1466.20037"  # RFC 4511 4.14
WHO_AM_I: Final = "1.3.6.1.4.1.4203.1.11.3"  # RFC 4532
_BIND_RESPONSE: Final = 0x61  # [APPLICATION 1]


@dataclass
class Usage:
    """What was asked on the connection, for the log line when it closes (ldap3's names)."""

    bind_operations: int = 0
    search_operations: int = 0
    extended_operations: int = 0


class SimpleBindConnection:
    """One socket to a DC, TLS-protected unless plaintext was allowed, that binds once with
    a name and password and then searches. Not for use by two threads at once."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.replies = Replies(sock)
        self.usage = Usage()
        self._last_id = 0

    def __repr__(self) -> str:
        return f"<SimpleBindConnection to {_peer(self.socket)}>"

    @classmethod
    def open(
        cls,
        address: tuple[str, int],
        context: ssl.SSLContext,
        server_hostname: str,
        *,
        ldaps: bool,
        starttls: bool,
        timeout: float,
    ) -> SimpleBindConnection:
        """Connect to ``address``; TLS at once (``ldaps``) or by StartTLS (``starttls``).
        Each step, and every later read, waits at most ``timeout`` seconds.

        Raises OSError (ssl.SSLError for TLS) when the server cannot be reached or its
        certificate is refused, WireError when it answers StartTLS with anything but yes.
        """
        raw = socket.create_connection(address, timeout)
        try:
            raw.settimeout(timeout)
            if ldaps:
                return cls(context.wrap_socket(raw, server_hostname=server_hostname))
            connection = cls(raw)
            if starttls:
                connection._start_tls(context, server_hostname)
        except BaseException:
            raw.close()
            raise
        return connection

    def _start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        code, message, _ = self.extended(STARTTLS)
        if code != 0:
            raise WireError(f"the server refused StartTLS ({message or f'result code {code}'})")
        # Nothing else is in flight: the server sent its answer and waits for the handshake.
        self.socket = context.wrap_socket(self.socket, server_hostname=server_hostname)
        self.replies = Replies(self.socket)

    def bind(self, name: str, password: str) -> tuple[int, str]:
        """A simple bind as ``name``: the result code and the server's diagnostic message.

        Raises ber.PasswordRefused for a password SASLprep refuses (nothing is sent),
        WireError when the connection fails.
        """
        message_id = self._next_id()
        self._send(bind_request(message_id, name, password))
        self.usage.bind_operations += 1
        data, start, stop = self._reply(message_id, _BIND_RESPONSE)
        return decode_done(data, start, stop)

    def extended(self, oid: str, value: bytes | None = None) -> tuple[int, str, bytes | None]:
        """An extended operation: the result code, the message, the response's value."""
        message_id = self._next_id()
        self._send(extended_request(message_id, oid, value))
        self.usage.extended_operations += 1
        data, start, stop = self._reply(message_id, EXTENDED_RESPONSE)
        return decode_extended(data, start, stop)

    def who_am_i(self) -> str | None:
        """The authorization identity the DC bound (``u:BITKEY\\helpdesk1``), if it says."""
        code, _, value = self.extended(WHO_AM_I)
        return value.decode("utf-8", "replace") if code == 0 and value else None

    def send_search(self, search: PagedSearch, cookie: bytes) -> int:
        """wire.search's way to ask for a page; filter_compiler.FilterError for a bad filter."""
        compiled = compile_filter(search.search_filter)
        message_id = self._next_id()
        paged = [*search.controls, paged_results(search.page_size, cookie)]
        request = search_request(
            message_id, search.base, search.scope, compiled, search.attributes, paged
        )
        self._send(request)
        self.usage.search_operations += 1
        return message_id

    def forget(self, message_id: int) -> None:
        """Nothing is kept per search: replies to an abandoned one are skipped by their ID."""

    def unbind(self) -> None:
        """Say goodbye (RFC 4511 4.3) and close; a connection already broken just closes."""
        try:
            with contextlib.suppress(OSError, WireError):
                self._send(unbind_request(self._next_id()))
        finally:
            self.socket.close()

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _send(self, request: bytes) -> None:
        try:
            self.socket.sendall(request)
        except OSError as exc:  # a time-out too
            raise WireError(f"error sending data: {exc}") from None

    def _reply(self, message_id: int, tag: int) -> tuple[bytes, int, int]:
        """The reply to ``message_id``: the message, and where its operation lies. Replies
        to a search given up half-way are read past."""
        while True:
            messages = self.replies.receiving()
            if not messages:
                raise WireError("the server closed the connection")
            for data in messages:
                got_id, got_tag, start, stop, _ = decode_message(data)
                if got_id == 0:
                    raise disconnected(data, got_tag, start, stop)
                if got_id != message_id:
                    continue
                if got_tag != tag:
                    raise WireError(f"an unexpected reply (0x{got_tag:02x}) to request {got_id}")
                return data, start, stop


def _peer(sock: socket.socket) -> str:
    try:
        peer = sock.getpeername()
    except OSError:
        return "a closed socket"
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "a local socket"


if TYPE_CHECKING:
    from ldap3 import Connection as Ldap3Connection

    # Either kind of bound connection: this module's, or ldap3's (Kerberos, or writable).
    Connection: TypeAlias = SimpleBindConnection | Ldap3Connection
