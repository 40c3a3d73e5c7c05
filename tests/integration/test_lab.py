"""examples/lab/start keeps its DC running without a terminal (nohup, a script), until a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.fixtures import require_samba

pytestmark = pytest.mark.integration


def test_the_lab_runs_with_stdin_closed_until_sigterm(tmp_path: Path) -> None:
    require_samba()
    config = tmp_path / "lab.toml"
    lab = subprocess.Popen(
        [
            str(ROOT / "examples" / "lab" / "start"),
            "--workdir",
            str(tmp_path / "work"),
            "--config",
            str(config),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        seen = ""
        deadline = time.monotonic() + 180
        assert lab.stdout is not None
        while "Stop the lab" not in seen and time.monotonic() < deadline:
            line = lab.stdout.readline()
            assert line, f"the lab ended early:\n{seen}"
            seen += line
        time.sleep(2)
        assert lab.poll() is None, seen  # stdin at its end is not a reason to stop
        assert "[sources.lab-forest]" in config.read_text()
        os.killpg(lab.pid, signal.SIGTERM)
        assert lab.wait(timeout=60) == 0
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
