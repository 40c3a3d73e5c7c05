"""Pure helpers for Microsoft Graph: OData literals and filters, Retry-After, Graph's values.

No msgraph here, so these are cheap to import and easy to test with hostile input.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import ComputerName

MAX_RETRY_AFTER: Final = 60.0
KEY_ID_SHAPE: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_VOLUME_TYPES: Final = {
    "1": "operatingSystemVolume",
    "2": "fixedDataVolume",
    "3": "removableDataVolume",
}


def odata_quote(text: str) -> str:
    """An OData string literal: quotes doubled, wrapped in single quotes.

    >>> odata_quote("O'Brien's PC")
    "'O''Brien''s PC'"
    """
    return "'" + text.replace("'", "''") + "'"


def device_filter(name: ComputerName) -> str:
    """displayName eq '…', or startswith for a pattern; Graph has no other wildcard.

    >>> device_filter(ComputerName.parse("PC-00*"))
    "startswith(displayName,'PC-00')"
    """
    if not name.has_wildcard:
        return f"displayName eq {odata_quote(name.text)}"
    prefix = name.text.split("*", 1)[0]
    if not prefix:
        raise InputError(
            "Entra ID matches device names by their beginning: put at least one character "
            "before the first * (PC-00*)"
        )
    return f"startswith(displayName,{odata_quote(prefix)})"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: integer, fractional, or an HTTP date.

    >>> parse_retry_after("2.128"), parse_retry_after("0"), parse_retry_after("soon")
    (2.128, 0.0, None)
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def timestamp(value: Any) -> datetime | None:
    """Graph's ISO 8601 timestamps ("2024-03-01T10:15:00Z"), always with a UTC offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


def volume_type(value: Any) -> str | None:
    """Graph's volumeType, by name, whether it came as a name or as its enum number."""
    if value is None:
        return None
    text = str(getattr(value, "value", value))
    return _VOLUME_TYPES.get(text, text)
