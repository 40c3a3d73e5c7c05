"""The Key ID index as operations: refresh it from the sources, say what it holds, clear it.

A refresh lists each source's keys without their passwords (``ListsKeys``; otherwise
``iter_keys``, whose passwords are dropped on the spot), several sources at once, and writes
from this thread only: the workers hand their entries over a bounded queue, so memory stays
flat whatever the size of a tenant. A source that fails keeps its previous index.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bitkey_dir.core.errors import ExitCode, InputError, SourceError
from bitkey_dir.core.model import KeyEntry
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.pool import release
from bitkey_dir.ops.run import Answer, Run, ask_all
from bitkey_dir.runtime.config import SourceConfig
from bitkey_dir.sources.base import Source, Warn, entries_of
from bitkey_dir.store import key_index
from bitkey_dir.store.key_index import KeyIndex, SourceState

_BATCH: Final = 1000  # entries a worker hands over at once
_QUEUED: Final = 16  # batches waiting at most: a fast source waits for the writer


@dataclass(frozen=True)
class Refreshed:
    """One source's new index."""

    source: str
    keys: int
    deleted: int
    seconds: float


@dataclass
class RefreshResult:
    """What was indexed, per source, and each source's status (a failed source kept its
    previous index)."""

    path: Path
    refreshed: list[Refreshed] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return exit_code(ExitCode.FOUND, self.sources, every_source_needed=True)


@dataclass(frozen=True)
class IndexRow:
    """One configured source (or one the index still holds) as `index status` shows it."""

    source: str
    configured: bool
    state: SourceState | None  # None: never indexed, or indexed as another directory
    max_age: float | None
    other_directory: bool = False  # indexed under this name, but not as the configured one

    @property
    def due(self) -> bool:
        """An automatic refresh would run before the next lookup that uses the index."""
        if self.max_age is None or not self.configured:
            return False
        return self.state is None or self.state.age() > self.max_age


@dataclass
class IndexReport:
    path: Path
    exists: bool
    rows: list[IndexRow] = field(default_factory=list)


def configured(run: Run, name: str) -> SourceConfig | None:
    """The config of a source, or of the source a part (``NAME/TENANT``) belongs to."""
    return run.config.sources.get(name) or run.config.sources.get(name.partition("/")[0])


def indexable(run: Run, source: Source) -> bool:
    """Only configured sources are indexed: a path or URL given ad hoc is read directly."""
    return configured(run, source.name) is not None


def fingerprint(source: Source) -> str:
    """What identifies the directory behind a source name: its own description."""
    return source.describe()


def refresh(run: Run, sources: Sequence[str] = (), *, due_only: bool = False) -> RefreshResult:
    """List every key of ``sources`` (default: every configured source) into the index.

    With ``due_only``, only the sources whose ``index_max_age`` has passed (for a timer
    that runs often). Raises InputError for a source that is not configured.
    """
    names = _configured(run, sources)
    with run.active():
        index = key_index.open_index(create=True)
        assert index is not None  # noqa: S101 - create=True
        with index:
            if due_only:
                report = _rows(run, index)
                names = [
                    row.source
                    for row in report
                    if row.due and (row.source in names or row.source.partition("/")[0] in names)
                ]
            return _refresh(run, index, names)


def refresh_due(run: Run, index: KeyIndex, sources: Sequence[Source]) -> RefreshResult | None:
    """Before a lookup: refresh the sources whose index is older than their
    ``index_max_age`` (or missing), telling the person why it takes a while."""
    due = []
    for source in sources:
        oldest = max_age(run, source.name)
        if oldest is None or not indexable(run, source):
            continue
        state = index.state(source.name, fingerprint(source))
        if state is None or state.age() > oldest:
            due.append(source.name)
    if not due:
        return None
    run.interaction.notice(
        f"refreshing the Key ID index of {', '.join(due)} (older than index_max_age, or "
        "never built); a timer running bitkey-dir index refresh keeps this off lookups"
    )
    return _refresh(run, index, due)


def _refresh(run: Run, index: KeyIndex, names: Sequence[str]) -> RefreshResult:
    result = RefreshResult(index.path)
    if not names:
        return result
    opened = run.open(names)  # a source with parts (tenants): each part indexed on its own
    fingerprints = {source.name: fingerprint(source) for source in opened}
    listing = _Listing(index)
    try:
        answers = listing.run(run, opened)
    except BaseException:
        index.unstage(listing.token)
        raise
    for answer in answers:
        status = answer.status
        result.sources.append(status)
        result.warnings.extend(answer.warnings)
        if status.status == "ok":
            took = listing.took[status.name]
            state = index.commit(listing.token, status.name, fingerprints[status.name], took)
            result.refreshed.append(Refreshed(status.name, state.keys, state.deleted, took))
        else:
            index.unstage(listing.token, status.name)
    return result


