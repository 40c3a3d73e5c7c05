"""bitkey-dir: find BitLocker recovery keys wherever an organisation escrowed them.

The library is :mod:`bitkey_dir.api` (``find_keys``, ``export_keys``, ``audit_escrow``); its
functions are also reachable from here, imported lazily so that ``import bitkey_dir`` (and so
``bitkey-dir --version``) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from bitkey_dir.api import audit_escrow, export_keys, find_keys

__all__ = ["__version__", "audit_escrow", "export_keys", "find_keys"]
_API = frozenset({"audit_escrow", "export_keys", "find_keys"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from bitkey_dir import api

        return getattr(api, name)
    raise AttributeError(f"module 'bitkey_dir' has no attribute {name!r}")
