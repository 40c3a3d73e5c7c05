"""OData literals and Retry-After parsing for the Entra source: hostile and odd input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.sources.entra.odata import MAX_RETRY_AFTER, odata_quote, parse_retry_after


@given(st.text())
def test_odata_literals_round_trip_and_never_close_early(text: str) -> None:
    literal = odata_quote(text)
    assert literal.startswith("'")
    assert literal.endswith("'")
    inner = literal[1:-1]
    # Every quote inside is doubled, so the literal cannot end before its last character.
    assert inner.replace("''", "").count("'") == 0
    assert inner.replace("''", "'") == text


def test_hostile_names_stay_inside_the_literal() -> None:
    assert odata_quote("x' or displayName eq 'y") == "'x'' or displayName eq ''y'"


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("2.128") == 2.128
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(later, now) == 7.0
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("86400") == MAX_RETRY_AFTER
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("soon") is None


@given(st.text())
def test_any_retry_after_is_bounded_or_ignored(value: str) -> None:
    waited = parse_retry_after(value)
    assert waited is None or 0.0 <= waited <= MAX_RETRY_AFTER


# -- which directory roles read BitLocker keys (rights show for Entra ID) -----------------------


@pytest.mark.parametrize(
    ("actions", "reads"),
    [
        (["microsoft.directory/bitlockerKeys/key/read"], True),
        (["MICROSOFT.DIRECTORY/BITLOCKERKEYS/KEY/READ"], True),  # actions ignore case
        (["microsoft.directory/bitlockerKeys/*"], True),
        (["microsoft.directory/*"], True),
        (["microsoft.directory/bitlockerKeys/basic/read"], False),  # metadata only
        (["microsoft.directory/devices/standard/read"], False),
        ([], False),
    ],
)
def test_a_role_reads_keys_when_an_action_covers_key_read(actions: list[str], reads: bool) -> None:
    from bitkey_dir.sources.entra.roles import reads_keys

    definition = {"rolePermissions": [{"allowedResourceActions": actions}, "not a permission"]}
    assert reads_keys(definition) is reads
