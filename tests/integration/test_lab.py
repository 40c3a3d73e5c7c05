"""examples/lab/start keeps its labs running without a terminal (nohup, a script), until a
signal: the AD lab (a Samba DC, as root) and the Entra lab (the Graph emulator, no root)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from examples.lab import entra
from tests.command_line import run_process
from tests.conftest import ROOT
from tests.integration.fixtures import lab_started as started
from tests.integration.fixtures import require_samba

pytestmark = pytest.mark.integration


def stops_on_sigterm(lab: subprocess.Popen[str]) -> None:
    assert lab.poll() is None  # stdin at its end is not a reason to stop
    os.killpg(lab.pid, signal.SIGTERM)
    assert lab.wait(timeout=60) == 0


def test_the_lab_runs_with_stdin_closed_until_sigterm(tmp_path: Path) -> None:
    require_samba()
    config = tmp_path / "lab.toml"
    with started("--workdir", str(tmp_path / "work"), "--config", str(config)) as (lab, _):
        time.sleep(2)
        assert "[sources.lab-forest]" in config.read_text()
        stops_on_sigterm(lab)


def test_the_entra_lab_answers_a_lookup_until_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "lab.toml"
    with socket.socket() as taken:  # the lab's port is in use: it takes another one
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ("--entra", "--port", str(port), "--workdir", str(tmp_path / "work"))
        with started(*args, "--config", str(config)) as (lab, said):
            assert f"Port {port} is taken" in said
            key = entra.PC_0042_NEW
            assert entra.CLIENT_SECRET in said  # public, and printed for people to use
            assert f"--key-id {key.id[:8].upper()}" in said
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "NO_PROXY": "127.0.0.1",  # not a proxy from the environment
                "BITKEY_DIR_CLIENT_SECRET": entra.CLIENT_SECRET,
            }
            found = run_process(
                *("--config", config, "find", "-s", entra.SOURCE, "-k", key.id[:8], "-f", "key"),
                env=env,
                secrets=[key.password],
                never_shown=[entra.CLIENT_SECRET],
            )
            assert (found.code, found.out) == (0, key.password + "\n"), found.err
            stops_on_sigterm(lab)
