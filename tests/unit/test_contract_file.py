"""The file source keeps the source contract (bitkey_dir.testing), on the bundled examples."""

from __future__ import annotations

from tests.unit.file_contract import FileSourceContract


class TestFileSource(FileSourceContract):
    """Every test of the contract, collected here."""
