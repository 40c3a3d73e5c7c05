"""What every operation is given, and how it opens, asks and closes its sources.

A :class:`Run` carries the configuration, the :class:`~bitkey_dir.runtime.interaction.Interaction`
that reaches the person (the terminal for the CLI, Quiet for the library) and how the
operation was asked for, which the access trail records. Sources are opened here, asked
concurrently when there are several, and always released (ops/pool.py): closed, or under a
:class:`~bitkey_dir.Client` given back to the pool they were borrowed from.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, Generic, Protocol, TypeVar

from bitkey_dir.core.env import DEBUG_ENV
from bitkey_dir.core.errors import BitkeyError, SourceError
from bitkey_dir.ops.outcome import SourceStatus
from bitkey_dir.ops.pool import Lending, release
from bitkey_dir.runtime import interaction as interactions
from bitkey_dir.runtime.config import Config
from bitkey_dir.runtime.interaction import Interaction
from bitkey_dir.sources.base import Source, Warn

T = TypeVar("T")
AT_ONCE: Final = 16  # sources asked at the same time: tenants by the hundred must queue


class Asked(Protocol):
    """What :func:`ask` needs of a source: its name, and closing it (when it is released)."""

    @property
    def name(self) -> str: ...

    def close(self) -> None: ...


S = TypeVar("S", bound=Asked)


@dataclass(frozen=True)
class Run:
    """One operation's context: the config, who to talk to, and the command for the trail."""

    config: Config
    interaction: Interaction = field(default=interactions.QUIET)
    command: tuple[str, ...] = ()
    pool: Lending | None = None  # sources borrowed and given back, not opened and closed

    @contextlib.contextmanager
    def active(self) -> Iterator[Run]:
        """The block runs with this run's interaction (prompts, notices, progress) and a
        fresh keystore (the keyring is checked once, and at most one notice is given), and
        no source yet claiming a secret's environment variable."""
        from bitkey_dir.runtime import credentials, keystore

        with interactions.using(self.interaction), credentials.claims():
            keystore.begin_run(allow_plaintext=self.config.allow_plaintext_keyring)
            yield self

    def open(self, specs: Sequence[str]) -> list[Source]:
        """The sources named (names, paths or ldaps:// URLs), or the config's defaults."""
        if self.pool is not None:
            return _claiming(self.pool.open(specs))
        from bitkey_dir.sources import registry

        return _claiming(registry.open_sources(self.config, list(specs)))

    def open_one(self, spec: str) -> Source:
        if self.pool is not None:
            return _claiming([self.pool.open_one(spec)])[0]
        from bitkey_dir.sources import registry

        return _claiming([registry.open_source(self.config, spec)])[0]


def _claiming(sources: list[Source]) -> list[Source]:
    """``sources``, each noted as reading its secret's variable in this operation, so that a
    bare BITKEY_DIR_PASSWORD is never sent to two accounts (runtime/credentials.py)."""
    from bitkey_dir.runtime import credentials
    from bitkey_dir.sources.base import SignsIn

    for source in sources:
        wanted = source.login_secret if isinstance(source, SignsIn) else None
        if wanted is not None:
            credentials.claim(wanted)
    return sources


@dataclass
class Answer(Generic[T]):
    """What one source gave an operation: its result (when it answered), its warnings (each
    prefixed with the source's name) and its status."""

    status: SourceStatus
    value: T | None = None
    warnings: list[str] = field(default_factory=list)


def ask(source: S, work: Callable[[S, Warn], T]) -> Answer[T]:
    """Run ``work`` against one source and close it; failures become its status, so that one
    failing source never hides what the others found."""
    from bitkey_dir.runtime import credentials

    credentials.check_shared()  # before any source signs in: never one password for two
    warnings: list[str] = []
    answered = False

    def warn(message: str) -> None:
        warnings.append(f"{source.name}: {message}")

    try:
        value = work(source, warn)
        answered = True
    except BitkeyError as exc:
        return Answer(SourceStatus.failed(source.name, exc), None, warnings)
    except ModuleNotFoundError as exc:
        # A broken installation, not a failing directory: say what to do about it.
        missing = SourceError(
            f"the Python package {exc.name} is missing: reinstall bitkey-dir (pip install "
            "--force-reinstall bitkey-dir, or pip install . in a checkout)"
        )
        return Answer(SourceStatus.failed(source.name, missing), None, warnings)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        return Answer(SourceStatus.crashed(source.name, exc), None, warnings)
    finally:
        # A source that failed may hold a broken connection: a pool closes it, not keeps it.
        release(source, failed=not answered)
    return Answer(SourceStatus.answered(source.name), value, warnings)


def ask_all(sources: Sequence[S], work: Callable[[S, Warn], T]) -> list[Answer[T]]:
    """:func:`ask` every source, concurrently when there are several, in their order."""
    if len(sources) <= 1:
        return [ask(source, work) for source in sources]

    def one(source: S) -> Answer[T]:
        return ask(source, work)

    # Each worker runs in a copy of this context: prompts and notices reach the same person.
    with ThreadPoolExecutor(max_workers=min(len(sources), AT_ONCE)) as pool:
        return list(pool.map(interactions.run_in_copy(one), sources))
