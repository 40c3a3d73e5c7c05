"""The stand-in sources (stand_ins.py), registered for the tests that ask for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.library import stand_ins
from tests.library.stand_ins import Ledger


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    """The stand-in source types, configurable for this test, and what they saw."""
    return stand_ins.registered(monkeypatch)


@pytest.fixture
def stand_in_config(tmp_path: Path, ledger: Ledger) -> Path:
    """A config of stand-ins (stand_ins.config_file)."""
    return stand_ins.config_file(tmp_path)
