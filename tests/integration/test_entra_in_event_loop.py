"""The library with an Entra source, called from code that already runs an event loop (a
notebook, an async web service): msgraph-sdk is asynchronous, and the source must not try to
start a second loop in a thread that runs one. Each call below is a plain synchronous call
made inside ``asyncio.run(main())``, against the Graph emulator."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from bitkey_dir import api
from bitkey_dir.core.errors import ExitCode
from bitkey_dir.core.model import ComputerName, KeyId, Query
from bitkey_dir.runtime.config import load_config
from bitkey_dir.sources.registry import open_source
from examples.lab.graph_emulator import GraphEmulator
from tests.integration.fixtures import SOURCE, Entra, day

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]
T = TypeVar("T")


def in_a_running_loop(call: Callable[[], T]) -> T:
    """``call()`` made synchronously from a coroutine, as a notebook cell would make it."""

    async def main() -> T:
        asyncio.get_running_loop()  # the point: a loop runs in this thread
        return call()

    return asyncio.run(main())


def test_find_keys_inside_a_running_loop_gets_the_key(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    key = graph.add_recovery_key(pc, created=day(2))
    graph.add_recovery_key(graph.add_device("PC-0043"), created=day(1))
    config = entra.config()

    # By a Key ID prefix: the listing, the key read and its device's name, three requests.
    result = in_a_running_loop(lambda: api.find_keys(key_id=key.id[:8], config=config))
    assert [(s.name, s.status, s.error) for s in result.sources] == [("cloud", "ok", None)]
    assert result.exit_code == ExitCode.FOUND
    (found,) = result.keys
    assert str(found.key_id) == key.id.upper()
    assert found.computer == "PC-0042"
    assert found.recovery_password is not None
    assert found.recovery_password.reveal() == key.key
    # The loop's thread ends with the call (the emulator's own threads may linger).
    assert [t.name for t in threading.enumerate() if t.name.startswith("bitkey-dir")] == []


def test_find_keys_twice_in_the_same_loop(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    keys = [graph.add_recovery_key(pc, created=day(n)) for n in (1, 2)]
    config = entra.config()

    def twice() -> list[api.LookupResult]:
        return [
            api.find_keys(computer="PC-0042", config=config),  # devices, keys, then a $batch
            api.find_keys(key_id=keys[0].id, config=config),
        ]

    by_name, by_id = in_a_running_loop(twice)
    assert (by_name.exit_code, by_id.exit_code) == (ExitCode.FOUND, ExitCode.FOUND)
    assert sorted(str(k.key_id) for k in by_name.keys) == sorted(k.id.upper() for k in keys)
    assert [str(k.key_id) for k in by_id.keys] == [keys[0].id.upper()]
    assert {k.computer for k in by_name.keys + by_id.keys} == {"PC-0042"}


@pytest.mark.parametrize("in_a_loop", [True, False], ids=["in-a-running-loop", "no-loop"])
def test_one_source_answers_call_after_call(
    entra: Entra, graph: GraphEmulator, in_a_loop: bool
) -> None:
    # Each call has its own loop and HTTP client: nothing of one call's loop is met again.
    entra.daemon()
    pc = graph.add_device("PC-0042")
    keys = [graph.add_recovery_key(pc, created=day(n)) for n in (1, 2, 3)]
    source = open_source(load_config(entra.config()), SOURCE)
    warned: list[str] = []

    def calls() -> list[set[str]]:
        answers = []
        for _ in range(2):
            by_name = source.find(Query(computer=ComputerName.parse("pc-00*")), warned.append)
            by_id = source.find(Query(key_id=KeyId.parse(keys[0].id)), warned.append)
            every = source.iter_keys(warned.append)
            first = next(every)  # a stream left after one key, then asked again whole
            every.close()
            answers += [
                {str(k.key_id) for k in by_name},
                {str(k.key_id) for k in by_id},
                {str(first.key_id)},
                {str(k.key_id) for k in source.iter_keys(warned.append)},
            ]
        return answers

    try:
        answers = in_a_running_loop(calls) if in_a_loop else calls()
    finally:
        source.close()
    every = {k.id.upper() for k in keys}
    assert answers == [every, {keys[0].id.upper()}, answers[2], every] * 2
    assert answers[2] <= every
    assert warned == []


def test_export_inside_a_running_loop_streams_every_key(
    entra: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    # An export consumes the keys as an async stream, step by step, from synchronous code.
    entra.daemon()
    graph.recovery_keys_page_size = 3
    pcs = [graph.add_device(f"PC-{n:04d}") for n in range(4)]
    keys = [graph.add_recovery_key(pc, created=day(n)) for n, pc in enumerate(pcs * 2)]
    out = tmp_path / "entra.json"
    config = entra.config()

    result = in_a_running_loop(lambda: api.export_keys(source="cloud", output=out, config=config))
    assert result.failure is None
    assert (result.keys, result.exit_code) == (len(keys), ExitCode.FOUND)
    records = json.loads(out.read_text(encoding="utf-8"))["keys"]
    assert sorted(r["key_id"] for r in records) == sorted(k.id.upper() for k in keys)


def test_a_refusal_inside_a_running_loop_keeps_its_exit_code(
    entra: Entra, graph: GraphEmulator
) -> None:
    # Graph's 403 is raised on the loop's own thread: it arrives as the AuthError it is.
    entra.daemon("BitlockerKey.ReadBasic.All", "Device.Read.All")
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    config = entra.config()

    result = in_a_running_loop(lambda: api.find_keys(key_id=key.id, config=config))
    (status,) = result.sources
    assert (status.status, status.exit_code) == ("denied", ExitCode.AUTH)
    assert "BitlockerKey.Read.All" in (status.error or "")
    assert result.exit_code == ExitCode.AUTH
    assert graph.key_reads == []
