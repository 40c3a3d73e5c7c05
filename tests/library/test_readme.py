"""The README's library example runs as printed, and does what the README says it does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.command_line import trail_entries
from tests.conftest import ROOT

KNOWN_ID = "063EA4E1-220C-4293-BA01-4754620A96E7"
KNOWN_PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using it from Python", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "the section has no python example"
    return found.group(1)


def test_the_readme_library_example_runs_and_leaves_a_trail_line(trail_file: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # examples/config.toml names each computer after the folder its key file is in.
    assert lines[0] == f"{KNOWN_ID} PC-0042 {KNOWN_PASSWORD}"
    assert lines[-1].startswith("exit code 0")
    assert proc.stderr == ""
    (entry,) = trail_entries()
    assert (entry["key_id"], entry["reason"]) == (KNOWN_ID, "INC-4711")
    assert entry["command"] == ["-c", "bitkey_dir.Client.find"]
