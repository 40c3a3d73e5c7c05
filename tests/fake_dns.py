"""A DNS server on 127.0.0.1 that answers what a test says, for the ``dns_servers`` seam.

``FakeDns(records)`` answers each question (name, type) from ``records`` in their text form
(``{("_ldap._tcp.dc._msdcs.corp.example", "SRV"): ["0 100 389 dc1.corp.example."]}``), a
name it does not know with NXDOMAIN, and never answers the types in ``silent``: a DNS
server that stalls. Answers go over UDP, however large (dnspython reads up to 64 KiB).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class FakeDns:
    def __init__(
        self, records: Mapping[tuple[str, str], Sequence[str]], silent: Iterable[str] = ()
    ) -> None:
        self.records = {
            (name.lower().rstrip("."), kind): list(v) for (name, kind), v in records.items()
        }
        self.silent = set(silent)
        self.asked: list[tuple[str, str]] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)

    @property
    def address(self) -> str:
        """As ``dns_servers`` takes it: ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> FakeDns:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            question = query.question[0]
            name = question.name.to_text().lower().rstrip(".")
            kind = dns.rdatatype.to_text(question.rdtype)
            self.asked.append((name, kind))
            if kind in self.silent:
                continue
            response = dns.message.make_response(query)
            answers = self.records.get((name, kind))
            if answers:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 60, "IN", kind, answers)
                )
            elif not any(known == name for known, _ in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self._socket.sendto(response.to_wire(max_size=65535), peer)


class SilentServers:
    """TCP ports on 127.0.0.1 … 127.0.0.N (one port number) that accept connections and
    never answer: each connection waits until the test ends."""

    def __init__(self, addresses: int) -> None:
        self._sockets: list[socket.socket] = []
        self._accepted: list[socket.socket] = []
        self._stop = threading.Event()
        first = socket.socket()
        first.bind(("127.0.0.1", 0))
        self.port: int = first.getsockname()[1]
        self._sockets.append(first)
        for n in range(2, addresses + 1):
            other = socket.socket()
            other.bind((f"127.0.0.{n}", self.port))
            self._sockets.append(other)
        self.addresses = [f"127.0.0.{n}" for n in range(1, addresses + 1)]
        self._threads = [
            threading.Thread(target=self._accept, args=(s,), daemon=True) for s in self._sockets
        ]

    def __enter__(self) -> SilentServers:
        for listening, thread in zip(self._sockets, self._threads, strict=True):
            listening.listen(64)
            listening.settimeout(0.2)
            thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for held in [*self._accepted, *self._sockets]:
            held.close()

    def _accept(self, listening: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = listening.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted.append(connection)
