"""--reason: one short printable line, and never a recovery password pasted by mistake."""

from __future__ import annotations

import pytest

from bitkey_dir.core.errors import InputError
from bitkey_dir.ops.policy import check_reason
from tests.unit.helpers import PASSWORD

GROUPS = PASSWORD.split("-")


@pytest.mark.parametrize(
    "reason",
    [
        "INC0012345",
        "CHG-2024-001 user locked out after BIOS update",
        "ticket 4711, called 0049 30 1234567",
        "Key ID 063EA4E1 read out to j.doe",
        "a" * 500,
        None,
    ],
)
def test_ordinary_reasons_are_accepted(reason: str | None) -> None:
    check_reason(reason)


@pytest.mark.parametrize(
    "reason",
    [
        f"read out {PASSWORD}",
        PASSWORD.replace("-", " "),
        PASSWORD.replace("-", ""),
        f"groups {GROUPS[0]}-{GROUPS[1]} were misheard",
        f"INC1 {GROUPS[2]} {GROUPS[3]} {GROUPS[4]}",
    ],
)
def test_a_pasted_recovery_password_is_refused(reason: str) -> None:
    with pytest.raises(InputError, match="looks like it holds a recovery password") as refused:
        check_reason(reason)
    assert GROUPS[2] not in refused.value.message


@pytest.mark.parametrize("reason", ["two\nlines", "tab\there", "x" * 501, "bidi \u202e", "\x85"])
def test_a_reason_is_one_printable_line(reason: str) -> None:
    with pytest.raises(InputError, match="one printable line"):
        check_reason(reason)
