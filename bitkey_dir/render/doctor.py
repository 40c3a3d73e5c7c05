"""`doctor` output: a table for people, JSON for scripts; everything from directories escaped."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from bitkey_dir.core.display import safe, safe_json

if TYPE_CHECKING:
    from bitkey_dir.ops.doctor import DoctorResult

LABELS: Final = {
    "ok": "ok",
    "warn": "WARN",
    "missing-right": "MISSING RIGHT",
    "unreachable": "UNREACHABLE",
}
VERDICTS: Final = {
    0: "healthy",
    3: "rights or sign-in missing (exit 3)",
    4: "unreachable or failing (exit 4)",
}


def render_json(result: DoctorResult) -> str:
    return safe_json(json.dumps(result.to_record(), indent=2, ensure_ascii=False)) + "\n"


def render_table(result: DoctorResult) -> str:
    """One block per source: each check's status, what was checked, the finding, the fix."""
    lines: list[str] = []
    for diagnosis in result.diagnoses:
        lines.append(safe(diagnosis.source))
        for check in diagnosis.checks:
            label = LABELS.get(check.status, check.status)
            lines.append(f"  {label:<13} {safe(check.area)}: {safe(check.subject)}")
            lines.append(f"  {'':<13}   {safe(check.detail)}")
            if check.fix and check.status != "ok":
                lines.append(f"  {'':<13}   fix: {safe(check.fix)}")
        if diagnosis.status.status != "ok":
            label = LABELS[
                "missing-right" if diagnosis.status.status == "denied" else "unreachable"
            ]
            lines.append(f"  {label:<13} {safe(diagnosis.status.error or 'failed')}")
            if diagnosis.status.hint:
                lines.append(f"  {'':<13}   fix: {safe(diagnosis.status.hint)}")
        lines.append("")
    code = int(result.exit_code)
    lines.append(VERDICTS.get(code, f"exit {code}"))
    return "\n".join(lines) + "\n"


def render(result: DoctorResult, fmt: str) -> str:
    """``fmt`` "json" for scripts, anything else the table."""
    return render_json(result) if fmt == "json" else render_table(result)
