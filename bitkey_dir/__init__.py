"""bitkey-dir: find BitLocker recovery keys wherever an organisation escrowed them.

The library entry point is :func:`find_keys`; it is imported lazily so that ``import
bitkey_dir`` (and so ``bitkey-dir --version``) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from bitkey_dir.api import find_keys

__all__ = ["__version__", "find_keys"]


def __getattr__(name: str) -> Any:
    if name == "find_keys":
        from bitkey_dir.api import find_keys

        return find_keys
    raise AttributeError(f"module 'bitkey_dir' has no attribute {name!r}")
