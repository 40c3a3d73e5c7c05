"""Real signals to a real export against the Samba DC, and against the Graph emulator:
whatever stops it, no clear-text temporary file (nor a half-written export) is left behind.
From Entra ID the signal comes while msgraph-sdk's event loop waits for Graph, and must
unwind it the same way (sources/entra/bridge.py).

The DC's answers pass through a slow relay on the DC's own address (so TLS still checks the
same certificate), which keeps the export streaming long enough to be interrupted half-way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from examples.lab.graph_emulator import GraphEmulator
from tests.conftest import ROOT
from tests.integration.fixtures import ADMIN, SOURCE, Directory, Entra, Lab

pytestmark = pytest.mark.integration


class SlowRelay:
    """Forwards one TCP port to another, holding each chunk from the server a moment."""

    def __init__(self, host: str, port: int, delay: float) -> None:
        self.upstream = (host, port)
        self.delay = delay
        self.server = socket.create_server((host, 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, self.delay), daemon=True
            ).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, delay: float) -> None:
        try:
            while chunk := source.recv(4096):
                time.sleep(delay)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def relay(samba_dc: Directory) -> Iterator[str]:
    parts = urlsplit(samba_dc.url)
    assert parts.hostname is not None
    forward = SlowRelay(parts.hostname, parts.port or 636, delay=0.05)
    try:
        yield f"ldaps://{parts.hostname}:{forward.port}"
    finally:
        forward.close()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stopped_export_leaves_no_clear_text_behind(
    lab: Lab, relay: str, tmp_path: Path, stop: signal.Signals
) -> None:
    config = lab.config(user=ADMIN, servers=[relay], page_size=1)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "keys.json"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bitkey_dir",
            "--config",
            str(config),
            "export",
            "-s",
            "lab",
            "-o",
            str(out),
        ],
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
    expected = 130 if stop == signal.SIGINT else 128 + stop
    assert child.returncode == expected, err
    assert not temporary.exists()
    assert sorted(os.listdir(folder)) == []  # neither the export nor its temporary file
    if stop != signal.SIGINT:
        assert f"stopped by {stop.name}" in err.decode()


def wait_for_keys_on_disk(folder: Path, child: subprocess.Popen[bytes]) -> Path:
    """The export's temporary file, once it holds some keys (the export is half-way)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        for name in os.listdir(folder):
            path = folder / name
            if name.endswith(".tmp") and path.stat().st_size > 0:
                return path
        time.sleep(0.01)
    raise AssertionError("the export never started writing")


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs Linux's /proc")
def test_a_running_bitkey_dir_cannot_dump_core() -> None:
    # Waiting for a password on standard input: a process with secrets about to arrive.
    child = subprocess.Popen(
        [sys.executable, "-m", "bitkey_dir", "verify"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        core: list[str] = []
        deadline = time.monotonic() + 30  # the limits are set as it starts: wait for that
        while time.monotonic() < deadline and core != ["0", "0"]:
            limits = Path(f"/proc/{child.pid}/limits").read_text()
            (line,) = [row for row in limits.splitlines() if row.startswith("Max core file size")]
            core = line.split()[4:6]  # soft and hard: 0 and 0, or a crash could still dump
            time.sleep(0.05)
        assert core == ["0", "0"], core
    finally:
        child.kill()
        child.communicate()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.usefixtures("fresh_kiota_registries")
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
        [
            sys.executable,
            "-m",
            "bitkey_dir",
            "--config",
            str(config),
            "export",
            "-s",
            SOURCE,
            "-o",
            str(folder / "keys.json"),
        ],
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
