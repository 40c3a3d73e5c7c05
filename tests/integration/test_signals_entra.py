"""A real SIGTERM to a real export from Entra ID (the Graph emulator, answering slowly): the
export unwinds as it does for AD (test_signals.py), through the event loop that drives
msgraph-sdk (sources/entra/bridge.py): exit 128 + the signal, no clear-text export and no
temporary file left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from examples.lab.graph_emulator import GraphEmulator
from tests.conftest import ROOT
from tests.integration.fixtures import SOURCE, Entra
from tests.integration.test_signals import wait_for_keys_on_disk

EXPORT = (sys.executable, "-m", "bitkey_dir")
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_entra_export_leaves_no_clear_text_behind(
    entra: Entra, graph: GraphEmulator, tmp_path: Path, stop: signal.Signals
) -> None:
    entra.daemon()
    graph.add_generated_keys(100)
    graph.recovery_keys_page_size = 5
    # Each request takes a while: the export is still running, and the signal comes while
    # the event loop waits for Graph's answer, in the middle of asyncio's own code.
    graph.latency = 0.3
    config = entra.config()
    folder = tmp_path / "out"
    folder.mkdir()
    child = subprocess.Popen(
        [*EXPORT, "--config", str(config), "export", "-s", SOURCE, "-o", str(folder / "keys.json")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        temporary = wait_for_keys_on_disk(folder, child)
        child.send_signal(stop)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 128 + stop, err.decode()
    assert not temporary.exists()
    assert sorted(os.listdir(folder)) == []
    assert b"Traceback" not in err
    assert f"stopped by {stop.name}" in err.decode()
