"""Sources kept open from one operation to the next, for a caller that makes many
(:class:`bitkey_dir.Client`).

Without a pool an operation opens its sources and closes each when done with it
(ops/run.py). With one, it borrows them: a source is lent to one operation at a time and,
when that operation ends, goes back to the pool instead of being closed, so that the next
operation reuses its LDAP connection or its sign-in. Operations running at once in several
threads each get sources of their own (another is opened when every kept one is lent out):
the contract (sources/base.py) lets a source assume it is never used from two threads at once.

Operations never close a source themselves: they :func:`release` it when they are done with
it, which closes a source of their own and leaves a lent one to go back to its pool when the
whole operation is over (some operations still read a source's name or principal after
releasing it). A source is closed rather than kept when it failed or its operation raised
(its connection may be broken), when it sat unused longer than ``keep_idle`` (directories
drop idle connections), or when sign-in changed (:meth:`SourcePool.forget`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from bitkey_dir.runtime.config import Config
from bitkey_dir.sources.base import HasParts, Source

log = logging.getLogger(__name__)

# Below Active Directory's MaxConnIdleTime (900 s by default), after which a DC drops an idle
# connection: a kept connection is then never a dead one.
KEEP_IDLE: Final = 300.0


@dataclass(eq=False)
class Kept:
    """One source the pool opened: how it was asked for, and what operations are given (its
    parts when opened as parts, else the source itself)."""

    spec: str
    as_parts: bool
    whole: Source
    pieces: list[Source]
    generation: int
    idle_since: float = field(default_factory=time.monotonic)
    spoiled: bool = False  # failed, or its operation raised: closed instead of kept

    def close(self) -> None:
        """Close it as an operation would have: each part, or the source itself."""
        for source in self.pieces if self.as_parts else [self.whole]:
            try:
                source.close()
            except Exception as exc:  # one source's failing close must not keep others open
                log.info("%s: closing failed (%s)", source.name, type(exc).__name__)


class Closes(Protocol):
    def close(self) -> None: ...


# Every source lent now, by identity, whichever pool lent it: release() needs no pool at hand.
_lent: dict[int, Kept] = {}
_lent_lock = threading.Lock()


def release(source: Closes, *, failed: bool = False) -> None:
    """The operation is done with ``source``. One it opened itself is closed now; one lent
    from a pool goes back when the operation ends, or is closed then if it ``failed``."""
    with _lent_lock:
        kept = _lent.get(id(source))
        if kept is not None and failed:
            kept.spoiled = True
    if kept is None:
        source.close()


def _lend(kept: Kept) -> None:
    with _lent_lock:
        for piece in kept.pieces:
            _lent[id(piece)] = kept


def _unlend(kept: Kept) -> None:
    with _lent_lock:
        for piece in kept.pieces:
            _lent.pop(id(piece), None)


class SourcePool:
    """Sources opened from one config and kept between operations, safe to share between
    threads; :meth:`lend` gives one operation its :class:`Lending`."""

    def __init__(self, config: Config, *, keep_idle: float = KEEP_IDLE) -> None:
        self.config = config
        self.keep_idle = keep_idle
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, bool], list[Kept]] = {}
        self._lent: set[Kept] = set()
        self._generation = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def held(self) -> int:
        """How many opened sources the pool holds, lent or idle."""
        with self._lock:
            return len(self._lent) + sum(len(idle) for idle in self._idle.values())

    @contextlib.contextmanager
    def lend(self) -> Iterator[Lending]:
        """One operation's loans; each goes back when the block ends (closed if the block
        raised)."""
        lending = Lending(self)
        try:
            yield lending
        except BaseException:
            lending.spoil()
            raise
        finally:
            self._give_back(lending.taken)

    def forget(self) -> None:
        """Close every kept source, and those lent now once they come back: after a sign-in
        or sign-out, a kept connection would go on with the credential it was opened with."""
        with self._lock:
            self._generation += 1
            idle = [kept for kept_list in self._idle.values() for kept in kept_list]
            self._idle.clear()
        for kept in idle:
            kept.close()

    def close(self) -> None:
        """Close every idle source now, and each lent one when its operation ends."""
        with self._lock:
            self._closed = True
        self.forget()

    def borrow(self, spec: str, *, as_parts: bool, lending: Lending) -> list[Source]:
        """A kept source for ``spec`` that no operation holds, or a newly opened one."""
        stale = []
        found = None
        with self._lock:
            self._check_open()
            idle = self._idle.get((spec, as_parts), [])
            now = time.monotonic()
            while idle and found is None:
                kept = idle.pop()  # the most recently used: the likeliest to be alive
                if now - kept.idle_since > self.keep_idle:
                    stale.append(kept)
                else:
                    found = kept
                    self._lent.add(kept)
                    lending.taken.append(kept)
        for kept in stale:
            kept.close()
        if found is not None:
            _lend(found)
            return found.pieces
        return self._open(spec, as_parts, lending)

    def _open(self, spec: str, as_parts: bool, lending: Lending) -> list[Source]:
        from bitkey_dir.sources import registry

        source = registry.open_source(self.config, spec)
        pieces = source.parts() if as_parts and isinstance(source, HasParts) else [source]
        kept = Kept(spec, as_parts, source, pieces, self._generation)
        with self._lock:
            if self._closed:
                kept.close()
                self._check_open()
            self._lent.add(kept)
            lending.taken.append(kept)
        _lend(kept)
        return pieces

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the source pool is closed")

    def _give_back(self, taken: Sequence[Kept]) -> None:
        closing = []
        with self._lock:
            for kept in taken:
                self._lent.discard(kept)
                _unlend(kept)
                if kept.spoiled or self._closed or kept.generation != self._generation:
                    closing.append(kept)
                else:
                    kept.idle_since = time.monotonic()
                    self._idle.setdefault((kept.spec, kept.as_parts), []).append(kept)
        for kept in closing:
            kept.close()


class Lending:
    """The sources one operation borrowed from a :class:`SourcePool`, opened as
    ``Run.open`` and ``Run.open_one`` open them without one."""

    def __init__(self, pool: SourcePool) -> None:
        self.pool = pool
        self.taken: list[Kept] = []

    def open(self, specs: Sequence[str]) -> list[Source]:
        """As ``registry.open_sources``: the named sources or the config's defaults, each
        source with parts as its parts."""
        chosen = list(dict.fromkeys(specs or self.pool.config.searched))
        if not chosen:
            from bitkey_dir.sources import registry

            raise registry.no_source(self.pool.config)
        return [
            piece
            for spec in chosen
            for piece in self.pool.borrow(spec, as_parts=True, lending=self)
        ]

    def open_one(self, spec: str) -> Source:
        """As ``registry.open_source``: a source with parts is one source."""
        return self.pool.borrow(spec, as_parts=False, lending=self)[0]

    def spoil(self) -> None:
        """Close what this operation borrowed when it ends, instead of keeping it."""
        for kept in self.taken:
            kept.spoiled = True
