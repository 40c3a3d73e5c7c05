"""Ask every chosen source, keep going when one fails, and put the answers in order.

The result says which sources answered, so that "nothing found" can be trusted: when a source
failed and nothing was found, the exit code is that failure's, not "not found".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from bitkey_dir.env import DEBUG_ENV
from bitkey_dir.errors import AuthError, BitkeyError, ExitCode
from bitkey_dir.interaction import run_in_copy
from bitkey_dir.model import Query, RecoveryKey
from bitkey_dir.sources.base import Source

Status = Literal["ok", "denied", "failed"]
_OLDEST: Final = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SourceStatus:
    name: str
    status: Status
    error: str | None = None
    exit_code: ExitCode = ExitCode.FOUND


@dataclass
class LookupResult:
    query: Query
    keys: list[RecoveryKey] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)

    @property
    def distinct_key_ids(self) -> int:
        return len({key.key_id for key in self.keys})

    @property
    def ambiguous(self) -> bool:
        """A Key ID prefix matched different keys: the agent must confirm more digits."""
        return (
            self.query.key_id is not None
            and not self.query.key_id.is_full
            and self.distinct_key_ids > 1
        )

    @property
    def exit_code(self) -> ExitCode:
        """0 if a password can be read out; 3 if keys exist but none is readable (rights);
        else a failed source's code; 1 only when every source answered "no key"."""
        if any(key.recovery_password is not None for key in self.keys):
            return ExitCode.FOUND
        if self.keys:
            return ExitCode.AUTH
        failures = [s.exit_code for s in self.sources if s.status != "ok"]
        if failures:
            return ExitCode.AUTH if ExitCode.AUTH in failures else max(failures)
        return ExitCode.NOT_FOUND


def _ask(source: Source, query: Query) -> tuple[list[RecoveryKey], list[str], SourceStatus]:
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(f"{source.name}: {message}")

    try:
        keys = list(source.find(query, warn))
    except AuthError as exc:
        return [], warnings, SourceStatus(source.name, "denied", exc.message, exc.exit_code)
    except BitkeyError as exc:
        return [], warnings, SourceStatus(source.name, "failed", exc.message, exc.exit_code)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        # The message of an unexpected exception is not vetted for secrets: show only its type.
        error = f"internal error ({type(exc).__name__}); set BITKEY_DIR_DEBUG=1 for details"
        return [], warnings, SourceStatus(source.name, "failed", error, ExitCode.SOURCE_FAILED)
    finally:
        source.close()
    return keys, warnings, SourceStatus(source.name, "ok")


def newest_first(keys: list[RecoveryKey]) -> list[RecoveryKey]:
    """Newest first; keys without a date after dated ones; ties in a stable, readable order."""
    by_id = sorted(keys, key=lambda k: (str(k.key_id), k.source, k.location or ""))
    return sorted(by_id, key=lambda k: k.created or _OLDEST, reverse=True)


def _conflicts(keys: list[RecoveryKey]) -> list[str]:
    passwords: dict[str, set[object]] = {}
    for key in keys:
        if key.recovery_password is not None:
            passwords.setdefault(str(key.key_id), set()).add(key.recovery_password)
    return [
        f"Key ID {key_id} has {len(found)} different recovery passwords; try each with the user"
        for key_id, found in passwords.items()
        if len(found) > 1
    ]


def _unique(keys: list[RecoveryKey]) -> list[RecoveryKey]:
    """One entry per key and source: the same key saved twice in a share is one key."""
    seen: set[tuple[object, ...]] = set()
    unique = []
    for key in keys:
        identity = (key.source, key.key_id, key.recovery_password, key.computer, key.deleted)
        if identity not in seen:
            seen.add(identity)
            unique.append(key)
    return unique


def find_keys(query: Query, sources: Sequence[Source]) -> LookupResult:
    """Ask ``sources`` (concurrently when there are several) and merge their answers."""
    if len(sources) == 1:
        answers = [_ask(sources[0], query)]
    else:

        def ask_one(source: Source) -> tuple[list[RecoveryKey], list[str], SourceStatus]:
            return _ask(source, query)

        ask = run_in_copy(ask_one)  # so that prompts and notices reach the same person
        with ThreadPoolExecutor(max_workers=len(sources)) as pool:
            answers = list(pool.map(ask, sources))
    result = LookupResult(query)
    for keys, warnings, status in answers:
        result.keys.extend(keys)
        result.warnings.extend(warnings)
        result.sources.append(status)
    result.keys = newest_first(_unique(result.keys))
    result.warnings.extend(_conflicts(result.keys))
    return result
