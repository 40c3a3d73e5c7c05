"""`bitkey-dir rights` where no server is needed: bad input is refused before any source is
asked, and a source that cannot say or change who may read keys is named."""

from __future__ import annotations

import pytest

from tests.command_line import invoke
from tests.unit.helpers import EXAMPLE_KEYS


@pytest.mark.parametrize(
    "principal", ["helpdesk", "*)(cn=*", "a@b@c", "CORP\\", "S-1-", "X\\\x1b[2J", ""]
)
def test_a_principal_in_no_accepted_form_is_bad_input(principal: str) -> None:
    outcome = invoke("rights", "grant", "--ou", "OU=a,DC=x", "-p", principal)
    assert outcome.code == 2
    assert "name@domain, DOMAIN\\name or a SID" in outcome.err
    assert "\x1b" not in outcome.err


def test_grant_and_revoke_need_the_ou() -> None:
    for action in ("grant", "revoke"):
        outcome = invoke("rights", action, "-p", "CORP\\helpdesk")
        assert outcome.code == 2
        assert f"give --ou DN: the OU whose rights to {action}" in outcome.err


def test_key_files_cannot_say_or_change_who_reads_them() -> None:
    shown = invoke("rights", "show", "-s", str(EXAMPLE_KEYS))
    assert shown.code == 2
    assert "this type of source cannot say who may read keys" in shown.err
    changed = invoke(
        "rights", "grant", "-s", str(EXAMPLE_KEYS), "--ou", "OU=a,DC=x", "-p", "S-1-5-11"
    )
    assert changed.code == 2
    assert "cannot change who may read keys" in changed.err
