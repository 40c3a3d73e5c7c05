"""Signing in once to Active Directory: `login`, the password in the keyring, and what happens
when the directory stops accepting it.

Against the session's Samba DC, with the file-backed test keyring selected through keyring's
own configuration. Runs are in-process and without a terminal, as in a runbook; prompts on a
real terminal are in test_terminal_prompts.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitkey_dir.runtime.keystore import password_entry
from tests.command_line import Outcome, invoke, invoke_with
from tests.conftest import KeyringFile
from tests.integration.fixtures import SECRETS, WRONG_PASSWORD, Directory, Lab, ad_checks
from tests.integration.seed import HELPDESK

pytestmark = pytest.mark.integration

BACKEND = "bitkey_test_keyrings.PlaintextFileKeyring"


def keyring_config(lab: Lab, **settings: object) -> Path:
    """The lab config with the test keyring allowed, and no password in the environment."""
    config = lab.config(set_password=False, **settings)
    text = config.read_text(encoding="utf-8")
    config.write_text("[keyring]\nallow_plaintext = true\n\n" + text, encoding="utf-8")
    return config


def login(config: Path, stdin: str) -> Outcome:
    return invoke_with(
        config, "login", "lab", stdin=stdin, never_shown=[HELPDESK.password, WRONG_PASSWORD]
    )


def find(config: Path, *args: str) -> Outcome:
    return invoke_with(config, "find", "--source", "lab", "-f", "json", *args, **ad_checks())


class CountingProxy:
    """A TCP relay to the DC that counts connections: one per bind attempt on that server."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.connections = 0
        # On the DC's own address: its certificate names that IP, so TLS checks still pass.
        self._listener = socket.create_server((host, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def two_servers(samba_dc: Directory) -> Iterator[tuple[CountingProxy, CountingProxy]]:
    """Two "servers" that are the same DC: a bind retried on the next one would show."""
    host = samba_dc.dc.host
    first, second = CountingProxy(host, 636), CountingProxy(host, 636)
    yield first, second
    first.close()
    second.close()


def test_login_proves_the_password_then_find_needs_no_password(
    lab: Lab, samba_dc: Directory, file_keyring: KeyringFile, trail_file: Path
) -> None:
    config = keyring_config(lab)
    upn = samba_dc.upn(HELPDESK.name)
    said = login(config, HELPDESK.password + "\n")
    assert said.code == 0, said.err
    assert said.out == (
        f"lab: bound to {samba_dc.url} as {upn}; the password is stored in the keyring "
        f"({BACKEND})\n"
    )
    assert file_keyring.entries() == {password_entry("lab", upn): HELPDESK.password}

    key = samba_dc.keys("WS001")[0]
    found = find(config, "--key-id", key.key_id)
    assert found.code == 0, found.err
    assert found.keys == [samba_dc.record("WS001", key)]
    assert found.err == ""
    assert HELPDESK.password not in trail_file.read_text(encoding="utf-8")


def test_the_environment_wins_over_the_keyring(
    lab: Lab, samba_dc: Directory, file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = keyring_config(lab)
    file_keyring.store(password_entry("lab", samba_dc.upn(HELPDESK.name)), WRONG_PASSWORD)
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", HELPDESK.password)
    found = find(config, "--computer", "WS001")
    assert found.code == 0, found.err
    # The stored one was not even tried, so it is still there.
    assert WRONG_PASSWORD in file_keyring.entries().values()


@pytest.mark.parametrize(
    ("stdin", "code", "message"),
    [
        (WRONG_PASSWORD + "\n", 3, "rejected the user name or password"),
        ("\n", 2, "expected the password of"),
        ("", 2, "expected the password of"),
    ],
)
def test_login_with_a_wrong_or_no_password_stores_nothing(
    lab: Lab, file_keyring: KeyringFile, stdin: str, code: int, message: str
) -> None:
    config = keyring_config(lab)
    said = login(config, stdin)
    assert said.code == code, said.err
    assert message in said.err
    assert len(said.err.splitlines()) <= 2
    assert file_keyring.entries() == {}


def test_login_keeps_the_old_password_when_the_new_one_is_wrong(
    lab: Lab, samba_dc: Directory, file_keyring: KeyringFile
) -> None:
    config = keyring_config(lab)
    assert login(config, HELPDESK.password + "\n").code == 0
    assert login(config, WRONG_PASSWORD + "\n").code == 3
    entry = password_entry("lab", samba_dc.upn(HELPDESK.name))
    assert file_keyring.entries() == {entry: HELPDESK.password}


def test_login_to_an_unreachable_directory_is_exit_4_and_stores_nothing(
    lab: Lab, file_keyring: KeyringFile
) -> None:
    config = keyring_config(lab, servers=["ldaps://127.0.0.1:1"], timeout=2)
    said = login(config, HELPDESK.password + "\n")
    assert said.code == 4, said.err
    assert "connection refused" in said.err
    assert file_keyring.entries() == {}


def test_a_rejected_stored_password_is_dropped_and_never_tried_on_the_next_server(
    lab: Lab,
    samba_dc: Directory,
    file_keyring: KeyringFile,
    two_servers: tuple[CountingProxy, CountingProxy],
) -> None:
    first, second = two_servers
    host = samba_dc.dc.host
    servers = [f"ldaps://{host}:{first.port}", f"ldaps://{host}:{second.port}"]
    config = keyring_config(lab, servers=servers)
    entry = password_entry("lab", samba_dc.upn(HELPDESK.name))
    file_keyring.store(entry, WRONG_PASSWORD)  # the password was changed in the directory
    found = find(config, "--computer", "WS001")
    assert found.code == 3, found.err
    assert "refused the password of" in found.err
    assert "removed from the keyring" in found.err
    assert "`bitkey-dir login lab`" in found.err
    assert (first.connections, second.connections) == (1, 0)
    assert file_keyring.entries() == {}
    # The next run has nothing to try: no bind at all, just the way out.
    again = find(config, "--computer", "WS001")
    assert again.code == 3
    assert "no password for lab: run `bitkey-dir login lab`" in again.err
    assert (first.connections, second.connections) == (1, 0)


def test_logout_and_auth_status(
    lab: Lab, samba_dc: Directory, file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = keyring_config(lab)
    upn = samba_dc.upn(HELPDESK.name)
    assert login(config, HELPDESK.password + "\n").code == 0
    status = invoke_with(config, "auth", "status", "--json", **ad_checks())
    assert status.code == 0, status.err
    (row,) = status.document["sources"]
    assert row == {
        "source": "lab",
        "type": "ad",
        "account": upn,
        "secret": "password",
        "stored": True,
        "environment": False,
        "tokens": None,
    }
    text = invoke_with(config, "auth", "status", **ad_checks())
    assert text.out == (
        f"keyring: {BACKEND} (plain text, allowed by the config)\n"
        f"lab (ad): {upn}; password stored\n"
    )
    gone = invoke_with(config, "logout", "lab", **ad_checks())
    assert gone.out == f"lab: removed the password of {upn}\n"
    assert file_keyring.entries() == {}
    assert invoke_with(config, "logout", "lab", **ad_checks()).out == "lab: nothing was stored\n"
    after = find(config, "--computer", "WS001")
    assert after.code == 3
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", HELPDESK.password)
    text = invoke_with(config, "auth", "status", **ad_checks())
    assert "password not stored; the environment variable is set" in text.out


def test_without_a_keyring_a_runbook_still_works_from_the_environment(
    lab: Lab, samba_dc: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = lab.config()  # sets BITKEY_DIR_PASSWORD; keyring is keyring's `fail` backend
    found = find(config, "--computer", "WS001")
    assert found.code == 0, found.err
    assert found.err == ""  # the environment answered: the keyring was never asked
    monkeypatch.delenv("BITKEY_DIR_PASSWORD")
    missing = find(config, "--computer", "WS001")
    assert missing.code == 3
    lines = missing.err.splitlines()
    assert lines[0].startswith("notice: keyring not used: no keyring backend is available")
    assert "no password for lab: set BITKEY_DIR_PASSWORD" in lines[1]
    assert "login" not in lines[1]  # without a keyring, login could not store it either


def test_no_secret_reaches_any_file_or_log_but_the_keyring(
    lab: Lab, samba_dc: Directory, file_keyring: KeyringFile, caplog: pytest.LogCaptureFixture
) -> None:
    config = keyring_config(lab)
    assert login(config, HELPDESK.password + "\n").code == 0
    caplog.set_level(logging.DEBUG)  # every logger, at every level: none may leak
    for computer in ("WS001", "LT001"):
        verbose = invoke(
            "-v", "--config", config, "find", "--computer", computer, "-f", "json", **ad_checks()
        )
        assert verbose.code == 0, verbose.err
    assert "1 bind" in caplog.text
    for secret in [HELPDESK.password, *SECRETS]:
        assert secret not in caplog.text
    home = Path(os.environ["HOME"])
    for path in home.rglob("*"):
        if not path.is_file() or path == file_keyring.file:
            continue
        data = path.read_bytes()
        for secret in [HELPDESK.password, *SECRETS]:
            assert secret.encode() not in data, path
