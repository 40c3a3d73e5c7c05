"""The warning an AD lookup or audit gives when it sees nothing: missing rights look the same
as a missing key, computer or escrow, and every variant says so, naming the account."""

from __future__ import annotations

import pytest

from bitkey_dir.sources.ad.unseen import DELETED_HINT, Looked, unseen

ACCOUNT = "helpdesk@corp.example"
SAME = "an account without read rights on {} sees none, so "


def test_a_key_id_nobody_sees() -> None:
    assert unseen("key", "Key ID 063EA4E1", ACCOUNT, deleted_searched=False) == (
        f"no recovery object with Key ID 063EA4E1 is visible to {ACCOUNT}; "
        + SAME.format("recovery objects")
        + "missing rights look the same as a missing key"
        + DELETED_HINT
    )


def test_a_computer_nobody_sees_in_the_global_catalog() -> None:
    found = unseen("computer", "PC-1 in the forest", ACCOUNT, where=" in the Global Catalog")
    assert found == (
        f"no computer matching PC-1 in the forest is visible to {ACCOUNT} in the Global "
        "Catalog; "
        + SAME.format("computer objects")
        + "missing rights look the same as a missing computer"
    )


def test_an_audit_that_sees_no_recovery_object() -> None:
    found = unseen("escrow", "12 computers", ACCOUNT)
    assert found.startswith(f"12 computers, and not one recovery object visible to {ACCOUNT}; ")
    assert SAME.format("recovery objects") in found
    assert found.endswith("(the coverage is then not to be trusted)")


@pytest.mark.parametrize("looked", ["key", "computer", "escrow"])
@pytest.mark.parametrize("searched", [True, False])
def test_every_variant_names_the_account_and_the_rights(looked: Looked, searched: bool) -> None:
    found = unseen(looked, "X", ACCOUNT, deleted_searched=searched)
    assert f"visible to {ACCOUNT}" in found
    assert "an account without read rights on " in found
    assert found.endswith(DELETED_HINT) is (not searched)
    assert "\n" not in found
