"""The library interface: look keys up without the command line.

>>> from bitkey_dir import find_keys
>>> result = find_keys(key_id="063EA4E1", sources=["examples/keys"])  # doctest: +SKIP
>>> [key.computer for key in result.keys]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bitkey_dir.config import load_config
from bitkey_dir.lookup import LookupResult
from bitkey_dir.lookup import find_keys as _find
from bitkey_dir.model import ComputerName, KeyId, Query
from bitkey_dir.sources.registry import open_sources


def find_keys(
    *,
    key_id: str | None = None,
    computer: str | None = None,
    sources: Sequence[str] = (),
    config: Path | None = None,
    include_deleted: bool = False,
) -> LookupResult:
    """Keys by Key ID (full or 8+ digit prefix) or computer name, from configured or given sources.

    Raises :class:`bitkey_dir.errors.InputError` for bad input or configuration; source
    failures are reported in ``result.sources`` and ``result.exit_code``, not raised.
    """
    query = Query(
        key_id=KeyId.parse(key_id) if key_id is not None else None,
        computer=ComputerName.parse(computer) if computer is not None else None,
        include_deleted=include_deleted,
    )
    return _find(query, open_sources(load_config(config), list(sources)))
