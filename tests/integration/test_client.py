"""bitkey_dir.Client against the Samba DC and the Graph emulator: one connection or sign-in
reused from call to call, never one source in two threads, every source closed with the Client,
calls from inside a running event loop, and sign-in through the Client."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bitkey_dir import Client, ExitCode, api
from bitkey_dir.sources import registry
from bitkey_dir.sources.ad.connection import Connector
from bitkey_dir.sources.ad.source import ADSource
from bitkey_dir.sources.base import Source
from examples.lab.graph_emulator import GraphEmulator
from tests.integration.fixtures import SOURCE, Directory, Entra, Lab
from tests.integration.seed import HELPDESK

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]

THREADS = 8
COMPUTERS = ("WS001", "WS002", "LT001")  # below OU=Workstations: the helpdesk reads them


@dataclass
class Watch:
    """The AD sources a test opened, the binds made, and any source asked from two threads
    at once."""

    opened: list[ADSource] = field(default_factory=list)
    binds: int = 0
    shared: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    busy: set[int] = field(default_factory=set)

    def open_connections(self) -> list[str]:
        return [s.name for s in self.opened if s.connector._connection is not None]


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> Watch:
    seen = Watch()
    open_source = registry.open_source
    bind = Connector._open
    find = ADSource.find

    def opening(config: Any, spec: str) -> Source:
        source = open_source(config, spec)
        if isinstance(source, ADSource):
            with seen.lock:
                seen.opened.append(source)
        return source

    def binding(self: Connector, *args: Any) -> Any:
        with seen.lock:
            seen.binds += 1
        return bind(self, *args)

    def finding(self: ADSource, *args: Any) -> Any:
        with seen.lock:
            if id(self) in seen.busy:
                seen.shared.append(self.name)
            seen.busy.add(id(self))
        try:
            return find(self, *args)
        finally:
            with seen.lock:
                seen.busy.discard(id(self))

    monkeypatch.setattr(registry, "open_source", opening)
    monkeypatch.setattr(Connector, "_open", binding)
    monkeypatch.setattr(ADSource, "find", finding)
    return seen


def expected(samba_dc: Directory, computer: str) -> list[str]:
    return [key.key_id for key in samba_dc.keys(computer)]


def key_ids(result: Any) -> list[str]:
    return [str(key.key_id) for key in result.keys]


# -- Active Directory -------------------------------------------------------------------------


def test_ad_a_second_lookup_reuses_the_connection(
    lab: Lab, samba_dc: Directory, watch: Watch
) -> None:
    config = lab.config()
    with Client(config=config) as client:
        for computer in COMPUTERS:
            result = client.find(computer=computer, reason="INC-1")
            assert key_ids(result) == expected(samba_dc, computer)
        assert (len(watch.opened), watch.binds) == (1, 1)
        assert watch.open_connections() == ["lab"]
    assert watch.open_connections() == []
    # The one-call functions open and bind for each call, as before.
    for computer in COMPUTERS[:2]:
        assert key_ids(api.find_keys(computer=computer, config=config)) == expected(
            samba_dc, computer
        )
    assert (len(watch.opened), watch.binds) == (3, 3)
    assert watch.open_connections() == []


def test_ad_threads_share_one_client_each_with_a_connection_of_its_own(
    lab: Lab, samba_dc: Directory, watch: Watch, trail_file: Path
) -> None:
    calls = 4 * THREADS
    with Client(config=lab.config()) as client:

        def find(n: int) -> tuple[str, list[str], ExitCode]:
            computer = COMPUTERS[n % len(COMPUTERS)]
            result = client.find(computer=computer, reason=f"T-{n}", use_index=False)
            return computer, key_ids(result), result.exit_code

        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(find, range(calls)))
        assert all(code == ExitCode.FOUND for _, _, code in answers)
        assert [ids for _, ids, _ in answers] == [expected(samba_dc, c) for c, _, _ in answers]
        assert watch.shared == []
        assert 1 <= len(watch.opened) <= THREADS
        assert watch.binds == len(watch.opened)  # each connection bound once, then reused
    assert watch.open_connections() == []
    lines = trail_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == sum(len(ids) for _, ids, _ in answers)


def test_ad_calls_inside_a_running_event_loop(lab: Lab, samba_dc: Directory, watch: Watch) -> None:
    async def main() -> tuple[list[str], list[list[str]]]:
        with Client(config=lab.config()) as client:
            inline = client.find(computer="WS001")
            threaded = await asyncio.gather(
                *(asyncio.to_thread(client.find, computer=c) for c in COMPUTERS)
            )
        return key_ids(inline), [key_ids(result) for result in threaded]

    inline, threaded = asyncio.run(main())
    assert inline == expected(samba_dc, "WS001")
    assert threaded == [expected(samba_dc, c) for c in COMPUTERS]
    assert watch.shared == []
    assert watch.open_connections() == []


@pytest.mark.usefixtures("file_keyring")
def test_ad_login_through_the_client_then_find_then_logout(
    lab: Lab, samba_dc: Directory, watch: Watch, caplog: pytest.LogCaptureFixture
) -> None:
    config = lab.config(set_password=False)
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[keyring]\nallow_plaintext = true\n",
        encoding="utf-8",
    )
    with Client(config=config) as client:
        denied = client.find(computer="WS001")
        assert denied.exit_code == ExitCode.AUTH
        done = client.login("lab", secret=HELPDESK.password)
        assert done.source == "lab"
        assert key_ids(client.find(computer="WS001")) == expected(samba_dc, "WS001")
        assert client.logout("lab").removed
        (status,) = client.find(computer="WS001").sources
        assert status.status == "denied"
        shown = [repr(client), done.message, status.error or "", caplog.text]
    assert all(HELPDESK.password not in text for text in shown)
    assert watch.open_connections() == []


# -- Microsoft Entra ID ------------------------------------------------------------------------


def tokens(graph: GraphEmulator) -> int:
    return graph.count(r"oauth2/v2\.0/token$")


def test_entra_a_second_lookup_reuses_the_sign_in(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    keys = [graph.add_recovery_key(graph.add_device(f"PC-{n:04}")) for n in range(3)]
    with Client(config=entra.config()) as client:
        for key in keys:
            assert key_ids(client.find(key_id=key.id[:8], sources=SOURCE)) == [key.id.upper()]
    assert tokens(graph) == 1
    # The one-call functions sign in for each call (no keyring here to keep tokens in).
    for key in keys:
        assert key_ids(api.find_keys(key_id=key.id[:8], config=entra.config())) == [key.id.upper()]
    assert tokens(graph) == 1 + len(keys)


def test_entra_from_a_running_event_loop_through_a_worker_thread(
    entra: Entra, graph: GraphEmulator
) -> None:
    # What the Client's docstring advises from async code: the call runs in a thread of its own.
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))

    async def main() -> Any:
        with Client(config=entra.config()) as client:
            return await asyncio.to_thread(client.find, key_id=key.id[:8])

    result = asyncio.run(main())
    assert [(s.status, s.error) for s in result.sources] == [("ok", None)]
    assert key_ids(result) == [key.id.upper()]
