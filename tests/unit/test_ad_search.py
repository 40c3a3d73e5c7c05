"""Which way an AD search runs: the wire decoder only where ldap3's internals are as checked."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import ldap3
import pytest

from bitkey_dir.sources.ad import search
from bitkey_dir.sources.ad.search import Entry, wire_usable


@pytest.fixture
def connection() -> Iterator[ldap3.Connection]:
    """An ldap3 connection opened to a listening socket, as before a bind: the synchronous
    strategy with its bookkeeping and a socket (no LDAP is spoken)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=port, get_info=ldap3.NONE))
        conn.open()
        opened = conn.socket
        try:
            yield conn
        finally:
            opened.close()  # not unbind(): a test may have taken the strategy apart


@pytest.fixture
def fresh_release_check() -> Iterator[None]:
    search._checked_ldap3.cache_clear()
    yield
    search._checked_ldap3.cache_clear()


def test_a_bound_synchronous_connection_is_served_by_the_wire_decoder(
    connection: ldap3.Connection,
) -> None:
    assert wire_usable(connection)


def test_another_strategy_falls_back_to_ldap3() -> None:
    for strategy in (ldap3.SAFE_SYNC, ldap3.ASYNC, ldap3.RESTARTABLE):
        conn = ldap3.Connection(ldap3.Server("127.0.0.1"), client_strategy=strategy)
        assert not wire_usable(conn), strategy


@pytest.mark.parametrize("missing", ["_outstanding", "send"])
def test_missing_strategy_internals_fall_back_to_ldap3(
    connection: ldap3.Connection, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setattr(connection.strategy, missing, None, raising=False)
    assert not wire_usable(connection)


def test_a_connection_without_a_socket_falls_back_to_ldap3(connection: ldap3.Connection) -> None:
    connection.socket = None
    assert not wire_usable(connection)


@pytest.mark.usefixtures("fresh_release_check")
@pytest.mark.parametrize("release", ["2.10.0", "3.0", "2.8.1", "dev"])
def test_an_ldap3_release_the_decoder_was_not_checked_against_falls_back(
    connection: ldap3.Connection, monkeypatch: pytest.MonkeyPatch, release: str
) -> None:
    monkeypatch.setattr(ldap3, "__version__", release)
    assert not wire_usable(connection)


@pytest.mark.usefixtures("fresh_release_check")
def test_a_changed_request_encoder_falls_back(
    connection: ldap3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ldap3.operation.search as operation

    def search_operation(search_base: str, search_filter: str) -> None: ...

    monkeypatch.setattr(operation, "search_operation", search_operation)
    assert not wire_usable(connection)


def test_an_entry_reads_attributes_by_any_case() -> None:
    entry = Entry("CN=x", {"lastknownparent": [b"OU=Gone\xff", b"second"]})
    assert entry.first("lastKnownParent") == b"OU=Gone\xff"
    assert entry.text("LASTKNOWNPARENT") == "OU=Gone\ufffd"
    assert (entry.first("cn"), entry.text("cn")) == (None, None)
