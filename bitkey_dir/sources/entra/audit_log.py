"""Entra's own record of key reads: "Read BitLocker key" events of the directory audit log.

Every read of a key value (the portal, PowerShell, Graph, bitkey-dir) writes one event. The
Key ID is not a field of its own: it is in the sentence of ``additionalDetails[0].value``
(``… key ID: '<id>'. Backed up from device: '<name>'``), which published Log Analytics
queries take apart the same way; an event whose sentence does not say it keeps a None key.
Everything here is pure; the requests are in listings.py (they need AuditLog.Read.All).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from bitkey_dir.core.model import KeyId
from bitkey_dir.sources.base import KeyRead
from bitkey_dir.sources.entra.odata import odata_quote, timestamp

ACTIVITY: Final = "Read BitLocker key"
READ_AUDIT: Final = "AuditLog.Read.All"
_KEY_ID: Final = re.compile(
    r"key ID:\s*'\{?([0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12})\}?'"
)
_DEVICE: Final = re.compile(r"device:\s*'([^']{0,255})'")


def events_filter(since: datetime) -> str:
    """The $filter for key reads at or after ``since``."""
    moment = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"activityDisplayName eq {odata_quote(ACTIVITY)} and activityDateTime ge {moment}"


def parse_event(event: Any, source: str) -> KeyRead | None:
    """One audit event as a KeyRead; None for anything that is not a dated key read."""
    if not isinstance(event, dict) or event.get("activityDisplayName") != ACTIVITY:
        return None
    when = timestamp(event.get("activityDateTime"))
    if when is None:
        return None
    actor, kind = _initiator(event.get("initiatedBy"))
    sentence = " ".join(
        str(detail.get("value"))
        for detail in event.get("additionalDetails") or []
        if isinstance(detail, dict) and isinstance(detail.get("value"), str)
    )
    found = _KEY_ID.search(sentence)
    device = _DEVICE.search(sentence)
    result = event.get("result")
    return KeyRead(
        source=source,
        time=when,
        actor=actor,
        actor_kind=kind,
        key_id=KeyId.parse(found[1]) if found else None,
        device=device[1] if device else None,
        succeeded=result in (None, "success"),
        event_id=str(event.get("id")) if event.get("id") is not None else None,
    )


def _initiator(initiated: Any) -> tuple[str | None, str]:
    if not isinstance(initiated, dict):
        return None, "unknown"
    user = initiated.get("user")
    if isinstance(user, dict) and (user.get("userPrincipalName") or user.get("id")):
        return str(user.get("userPrincipalName") or user.get("id")), "user"
    app = initiated.get("app")
    if isinstance(app, dict) and (app.get("appId") or app.get("displayName")):
        return str(app.get("appId") or app.get("displayName")), "app"
    return None, "unknown"
