"""`bitkey-dir rotate` and `find --rotate`: each device's rotation, asked for or by hand.

No password is ever in a rotation: the disclosed keys are named by their Key IDs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from bitkey_dir.core.display import safe, safe_json
from bitkey_dir.core.rotation import Progress
from bitkey_dir.ops.rotate import RotateResult
from bitkey_dir.render.output import Part, note, source_records


def render_json(result: RotateResult) -> str:
    document = {
        "rotations": [rotation.to_record() for rotation in result.rotations],
        "waited": result.waited,
        "warnings": result.warnings,
        "sources": source_records(result.sources),
    }
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def render_lines(result: RotateResult) -> Iterator[Part]:
    """Per device: what was done, the disclosed Key IDs, and the steps left to take; a note
    when nothing was found to rotate."""
    lines = []
    for rotation in result.rotations:
        what = rotation.computer or rotation.device_id or "(computer unknown)"
        ids = ", ".join(str(key_id) for key_id in rotation.key_ids)
        lines.append(f"{what} ({rotation.source}): {rotation.outcome}: {rotation.detail}")
        lines.append(f"  replaces: {ids}")
        lines.extend(f"  {step}" for step in rotation.steps)
        if rotation.progress is not None:
            lines.append(f"  {_progress(rotation.progress, result.waited)}")
    yield Part("".join(safe(line) + "\n" for line in lines))
    if not result.rotations:
        yield note(f"No key found for {safe(result.query.describe())}.")


def _progress(progress: Progress, waited: float | None) -> str:
    """One line: how the rotation ended, or that it had not when the wait did."""
    detail = f" ({progress.detail})" if progress.detail else ""
    if progress.state == "done":
        new = ", ".join(str(key_id) for key_id in progress.new_key_ids)
        return f"done: new Key ID {new}{detail}" if new else f"done{detail}"
    if progress.state == "pending":
        return (
            f"still pending after {waited or 0:g} s{detail}: it may yet complete "
            "(bitkey-dir audit --disclosed tells later)"
        )
    return f"{progress.state}{detail}: the old keys are still valid"


def render(result: RotateResult, fmt: str) -> Iterator[Part]:
    """The rotations as JSON (``fmt`` "json") or as lines for people."""
    if fmt == "json":
        yield Part(render_json(result))
    else:
        yield from render_lines(result)
