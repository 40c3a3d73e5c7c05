"""`bitkey-dir rotate` and `find --rotate`: each device's rotation, asked for or by hand.

No password is ever in a rotation: the disclosed keys are named by their Key IDs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from bitkey_dir.core.display import safe, safe_json
from bitkey_dir.ops.rotate import RotateResult
from bitkey_dir.render.output import Part, note, source_records


def render_json(result: RotateResult) -> str:
    document = {
        "rotations": [rotation.to_record() for rotation in result.rotations],
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
        lines.append(f"  disclosed: {ids}")
        lines.extend(f"  {step}" for step in rotation.steps)
    yield Part("".join(safe(line) + "\n" for line in lines))
    if not result.rotations:
        yield note(f"No key found for {safe(result.query.describe())}.")


def render(result: RotateResult, fmt: str) -> Iterator[Part]:
    """The rotations as JSON (``fmt`` "json") or as lines for people."""
    if fmt == "json":
        yield Part(render_json(result))
    else:
        yield from render_lines(result)
