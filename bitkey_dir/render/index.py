"""`bitkey-dir index refresh|status|clear`: the Key ID index, for people or as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from bitkey_dir.core.display import safe, safe_json
from bitkey_dir.ops.index import (
    PASSES,
    IndexReport,
    IndexRow,
    PassState,
    Refreshed,
    RefreshResult,
)
from bitkey_dir.ops.indexed import describe_age
from bitkey_dir.render.output import Part, note, source_records


def refresh_table(result: RefreshResult) -> Iterator[Part]:
    if not result.sources:
        yield note("No source is due for a refresh.")
    for done in result.refreshed:
        deleted = f" ({done.deleted:,} of deleted computers)" if done.deleted else ""
        keys = "key" if done.keys == 1 else "keys"
        line = f"{done.source}: {done.keys:,} {keys}{deleted} in {done.seconds:.1f} s"
        yield Part(safe(f"{line}, {_how(done)}") + "\n")
    if result.refreshed:
        yield note(safe(f"Index: {result.path}"))


def refresh_json(result: RefreshResult) -> str:
    document = {
        "index": str(result.path),
        "refreshed": [
            {
                "source": done.source,
                "keys": done.keys,
                "deleted": done.deleted,
                "seconds": round(done.seconds, 3),
                "how": done.how,
                "listed": done.listed,
                "devices": done.devices,
                "vanished": done.vanished,
                "throttled": done.throttled,
            }
            for done in result.refreshed
        ],
        "warnings": result.warnings,
        "sources": source_records(result.sources),
    }
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def status_table(result: IndexReport) -> Iterator[Part]:
    """Where the index is, then one line per source: what it holds, whether it is due."""
    where = safe(result.path) if result.exists else f"{safe(result.path)} (not built yet)"
    yield note(f"Index: {where}")
    if not result.rows:
        yield note("No sources configured.")
    width = max((len(row.source) for row in result.rows), default=0)
    for row in result.rows:
        yield Part(safe(f"{row.source:<{width}}  {_held(row)}") + "\n")


def _held(row: IndexRow) -> str:
    if row.state is None:
        what = "indexed as another directory: refresh it" if row.other_directory else "not indexed"
    else:
        state = row.state
        deleted = f", {state.deleted:,} of deleted computers" if state.deleted else ""
        keys = "key" if state.keys == 1 else "keys"
        what = (
            f"{state.keys:,} {keys}{deleted}, refreshed {describe_age(state.age())} ago "
            f"({state.refreshed:%Y-%m-%d %H:%M} UTC, took {state.took:.1f} s)"
        )
        if set(state.passes) - {"full"}:  # refreshed other ways than in full: say each
            what += "".join(f"; {_pass(state.passes[n])}" for n in PASSES if n in state.passes)
    if not row.configured:
        what += "; no longer configured (bitkey-dir index clear -s NAME)"
    if row.max_age is not None:
        what += f"; index_max_age {describe_age(row.max_age)}"
        what += ", refresh due" if row.due else ""
    return what


def status_json(result: IndexReport) -> str:
    rows = []
    for row in result.rows:
        state = row.state
        rows.append(
            {
                "source": row.source,
                "configured": row.configured,
                "indexed": state is not None,
                "other_directory": row.other_directory,
                "refreshed": state.refreshed.isoformat(timespec="seconds") if state else None,
                "age_seconds": round(state.age()) if state else None,
                "keys": state.keys if state else None,
                "deleted": state.deleted if state else None,
                "index_max_age_seconds": row.max_age,
                "refreshes": {
                    name: {
                        "ended": done.finished.isoformat(timespec="seconds"),
                        "age_seconds": round(done.age()),
                        "seconds": round(done.took, 3),
                        "keys": done.keys,
                        "devices": done.devices,
                    }
                    for name, done in (state.passes.items() if state else ())
                },
                "due": row.due,
            }
        )
    document = {"index": str(result.path), "exists": result.exists, "sources": rows}
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


_NAMES = {
    "full": "full listing",
    "devices": "every device",
    "changes": "changed devices",
}


def _how(done: Refreshed) -> str:
    """How a source was refreshed, and what a refresh by device met on the way."""
    if done.devices is None:
        return f"{_NAMES[done.how]} ({done.listed:,} listed)"
    what = f"{_NAMES[done.how]} ({done.devices:,} devices, {done.listed:,} keys listed"
    if done.vanished:
        what += f"; {done.vanished:,} devices gone, their keys kept until a full listing"
    if done.throttled:
        what += f"; slowed down {done.throttled:,} times when Graph asked"
    return what + ")"


def _pass(done: PassState) -> str:
    devices = f", {done.devices:,} devices" if done.devices is not None else ""
    return (
        f"{_NAMES.get(done.name, done.name)} {describe_age(done.age())} ago "
        f"({done.took:.1f} s{devices}, {done.keys:,} keys listed)"
    )


def cleared(dropped: Sequence[str]) -> Iterator[Part]:
    if not dropped:
        yield note("The index held nothing to clear.")
    for name in dropped:
        yield Part(safe(f"{name}: cleared") + "\n")
