"""bitkey-dir: find BitLocker recovery keys wherever an organisation escrowed them.

The library is :class:`Client` (``with Client(config=...) as client: client.find(...)``: every
command as a method, sources kept open between calls), with the values it deals in
(``RecoveryKey``, ``KeyId``), its errors (``BitkeyError``, each with an ``ExitCode``) and the
one-call functions of :mod:`bitkey_dir.api` (``find_keys``, ``export_keys``, ``audit_escrow``).
All are imported lazily, when first named, so that ``import bitkey_dir`` (and so
``bitkey-dir --version``) stays cheap.

The package is layered (docs/ARCHITECTURE.md): ``core`` (pure values and rules), ``runtime``
(config, credentials, interaction), ``store`` (trail, index, exports), ``sources``, ``ops``,
``render`` and ``cli``. Modules that used to sit at the top (``bitkey_dir.model``,
``bitkey_dir.config``, ...) still import, with a DeprecationWarning, so that plugins written
against them keep working.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, cast

__version__ = "0.1.0"

if TYPE_CHECKING:
    import importlib.abc
    from importlib.abc import Loader

    from bitkey_dir.api import audit_escrow, export_keys, find_keys
    from bitkey_dir.client import Client
    from bitkey_dir.core.errors import BitkeyError, ExitCode
    from bitkey_dir.core.model import KeyId, RecoveryKey

__all__ = [
    "BitkeyError",
    "Client",
    "ExitCode",
    "KeyId",
    "RecoveryKey",
    "__version__",
    "audit_escrow",
    "export_keys",
    "find_keys",
]
# Each name of the library offered here → the module that defines it, imported when first used.
_LAZY: Final = {
    "BitkeyError": "bitkey_dir.core.errors",
    "Client": "bitkey_dir.client",
    "ExitCode": "bitkey_dir.core.errors",
    "KeyId": "bitkey_dir.core.model",
    "RecoveryKey": "bitkey_dir.core.model",
    "audit_escrow": "bitkey_dir.api",
    "export_keys": "bitkey_dir.api",
    "find_keys": "bitkey_dir.api",
}

#: Where each module that used to sit at the top of the package lives now.
MOVED: Final = {
    f"bitkey_dir.{name}": f"bitkey_dir.{layer}.{name}"
    for layer, names in {
        "core": ("coverage", "display", "env", "errors", "model", "records", "rotation"),
        "runtime": (
            "atomic",
            "config",
            "credentials",
            "encryption",
            "interaction",
            "keystore",
            "small_files",
        ),
        "store": ("export_file", "key_index", "package_file", "trail"),
    }.items()
    for name in names
}


class _MovedModules:
    """``import bitkey_dir.model`` gives ``bitkey_dir.core.model`` itself (the same module
    object, so classes stay the same classes), with a DeprecationWarning naming the new path.

    A finder and loader by duck typing: importlib.abc would cost start-up 17 ms."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, cast("Loader", self))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {MOVED[spec.name]}; the old name will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """The module is already executed under its new name."""


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(cast("importlib.abc.MetaPathFinder", _MovedModules()))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if f"bitkey_dir.{name}" in MOVED:
        # ``from bitkey_dir import model``: the moved module, through the finder above.
        return importlib.import_module(f"bitkey_dir.{name}")
    raise AttributeError(f"module 'bitkey_dir' has no attribute {name!r}")
