"""Lookups through the Key ID index: it narrows where to look, never answers by itself, and
an answer it narrowed says so.

Only a Key ID prefix (8 digits or more, not the full ID) is narrowed, and only in sources
that must list everything to match one (Entra lists a whole tenant): there each source's
candidates are read from the directory by their full IDs (one request each), so a key
deleted since is not shown and a key changed since is shown as it is now. An indexed source
with no candidate is not searched while another source's candidate was found, which is what
makes 8 digits fast across a 100,000-key tenant or fifty tenants.

Such an answer cannot know of a key escrowed after the refresh: ``IndexUse.unconfirmed``
names those sources with the index's age, the result is not ``complete``, and a warning says
so in words. A source that finds a prefix itself as quickly (``SearchesKeyIds``: AD) is always
asked, as is every source for a full Key ID or a computer name (a device's name is asked of
the directory: an index's name → device map would show a renamed or re-imaged device's key).

When no candidate anywhere is still in its directory (the index missed a new key, or the key
is gone), every source is searched as it would be without an index, and a key found that way
is added to the index with a word that the index was stale. Sources never indexed are always
searched. The index is read and written here, in the operation's thread; the workers only
ask sources.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bitkey_dir.core.errors import BitkeyError
from bitkey_dir.core.model import KeyEntry, KeyId, Query, RecoveryKey
from bitkey_dir.ops import index as index_ops
from bitkey_dir.ops.run import Answer, Run, ask_all
from bitkey_dir.sources.base import SearchesKeyIds, Source, Warn
from bitkey_dir.store import key_index
from bitkey_dir.store.key_index import KeyIndex, SourceState


@dataclass
class _Plan:
    """What the index says about one source for this query, and what came of it."""

    source: str
    fingerprint: str
    state: SourceState
    candidates: list[KeyEntry] = field(default_factory=list)
    vanished: list[KeyId] = field(default_factory=list)  # in the index, not in the directory


@dataclass
class IndexUse:
    """How the index took part in a lookup, for the result and its JSON."""

    used: list[str] = field(default_factory=list)  # sources narrowed by the index
    stale: list[str] = field(default_factory=list)  # sources whose index missed a key
    # Sources answered from the index, each with its age in seconds: keys escrowed since
    # its refresh are not in the answer.
    unconfirmed: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problem: str | None = None  # the index could not be used at all

    @property
    def complete(self) -> bool:
        """Every source answered the query itself, not from the index."""
        return not self.unconfirmed

    @property
    def age(self) -> float | None:
        """The oldest index an answer was taken from, in seconds."""
        return max(self.unconfirmed.values()) if self.unconfirmed else None


Reopen = Callable[[str], Source]


def ask(
    run: Run, query: Query, opened: Sequence[Source], reopen: Reopen | None = None
) -> tuple[list[Answer[list[RecoveryKey]]], IndexUse]:
    """Answers for ``opened`` (in their order) to ``query``, narrowed by the index.
    ``reopen`` opens a source again by name as ``opened`` were (default: ``run.open_one``);
    asking a source closes it, and some sources are asked twice."""
    reopen = reopen or run.open_one
    use = IndexUse()
    if query.key_id is None or query.key_id.is_full:
        # One request each, everywhere: the index could only leave sources out.
        return ask_all(opened, live(query)), use
    # A source with index_max_age builds its index on first use.
    wanted = any(index_ops.max_age(run, source.name) for source in opened)
    try:
        index = key_index.open_index(create=wanted)
    except BitkeyError as exc:
        use.problem = f"{exc.message}; searched the directories instead"
        return ask_all(opened, live(query)), use
    if index is None:
        return ask_all(opened, live(query)), use
    with index:
        try:
            answers = _ask(run, index, query, opened, use, reopen)
        except BitkeyError as exc:  # a damaged index: never worse than no index
            use.problem = f"{exc.message}; searched the directories instead"
            use.used, use.stale, use.unconfirmed = [], [], {}  # what was asked again
            reopened = [reopen(source.name) for source in opened]
            return ask_all(reopened, live(query)), use
    if use.unconfirmed:
        use.warnings.append(unconfirmed(query, use))
    return answers, use


def _ask(
    run: Run,
    index: KeyIndex,
    query: Query,
    opened: Sequence[Source],
    use: IndexUse,
    reopen: Reopen,
) -> list[Answer[list[RecoveryKey]]]:
    refreshed = index_ops.refresh_due(run, index, opened)
    if refreshed is not None:  # said with the lookup's warnings, before its own
        use.warnings += refreshed.warnings
        use.warnings += [
            f"{status.name}: the Key ID index was not refreshed ({status.error})"
            for status in refreshed.sources
            if status.status != "ok"
        ]
    plans = _plans(run, index, query, opened)
    answers = _by_key_id(query, opened, plans, use, reopen)
    _learn(index, query, plans, answers, use)
    return answers


def _plans(run: Run, index: KeyIndex, query: Query, opened: Sequence[Source]) -> dict[str, _Plan]:
    assert query.key_id is not None  # noqa: S101 - ask() narrows prefixes only
    plans: dict[str, _Plan] = {}
    for source in opened:
        if not index_ops.indexable(run, source) or isinstance(source, SearchesKeyIds):
            continue
        fingerprint = index_ops.fingerprint(source)
        state = index.state(source.name, fingerprint)
        if state is None:
            continue
        plan = _Plan(source.name, fingerprint, state)
        plan.candidates = [
            entry
            for entry in index.candidates(source.name, query.key_id)
            if query.include_deleted or not entry.deleted
        ]
        plans[source.name] = plan
    return plans


def _by_key_id(
    query: Query,
    opened: Sequence[Source],
    plans: dict[str, _Plan],
    use: IndexUse,
    reopen: Reopen,
) -> list[Answer[list[RecoveryKey]]]:
    narrowed = any(plan.candidates for plan in plans.values())
    if not narrowed:
        return ask_all(opened, live(query))

    def first(source: Source, warn: Warn) -> list[RecoveryKey]:
        plan = plans.get(source.name)
        if plan is None:
            return list(source.find(query, warn))
        return _read_candidates(source, query, plan, warn)

    answers = ask_all(opened, first)
    use.used = [plan.source for plan in plans.values()]
    if any(answer.value for answer in answers if answer.status.name in plans):
        # A refresh of changed devices only does not see a new key on an unchanged device:
        # the age told is that of the last refresh that listed every device.
        use.unconfirmed = {p.source: p.state.every_device_age() for p in plans.values()}
        return answers
    # Every candidate is gone from its directory: search the indexed sources as usual.
    again = [reopen(name) for name in plans]
    searched = {answer.status.name: answer for answer in ask_all(again, live(query))}
    return [searched.get(answer.status.name, answer) for answer in answers]


def _read_candidates(source: Source, query: Query, plan: _Plan, warn: Warn) -> list[RecoveryKey]:
    """Each candidate read by its full ID and checked; one that is gone is left out."""
    found: list[RecoveryKey] = []
    said: list[str] = []
    for entry in plan.candidates:
        exact = Query(key_id=entry.key_id, include_deleted=query.include_deleted)
        keys = [
            key
            for key in source.find(exact, said.append)
            if key.key_id == entry.key_id and query.matches(key)
        ]
        if keys:
            found += keys
        else:
            plan.vanished.append(entry.key_id)
    if found:  # a candidate that is gone says "not found": no news when another was found
        for message in said:
            warn(message)
    return found


def _learn(
    index: KeyIndex,
    query: Query,
    plans: dict[str, _Plan],
    answers: Sequence[Answer[list[RecoveryKey]]],
    use: IndexUse,
) -> None:
    """Drop keys that are gone; add what a search found that the index did not know."""
    for answer in answers:
        plan = plans.get(answer.status.name)
        if plan is None:
            continue
        if plan.vanished:
            index.forget(plan.source, plan.vanished)
        known = {entry.key_id for entry in plan.candidates}
        new = [KeyEntry.of(key) for key in answer.value or [] if key.key_id not in known]
        if not new:
            continue
        if query.key_id is not None:
            # Every key with these digits was a candidate: a new one means the index is old.
            use.stale.append(plan.source)
            use.warnings.append(
                f"{plan.source}: {query.describe()} was not in the Key ID index (refreshed "
                f"{describe_age(plan.state.age())} ago) but the directory has it: run "
                "bitkey-dir index refresh"
            )
        # Best effort: another run holding the index for long must not fail a lookup.
        with contextlib.suppress(BitkeyError):
            index.remember(plan.source, plan.fingerprint, new)


def unconfirmed(query: Query, use: IndexUse) -> str:
    """What an answer taken from the index cannot know, in words."""
    names = ", ".join(use.unconfirmed)
    return (
        f"{names}: {query.describe()} was answered from the Key ID index, refreshed "
        f"{describe_age(use.age or 0.0)} ago, without listing every key: a key with these "
        "digits escrowed since then is not included. If the Key ID on the screen is not one "
        "shown, search again with --no-index (or run bitkey-dir index refresh)"
    )


def describe_age(seconds: float) -> str:
    """ "40 s", "12 min", "5 h", "3 days": how old, as a person says it."""
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 2 * 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


def live(query: Query) -> Callable[[Source, Warn], list[RecoveryKey]]:
    def find_in(source: Source, warn: Warn) -> list[RecoveryKey]:
        return list(source.find(query, warn))

    return find_in
