"""Each trail line the portal writes, also sent to syslog as an RFC 5424 message.

``[serve] syslog`` is ``udp://HOST:PORT``, ``tcp://HOST:PORT`` (octet-counted frames, RFC
6587) or ``unix:///dev/log`` (a datagram socket). A message is::

    <85>1 2026-05-01T09:00:00.000000Z host bitkey-dir 4242 reveal [bitkey@32473 agent="…"
    client="…" source="…" key_id="…" computer="…" reason="…"] agent revealed KEY of PC

facility authpriv (10), severity notice (5); MSGID the trail's action (reveal, rotate,
export). The structured data holds what the trail line holds, never a password (a trail
line holds none; a reason that holds one is refused before anything is written). A syslog
server that is down never stops a reveal: the trail file is the record, syslog a copy, and
the server log says once that a copy was lost.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

from bitkey_dir.core.display import safe
from bitkey_dir.core.errors import ConfigError
from bitkey_dir.runtime import platform

log = logging.getLogger("bitkey_dir.portal")
APP_NAME: Final = "bitkey-dir"
SD_ID: Final = "bitkey@32473"  # 32473: the enterprise number RFC 5612 sets aside for examples
PRI: Final = 10 * 8 + 5  # authpriv.notice
FIELDS: Final = ("agent", "client", "source", "key_id", "computer", "reason")
TIMEOUT: Final = 3.0


def sd_value(text: str) -> str:
    """A PARAM-VALUE: ``"``, ``\\`` and ``]`` escaped with a backslash (RFC 5424 6.3.3),
    controls and bidi overrides made visible first.

    >>> sd_value('a"b\\\\c]d')
    'a\\\\"b\\\\\\\\c\\\\]d'
    """
    text = safe(text)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_word(text: str, longest: int) -> str:
    """A header field: printable US-ASCII without spaces, ``-`` when empty (NILVALUE)."""
    word = "".join(c for c in text if "!" <= c <= "~")[:longest]
    return word or "-"


def message(entry: Mapping[str, object], client: str, now: datetime | None = None) -> bytes:
    """The RFC 5424 message of one trail entry."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    action = str(entry.get("action") or "reveal")
    values = {
        "agent": entry.get("principal"),
        "client": client,
        "source": entry.get("source"),
        "key_id": entry.get("key_id"),
        "computer": entry.get("computer"),
        "reason": entry.get("reason"),
    }
    params = "".join(
        f' {name}="{sd_value(str(value))}"' for name, value in values.items() if value is not None
    )
    what = f"{values['agent'] or '?'} {action}"
    if values["key_id"]:
        what += f" {values['key_id']} of {values['computer'] or 'an unknown computer'}"
    header = " ".join(
        (
            f"<{PRI}>1",
            stamp,
            _header_word(socket.gethostname(), 255),
            APP_NAME,
            str(os.getpid()),
            _header_word(action, 32),
        )
    )
    return f"{header} [{SD_ID}{params}] {safe(what)}".encode()


@dataclass(frozen=True)
class Target:
    scheme: str  # udp, tcp or unix
    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str, where: str) -> Target:
        parts = urlsplit(text.strip())
        if parts.scheme == "unix" and parts.path and not parts.netloc:
            return cls("unix", path=parts.path)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme in ("udp", "tcp") and parts.hostname and port and not parts.path:
            return cls(parts.scheme, parts.hostname, port)
        raise ConfigError(
            f"{where}: expected udp://HOST:PORT, tcp://HOST:PORT or unix:///dev/log, got {text!r}"
        )


class Syslog:
    """Sends messages to one target; safe to call from several threads."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._failing = False

    def _connect(self) -> socket.socket:
        t = self.target
        if t.scheme == "unix":
            sock = platform.unix_datagram_socket(t.path)
        elif t.scheme == "udp":
            sock = socket.socket(
                socket.AF_INET6 if ":" in t.host else socket.AF_INET, socket.SOCK_DGRAM
            )
            sock.connect((t.host, t.port))
        else:
            sock = socket.create_connection((t.host, t.port), timeout=TIMEOUT)
        sock.settimeout(TIMEOUT)
        return sock

    def send(self, data: bytes) -> None:
        frame = b"%d %s" % (len(data), data) if self.target.scheme == "tcp" else data
        with self._lock:
            for attempt in (1, 2):  # a TCP connection the server closed is opened again once
                try:
                    if self._socket is None:
                        self._socket = self._connect()
                    self._socket.sendall(frame)
                    self._failing = False
                    return
                except OSError as exc:
                    self.close_socket()
                    if attempt == 2 and not self._failing:
                        self._failing = True
                        log.warning("syslog: a trail line was not sent: %s", type(exc).__name__)

    def copy(self, entry: Mapping[str, object], client: str) -> None:
        self.send(message(entry, client))

    def close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