class _Listing:
    """Sources listed by workers, their entries staged by the calling thread."""

    def __init__(self, index: KeyIndex) -> None:
        self.index = index
        self.token = index.new_token()
        self.took: dict[str, float] = {}
        self.handed: queue.Queue[tuple[str, list[KeyEntry] | None]] = queue.Queue(_QUEUED)
        self.stop = threading.Event()  # the writer gave up: workers end at their next entry
        self.started = time.monotonic()

    def list_into_queue(self, source: Source, warn: Warn) -> int:
        count = 0
        batch: list[KeyEntry] = []
        for entry in entries_of(source, warn):
            if self.stop.is_set():
                raise SourceError("the refresh was stopped")
            batch.append(entry)
            if len(batch) >= _BATCH:
                count += len(batch)
                self.handed.put((source.name, batch))
                batch = []
        count += len(batch)
        self.handed.put((source.name, batch))
        self.took[source.name] = time.monotonic() - self.started
        return count

    def run(self, run: Run, opened: Sequence[Source]) -> list[Answer[int]]:
        answers: list[Answer[int]] = []
        context = contextvars.copy_context()  # the workers reach the same person

        def work() -> None:
            try:
                answers.extend(context.run(ask_all, opened, self.list_into_queue))
            finally:
                self.handed.put(("", None))  # the end, also after a crash

        worker = threading.Thread(target=work, name="index-refresh", daemon=True)
        worker.start()
        pending: dict[str, list[KeyEntry]] = {}
        try:
            for name, entry in run.interaction.progress(_drain(self.handed), "keys listed"):
                batch = pending.setdefault(name, [])
                batch.append(entry)
                if len(batch) >= _BATCH:
                    self.index.stage(self.token, name, batch)
                    pending[name] = []
            for name, batch in pending.items():
                self.index.stage(self.token, name, batch)
        finally:
            self.stop.set()
            while worker.is_alive():  # empty the queue, so that no worker waits on it forever
                with contextlib.suppress(queue.Empty):
                    self.handed.get(timeout=0.1)
        return answers


def _drain(
    handed: queue.Queue[tuple[str, list[KeyEntry] | None]],
) -> Iterator[tuple[str, KeyEntry]]:
    """Entries one by one as the workers hand them over, for the progress display."""
    while True:
        name, batch = handed.get()
        if batch is None:
            return
        for entry in batch:
            yield name, entry


def status(run: Run) -> IndexReport:
    """Every configured source and every source the index holds: age, counts, due."""
    path = key_index.index_path()
    with run.active():
        index = key_index.open_index()
        if index is None:
            report = IndexReport(path, exists=False)
            report.rows = [
                IndexRow(name, True, None, config.index_max_age)
                for name, config in run.config.sources.items()
            ]
            return report
        with index:
            return IndexReport(path, exists=True, rows=_rows(run, index))


def _rows(run: Run, index: KeyIndex) -> list[IndexRow]:
    states = {state.source: state for state in index.states()}
    rows = []
    for name, config in run.config.sources.items():
        for source in run.open([name]):  # each tenant of a multi-tenant source
            try:
                directory = fingerprint(source)
            finally:
                release(source)
            state = states.pop(source.name, None)
            other = state is not None and state.fingerprint != directory
            rows.append(
                IndexRow(source.name, True, None if other else state, config.index_max_age, other)
            )
    rows += [IndexRow(name, False, state, None) for name, state in states.items()]
    return rows


def clear(run: Run, sources: Sequence[str] = ()) -> list[str]:
    """Drop the named sources from the index (all of it when none is named); the names
    dropped. Clearing never needs the sources themselves, so a removed source can go too.

    Only an index is cleared: a path holding anything else (a link, a pipe, a device,
    another program's file) raises InputError and is left as it is. A damaged index is
    removed whole; with ``sources`` named it raises DamagedIndex instead (exit 4).
    """
    with run.active():
        try:
            index = key_index.open_index()
            if index is None:
                return []
            with index:
                return index.clear(sources)
        except key_index.DamagedIndex as exc:
            if sources:
                raise key_index.DamagedIndex(
                    f"{exc.message.partition(': run ')[0]}: run bitkey-dir index clear "
                    "without --source, which removes the whole file"
                ) from None
            # Damaged, or from a newer version: clearing it all is removing the file, which
            # remove_index does only for a file that is recognisably an index.
            return ["(the whole index file)"] if key_index.remove_index() else []


def _configured(run: Run, sources: Sequence[str]) -> list[str]:
    every = list(run.config.sources)
    for name in sources:
        if configured(run, name) is None:
            known = ", ".join(every) or f"none configured in {run.config.path}"
            raise InputError(
                f"only configured sources are indexed, and {name!r} is not one ({known})"
            )
    names = list(dict.fromkeys(sources)) or every
    if not names:
        raise InputError(f"no source to index: none is configured in {run.config.path}")
    return names


def max_age(run: Run, name: str) -> float | None:
    config = configured(run, name)
    return config.index_max_age if config is not None else None
