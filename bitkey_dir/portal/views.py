"""What the pages show of a result, as plain values for the templates.

Every text from a directory or a file goes through core/display.py's ``safe`` here (controls
and bidi overrides made visible); the templates then escape it for HTML (Jinja2 autoescape).
Passwords come from render/portal.py, the one place in the portal that reveals them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bitkey_dir.core.display import safe
from bitkey_dir.render.portal import numbered_groups

if TYPE_CHECKING:
    from bitkey_dir.core.model import RecoveryKey
    from bitkey_dir.ops.lookup import LookupResult
    from bitkey_dir.ops.rotate import RotateResult


@dataclass(frozen=True)
class KeyView:
    key_id: str
    asked: str  # the digits the agent typed, shown emphasised
    rest: str
    computer: str
    source: str
    source_name: str  # unescaped, for the rotate form's hidden field (autoescaped there)
    created: str
    age: str
    groups: list[tuple[int, str]]
    deleted: bool


@dataclass
class LookupView:
    query: str
    keys: list[KeyView] = field(default_factory=list)
    headline: str = ""
    kind: str = "info"  # found, ambiguous, denied, missing, failed
    notes: list[str] = field(default_factory=list)


def age(created: datetime | None, now: datetime | None = None) -> str:
    """How old a key is, in words.

    >>> now = datetime(2026, 5, 1, tzinfo=UTC)
    >>> age(datetime(2026, 4, 28, tzinfo=UTC), now), age(datetime(2024, 5, 1, tzinfo=UTC), now)
    ('3 days old', '2 years old')
    """
    if created is None:
        return "age unknown"
    days = ((now or datetime.now(UTC)) - created).days
    for unit, size in (("year", 365), ("month", 30), ("day", 1)):
        if days >= size:
            count = days // size
            return f"{count} {unit}{'s' if count != 1 else ''} old"
    return "less than a day old"


def key_view(key: RecoveryKey, asked: str) -> KeyView:
    full = str(key.key_id)
    cut = len(asked) if full.upper().startswith(asked.upper()) else 0
    return KeyView(
        key_id=full,
        asked=full[:cut],
        rest=full[cut:],
        computer=safe(key.computer) if key.computer else "(unknown computer)",
        source=safe(key.source),
        source_name=key.source,
        created=f"{key.created:%Y-%m-%d %H:%M %Z}".strip() if key.created else "-",
        age=age(key.created),
        groups=numbered_groups(key),
        deleted=key.deleted,
    )


def lookup_view(result: LookupResult) -> LookupView:
    asked = str(result.query.key_id) if result.query.key_id else ""
    view = LookupView(query=safe(result.query.describe()))
    readable = [key for key in result.keys if key.recovery_password is not None]
    view.keys = [key_view(key, asked) for key in readable]
    refused = [s for s in result.sources if s.status == "denied"]
    failed = [s for s in result.sources if s.status == "failed"]
    if result.ambiguous:
        view.kind = "ambiguous"
        view.headline = (
            f"The Key ID {asked} matches {result.distinct_key_ids} different keys: ask the "
            "user for more digits of the Key ID before reading a key out."
        )
    elif readable:
        view.kind = "found"
        count = len(readable)
        view.headline = f"{count} recovery key{'s' if count != 1 else ''} found."
    elif result.keys or refused:
        view.kind = "denied"
        view.headline = (
            "Your account has no right to read this key's recovery password."
            if result.keys
            else "The directory refused your account: it has no right to read these keys."
        )
    elif failed:
        view.kind = "failed"
        view.headline = "No key found, but not every directory answered: try again."
    else:
        view.kind = "missing"
        view.headline = f"No recovery key found for {view.query}."
    view.notes = [safe(w) for w in result.warnings]
    view.notes += [f"{safe(s.name)}: {safe(s.error or s.status)}" for s in [*refused, *failed]]
    return view


def rotation_notes(result: RotateResult) -> list[str]:
    """What the rotation did, per device, with the manage-bde steps where it is by hand."""
    notes = []
    for rotation in result.rotations:
        who = safe(rotation.computer or rotation.device_id or "a device")
        notes.append(f"{who} ({safe(rotation.source)}): {safe(rotation.detail)}")
        notes += [f"  {safe(step)}" for step in rotation.steps]
    notes += [safe(w) for w in result.warnings]
    notes += [
        f"{safe(s.name)}: {safe(s.error or s.status)}" for s in result.sources if s.status != "ok"
    ]
    return notes or ["Nothing to rotate was found."]
