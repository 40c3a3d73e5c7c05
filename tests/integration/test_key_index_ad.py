"""The Key ID index of an Active Directory source, against the Samba DC.

AD searches by Key ID are fast already; what the index must get right here is what it
keeps (the deleted computers' keys, marked deleted; never a password, which its listing
does not even ask for) and that a lookup through it answers exactly as one without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.command_line import Outcome, invoke_with
from tests.integration.fixtures import ADMIN, PASSWORDS, SECRETS, Directory, Lab, ad_checks
from tests.integration.seed import COLLIDING_LT001, COLLIDING_PREFIX, COLLIDING_WS002

pytestmark = pytest.mark.integration


def refresh(lab: Lab, **settings: object) -> Outcome:
    config = lab.config(user=ADMIN, **settings)
    return invoke_with(config, "index", "refresh", "--format", "json", **ad_checks())


def test_the_index_of_a_domain_holds_every_key_and_no_password(
    lab: Lab, samba_dc: Directory
) -> None:
    outcome = refresh(lab)
    assert outcome.code == 0, outcome.err
    (done,) = outcome.document["refreshed"]
    assert done["source"] == "lab"
    assert done["keys"] >= len(PASSWORDS) - done["deleted"]
    assert done["deleted"] >= 1  # LT003 was deleted with its key
    raw = next(Path.home().rglob("key-index.sqlite3")).read_bytes()
    assert not [secret for secret in SECRETS if secret.encode() in raw]


def test_lookups_through_the_index_answer_as_without_it(lab: Lab, samba_dc: Directory) -> None:
    assert refresh(lab).code == 0
    for args in (
        ("--key-id", COLLIDING_PREFIX),
        ("--key-id", samba_dc.keys("PC(01)")[0].key_id[:8]),
        ("--key-id", samba_dc.keys("LT003")[0].key_id[:8], "--include-deleted"),
        ("--computer", "WS002"),
    ):
        warm = lab.find(*args, user=ADMIN)
        cold = lab.find(*args, "--no-index", user=ADMIN)
        assert warm.code == cold.code == 0, (args, warm.err)
        assert warm.keys == cold.keys, args
    colliding = lab.find("--key-id", COLLIDING_PREFIX, user=ADMIN)
    assert colliding.document["index"]["used"] == ["lab"]
    assert colliding.key_ids == [COLLIDING_WS002, COLLIDING_LT001]


def test_a_deleted_computers_key_needs_include_deleted_with_the_index_too(
    lab: Lab, samba_dc: Directory
) -> None:
    assert refresh(lab).code == 0
    (key,) = samba_dc.keys("LT003")
    hidden = lab.find("--key-id", key.key_id[:8], user=ADMIN)
    assert hidden.code == 1
    assert hidden.keys == []
    assert "--include-deleted" in hidden.err
    shown = lab.find("--key-id", key.key_id[:8], "--include-deleted", user=ADMIN)
    assert shown.code == 0
    assert [k["deleted"] for k in shown.keys] == [True]
