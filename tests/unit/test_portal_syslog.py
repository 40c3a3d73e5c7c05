"""The portal's copy of the trail to syslog: RFC 5424 messages, received by a real UDP and
TCP listener here, their header and structured data read back as a syslog server would."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

pytest.importorskip("starlette", reason="the portal extra is not installed")

from bitkey_dir.core.errors import ConfigError
from bitkey_dir.portal.syslog5424 import Syslog, Target

PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"
ENTRY = {
    "time": "2026-05-01T09:00:00+00:00",
    "os_user": "portal",
    "principal": "helpdesk1@corp.example.com",
    "source": "corp",
    "key_id": "063EA4E1-220C-4293-BA01-4754620A96E7",
    "computer": 'PC]"\\01',
    "reason": 'INC-1 said "hi" \\ then ] done',
    "command": ["bitkey-dir", "serve"],
}
HEADER = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<version>1) "
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>[!-~]{1,255}) "
    r"(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
)
PARAM = re.compile(r' ([^= \]"]{1,32})="((?:[^"\\\]]|\\["\\\]])*)"')


def parsed(message: str) -> tuple[dict[str, str], str, dict[str, str], str]:
    """(header fields, SD-ID, params unescaped, MSG), as RFC 5424 reads them."""
    header = HEADER.match(message)
    assert header, message
    rest = message[header.end() :]
    assert rest.startswith("[")
    sd_id, _, rest = rest[1:].partition(" ")
    params = {}
    while not rest.startswith("]"):
        found = PARAM.match(" " + rest)
        assert found, rest
        params[found[1]] = re.sub(r"\\(.)", r"\1", found[2])
        rest = rest[found.end() - 1 :].removeprefix(" ")
    return header.groupdict(), sd_id, params, rest[1:].removeprefix(" ")


def check(message: str) -> None:
    assert PASSWORD not in message
    fields, sd_id, params, text = parsed(message)
    assert fields["pri"] == "85"  # authpriv.notice
    assert fields["app"] == "bitkey-dir"
    assert fields["msgid"] == "reveal"
    assert fields["host"] == socket.gethostname()
    stamp = datetime.strptime(fields["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert sd_id == "bitkey@32473"
    assert params == {
        "agent": "helpdesk1@corp.example.com",
        "client": "192.0.2.7",
        "source": "corp",
        "key_id": ENTRY["key_id"],
        "computer": ENTRY["computer"],
        "reason": ENTRY["reason"],
    }
    assert text.startswith("helpdesk1@corp.example.com reveal 063EA4E1")


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        yield listener


def test_a_trail_line_reaches_a_udp_listener_as_rfc5424(udp: socket.socket) -> None:
    port = udp.getsockname()[1]
    sender = Syslog(Target.parse(f"udp://127.0.0.1:{port}", "serve.syslog"))
    sender.copy(ENTRY | {"recovery_password": PASSWORD}, "192.0.2.7")  # never sent, if given
    check(udp.recv(65536).decode())
    sender.close_socket()


def test_a_trail_line_reaches_a_tcp_listener_octet_counted() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(5)
        sender = Syslog(Target.parse(f"tcp://127.0.0.1:{listener.getsockname()[1]}", "x"))
        sender.copy(ENTRY, "192.0.2.7")
        sender.copy(ENTRY | {"action": "rotate", "key_id": None}, "192.0.2.7")
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(5)
            data = b""
            while data.count(b"bitkey@32473") < 2:
                data += connection.recv(65536)
        sender.close_socket()
    length, _, rest = data.partition(b" ")
    first, second = rest[: int(length)], rest[int(length) :]
    check(first.decode())
    length, _, rest = second.partition(b" ")
    assert len(rest) == int(length)
    assert parsed(rest.decode())[0]["msgid"] == "rotate"


def test_a_syslog_that_is_down_does_not_raise(udp: socket.socket) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nobody listens on it
    Syslog(Target("tcp", "127.0.0.1", port)).copy(ENTRY, "-")


@pytest.mark.parametrize(
    "text", ["syslog.example.com:514", "udp://host", "http://host:514", "tcp://:514", "udp://h:x"]
)
def test_a_bad_syslog_address_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="expected udp://HOST:PORT"):
        Target.parse(text, "serve.syslog")
    assert Target.parse("unix:///dev/log", "x") == Target("unix", path="/dev/log")
