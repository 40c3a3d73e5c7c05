"""Read-only connections with a simple bind are bitkey-dir's own (simple_bind.py), against
the Samba DC: no ldap3 or pyasn1 is imported, TLS and StartTLS are checked as before, a
refused password keeps its words and is never sent on, and what needs ldap3 still has it."""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import sys
from collections.abc import Iterator

import pytest

from bitkey_dir.runtime.config import load_config
from bitkey_dir.sources.ad.servers import ServerUrl
from bitkey_dir.sources.ad.simple_bind import SimpleBindConnection
from bitkey_dir.sources.ad.source import ADSource
from bitkey_dir.sources.registry import open_sources
from tests.command_line import invoke_with, run_process
from tests.conftest import ROOT
from tests.integration.fixtures import (
    ADMIN,
    WRONG_PASSWORD,
    Directory,
    Lab,
    ad_checks,
    free_port,
    records,
)

pytestmark = pytest.mark.integration

# Runs the command line as `python -m bitkey_dir` does, then writes the names of every module
# the run imported to the file $IMPORTED names.
PROBE = (
    "import atexit, os, sys\n"
    "def written():\n"
    "    with open(os.environ['IMPORTED'], 'w', encoding='utf-8') as out:\n"
    "        out.write('\\n'.join(sorted(sys.modules)))\n"
    "atexit.register(written)\n"
    "from bitkey_dir.cli import main\n"
    "main()\n"
)


def imported(lab: Lab, *args: str) -> set[str]:
    """The modules `bitkey-dir ARGS` imports, in a fresh interpreter."""
    listing = lab.tmp_path / "imported.txt"
    done = run_process(
        *args,
        command=(sys.executable, "-c", PROBE),
        env={**os.environ, "IMPORTED": str(listing), "PYTHONPATH": str(ROOT)},
        **ad_checks(),
    )
    assert done.code == 0, done.err
    return set(listing.read_text(encoding="utf-8").split())


@pytest.mark.parametrize("command", ["export", "find"])
def test_an_export_or_a_lookup_imports_neither_ldap3_nor_pyasn1(
    lab: Lab, samba_dc: Directory, command: str
) -> None:
    config = lab.config(user=ADMIN)
    if command == "export":
        out = lab.tmp_path / "keys.json"
        args: tuple[str, ...] = ("export", "-s", "lab", "-o", str(out))
    else:
        args = ("find", "-s", "lab", "-c", "WS00*", "-f", "json")
    modules = imported(lab, "--config", str(config), *args)
    roots = {name.split(".")[0] for name in modules}
    assert not roots & {"ldap3", "pyasn1"}, sorted(roots & {"ldap3", "pyasn1"})
    assert "bitkey_dir.sources.ad.simple_bind" in modules
    if command == "export":
        keys = json.loads((lab.tmp_path / "keys.json").read_text(encoding="utf-8"))["keys"]
        assert {key["computer"] for key in keys} >= {"WS001", "WS002"}


@pytest.fixture
def admin_source(lab: Lab) -> Iterator[ADSource]:
    (source,) = open_sources(load_config(lab.config(user=ADMIN)), ["lab"])
    assert isinstance(source, ADSource)
    try:
        yield source
    finally:
        source.close()


def test_ldaps_and_starttls_are_tls_on_the_own_connection(
    lab: Lab, samba_dc: Directory, admin_source: ADSource
) -> None:
    for url in (samba_dc.url, samba_dc.ldap_url):
        connector = admin_source.connector.sibling((ServerUrl.parse(url),))
        connection = connector.connect(lambda message: None)
        try:
            assert isinstance(connection, SimpleBindConnection)
            assert isinstance(connection.socket, ssl.SSLSocket), url
            # Samba answers Who am I? with protocolError ("not supported"), as it did ldap3.
            assert connection.who_am_i() is None
            assert connection.usage.extended_operations == (1 if url == samba_dc.url else 2)
        finally:
            connector.close()
    # StartTLS end to end, as a lookup uses it.
    found = lab.find("--computer", "WS002", servers=[samba_dc.ldap_url])
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "WS002")


def test_allow_plaintext_binds_in_clear_and_the_dc_asks_for_encryption(
    lab: Lab, samba_dc: Directory
) -> None:
    # Samba refuses a simple bind without TLS (strongerAuthRequired): the refusal proves the
    # bind was sent in clear, without StartTLS.
    found = lab.find("-k", "063EA4E1", servers=[samba_dc.ldap_url], allow_plaintext=True)
    assert found.code == 3, found.err
    assert "requires an encrypted connection for this bind" in found.err


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A second "server" that must never be connected to."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


@pytest.mark.parametrize("who", ["password", "user"])
def test_a_refused_bind_is_exit_3_with_its_words_and_never_sent_to_the_next_server(
    lab: Lab, samba_dc: Directory, listener: socket.socket, who: str
) -> None:
    next_server = f"ldaps://127.0.0.1:{listener.getsockname()[1]}"
    user = "nobody-here@bitkey.test" if who == "user" else "helpdesk"
    config = lab.config(user=user, servers=[samba_dc.url, next_server], set_password=False)
    lab.monkeypatch.setenv("BITKEY_DIR_PASSWORD", WRONG_PASSWORD)
    found = invoke_with(config, "find", "-k", "063EA4E1", "-f", "json", **ad_checks())
    assert found.code == 3, found.err
    assert f"{samba_dc.url} rejected the user name or password for " in found.err
    assert "data 52e" in found.err
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_an_unreachable_first_server_falls_over_to_the_next(
    lab: Lab, samba_dc: Directory, admin_source: ADSource
) -> None:
    dead = f"ldaps://127.0.0.1:{free_port()}"
    connector = admin_source.connector.sibling(
        (ServerUrl.parse(dead), ServerUrl.parse(samba_dc.url))
    )
    try:
        assert isinstance(connector.connect(lambda message: None), SimpleBindConnection)
        assert connector.server is not None
        assert connector.server.url == samba_dc.url
    finally:
        connector.close()


def test_a_connection_that_may_write_is_still_ldap3s(admin_source: ADSource) -> None:
    import ldap3

    writer = admin_source.connector.writable()
    try:
        assert isinstance(writer.connect(lambda message: None), ldap3.Connection)
    finally:
        writer.close()


def test_the_log_counts_binds_searches_and_extended_operations(
    lab: Lab, samba_dc: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bitkey_dir.sources.ad")
    found = lab.find("--computer", "WS002", servers=[samba_dc.ldap_url], page_size=1)
    assert found.code == 0, found.err
    assert "1 bind, " in caplog.text
    assert "1 extended operation" in caplog.text  # StartTLS
