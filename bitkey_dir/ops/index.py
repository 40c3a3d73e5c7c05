"""The Key ID index as operations: refresh it from the sources, say what it holds, clear it.

A refresh lists each source's keys without their passwords (``ListsKeys``; otherwise
``iter_keys``, whose passwords are dropped on the spot; ``ListsKeysByDevice`` device by
device, see index_listing.py), several sources at once, and writes from this thread only.
A source that fails keeps its previous index.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bitkey_dir.core.errors import ExitCode, InputError
from bitkey_dir.ops.index_listing import HOWS, Listing, Refreshed, choose
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.pool import release
from bitkey_dir.ops.run import Run
from bitkey_dir.runtime.config import SourceConfig
from bitkey_dir.sources.base import ListsKeysByDevice, Source
from bitkey_dir.store import key_index
from bitkey_dir.store.index_passes import PASSES, Pass, PassState, ended
from bitkey_dir.store.key_index import KeyIndex, SourceState

__all__ = [
    "HOWS",
    "PASSES",
    "IndexReport",
    "IndexRow",
    "PassState",
    "RefreshResult",
    "Refreshed",
    "refresh",
]


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


def refresh(
    run: Run, sources: Sequence[str] = (), *, due_only: bool = False, how: str = "auto"
) -> RefreshResult:
    """List every key of ``sources`` (default: every configured source) into the index.

    With ``due_only``, only the sources whose ``index_max_age`` has passed (for a timer
    that runs often). ``how``: one of HOWS (index_listing.py says what each does).
    Raises InputError for a source that is not configured, or an unknown ``how``.
    """
    if how not in HOWS:
        raise InputError(f"a refresh is one of {', '.join(HOWS)}, not {how!r}")
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
            return _refresh(run, index, names, how)


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
    return _refresh(run, index, due, "auto", before_lookup=True)


def _refresh(
    run: Run, index: KeyIndex, names: Sequence[str], how: str, *, before_lookup: bool = False
) -> RefreshResult:
    result = RefreshResult(index.path)
    if not names:
        return result
    opened = run.open(names)  # a source with parts (tenants): each part indexed on its own
    fingerprints = {source.name: fingerprint(source) for source in opened}
    plan: dict[str, tuple[Pass, str | None]] = {}
    for source in opened:
        state, cursor = None, None
        if isinstance(source, ListsKeysByDevice):
            # What cannot be read is listed afresh: a full listing replaces every row.
            with contextlib.suppress(key_index.DamagedIndex):
                state = index.state(source.name, fingerprints[source.name])
                cursor = index.cursor(source.name) if state is not None else None
        config = configured(run, source.name)
        kind = choose(config, source, state, cursor, how, before_lookup=before_lookup)
        plan[source.name] = (kind, cursor)
    listing = Listing(index, plan)
    try:
        answers = listing.run(run, opened)
    except BaseException:
        index.unstage(listing.token)
        raise
    for answer in answers:
        status = answer.status
        result.sources.append(status)
        result.warnings.extend(answer.warnings)
        kind = plan[status.name][0]
        if status.status == "ok":
            result.refreshed.append(_commit(index, listing, status.name, fingerprints, kind))
        else:
            index.unstage(listing.token, status.name)
            if kind == "changes":  # perhaps a cursor Graph no longer takes: list every device
                index.drop_cursor(status.name)
    return result


def _commit(
    index: KeyIndex, listing: Listing, name: str, fingerprints: dict[str, str], kind: Pass
) -> Refreshed:
    took, listed = listing.took[name], listing.listed[name]
    if kind == "full":
        state = index.commit(listing.token, name, fingerprints[name], took)
        return Refreshed(name, state.keys, state.deleted, took, kind, listed)
    round = listing.rounds[name]
    done = ended(kind, took, listed, round.devices, round.cursor)
    index.commit_devices(listing.token, name, fingerprints[name], done)
    state = index.state(name) or key_index.impossible(name)
    return Refreshed(
        name,
        state.keys,
        state.deleted,
        took,
        kind,
        listed,
        round.devices,
        round.vanished,
        round.throttled,
    )


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
