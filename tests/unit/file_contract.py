"""The source contract (bitkey_dir.testing) set up for the file source on the bundled examples:
run by test_contract_file.py, and broken on purpose by test_contract_suite.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bitkey_dir.core.model import KeyId, RecoveryKey, RecoveryPassword
from bitkey_dir.testing import Sealed, SourceContract
from tests.conftest import EXAMPLES


def key(key_id: str, password: str, computer: str, *, deleted: bool = False) -> RecoveryKey:
    return RecoveryKey(
        "contract",
        KeyId.parse(key_id),
        RecoveryPassword.parse(password),
        computer=computer,
        deleted=deleted,
    )


class FileSourceContract(SourceContract):
    """The contract, on the bundled key files and exports."""

    def settings(self) -> dict[str, object]:
        return {
            "type": "file",
            "path": [str(EXAMPLES / "keys"), str(EXAMPLES / "exports")],
            "computer_from": "folder",
        }

    def expected_keys(self) -> Sequence[RecoveryKey]:
        return [
            key(
                "063EA4E1-220C-4293-BA01-4754620A96E7",
                "531058-303050-716078-383614-460922-106975-083446-139161",
                "PC-0042",
            ),
            key(
                "9A4F4A9F-970A-4A4F-9074-37DEFBC7DDB7",
                "054373-554235-200475-040854-038698-430155-074503-075394",
                "PC-0042",
                deleted=True,
            ),
        ]

    def failing_settings(self) -> dict[str, object]:
        return {"type": "file", "path": str(EXAMPLES / "no-such-folder")}

    def read_paths(self) -> Sequence[Path]:
        return [EXAMPLES / "keys", EXAMPLES / "exports"]

    def sealed(self, folder: Path) -> Sealed:
        """One record of the bundled CSV export, encrypted to a new age key."""
        import pyrage

        header, record = (EXAMPLES / "exports" / "keys-2025-10.csv").read_text().splitlines()[:2]
        identity = pyrage.x25519.Identity.generate()
        (folder / "identity.txt").write_text(f"# a test's own key\n{identity}\n")
        (folder / "exports").mkdir()
        sealed = pyrage.encrypt(f"{header}\n{record}\n".encode(), [identity.to_public()])
        (folder / "exports" / "keys.csv.age").write_bytes(sealed)
        computer, key_id, password = record.split(",")[1:4]
        return Sealed(
            {"type": "file", "path": str(folder / "exports")},
            [folder / "identity.txt"],
            [key(key_id, password, computer)],
        )
