"""Entra's "Read BitLocker key" audit events taken apart, and `reads --since`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import KeyId
from bitkey_dir.ops.reads import parse_since
from bitkey_dir.sources.entra.audit_log import events_filter, parse_event

KEY_ID = "063EA4E1-220C-4293-BA01-4754620A96E7"


def event(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "Directory_ABC",
        "activityDisplayName": "Read BitLocker key",
        "activityDateTime": "2026-12-01T10:15:00Z",
        "result": "success",
        "initiatedBy": {"user": {"id": "u1", "userPrincipalName": "agent@contoso.com"}},
        "additionalDetails": [
            {
                "key": "AdditionalInfo",
                "value": f"Successfully retrieved BitLocker recovery key for key ID: "
                f"'{KEY_ID.lower()}'. Backed up from device: 'PC-0042'",
            }
        ],
    }
    base.update(changes)
    return base


def test_a_read_by_a_user() -> None:
    read = parse_event(event(), "cloud")
    assert read is not None
    assert read.key_id == KeyId.parse(KEY_ID)
    assert (read.actor, read.actor_kind, read.device) == ("agent@contoso.com", "user", "PC-0042")
    assert read.time == datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
    assert read.succeeded


def test_a_read_by_an_app_and_odd_events() -> None:
    read = parse_event(event(initiatedBy={"app": {"appId": "app-1", "displayName": "x"}}), "c")
    assert read is not None
    assert (read.actor, read.actor_kind) == ("app-1", "app")
    assert parse_event(event(activityDisplayName="Delete BitLocker key"), "c") is None
    assert parse_event(event(activityDateTime="yesterday"), "c") is None
    assert parse_event("not an event", "c") is None
    vague = parse_event(event(additionalDetails=[{"value": "no id here"}]), "c")
    assert vague is not None
    assert vague.key_id is None
    assert vague.device is None


@given(
    st.text(max_size=300),
    st.recursive(
        st.none() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
        max_leaves=10,
    ),
)
def test_any_event_is_a_read_or_nothing_never_an_exception(
    sentence: str, initiator: object
) -> None:
    read = parse_event(
        event(additionalDetails=[{"value": sentence}], initiatedBy=initiator), "cloud"
    )
    assert read is not None
    assert read.key_id is None or read.key_id.is_full


def test_the_filter_names_the_activity_and_the_time_in_utc() -> None:
    since = datetime(2026, 12, 1, 9, 0, tzinfo=UTC) + timedelta(hours=0)
    assert events_filter(since) == (
        "activityDisplayName eq 'Read BitLocker key' and activityDateTime ge 2026-12-01T09:00:00Z"
    )


def test_since() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since(" 24H ", now) == now - timedelta(hours=24)
    assert parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    for bad in ("soon", "-1d", "2027-01-01", "7w", "2026-13-01"):
        with pytest.raises(InputError, match="--since"):
            parse_since(bad, now)
