"""Modules that used to sit at the top of the package still import, for plugins written
against them: the same module object under the old name, with a DeprecationWarning."""

from __future__ import annotations

import subprocess
import sys

import pytest

import bitkey_dir
from tests.conftest import ROOT


@pytest.mark.parametrize("old", sorted(bitkey_dir.MOVED))
def test_an_old_name_is_the_new_module(old: str) -> None:
    code = (
        "import importlib, warnings\n"
        "warnings.simplefilter('error')\n"
        f"try:\n    importlib.import_module({old!r})\n"
        "except DeprecationWarning as exc:\n    print(exc)\n"
        "warnings.simplefilter('ignore')\n"
        f"print(importlib.import_module({old!r}) is "
        f"importlib.import_module({bitkey_dir.MOVED[old]!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    warning, same = done.stdout.splitlines()
    assert warning == f"{old} moved to {bitkey_dir.MOVED[old]}; the old name will be removed"
    assert same == "True"


def test_classes_from_old_and_new_names_are_the_same_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "bitkey_dir.model", raising=False)
    with pytest.warns(DeprecationWarning, match="moved to bitkey_dir.core.model"):
        from bitkey_dir.model import RecoveryKey as Old
    from bitkey_dir.core.model import RecoveryKey

    assert Old is RecoveryKey


def test_every_moved_module_exists_under_its_new_name() -> None:
    for new in bitkey_dir.MOVED.values():
        path = ROOT.joinpath(*new.split(".")).with_suffix(".py")
        assert path.is_file(), new
    assert not [
        old
        for old in bitkey_dir.MOVED
        if ROOT.joinpath(*old.split(".")).with_suffix(".py").exists()
    ]


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = bitkey_dir.nothing_here  # type: ignore[attr-defined]
