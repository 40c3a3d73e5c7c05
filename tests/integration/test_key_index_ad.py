"""The Key ID index of an Active Directory source, against the Samba DC.

AD searches by Key ID are fast already: a lookup never takes its answer from the index, so a
key escrowed after the refresh is found. What the index must get right here is what it keeps
(the deleted computers' keys, marked deleted; never a password, which its listing does not
even ask for). And one Key ID escrowed for two computers reveals nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from examples.lab.samba_dc import RecoveryKey
from tests.command_line import Outcome, invoke_with, trail_entries
from tests.integration.fixtures import ADMIN, PASSWORDS, SECRETS, Directory, Lab, ad_checks
from tests.integration.seed import (
    COLLIDING_LT001,
    COLLIDING_PREFIX,
    COLLIDING_WS002,
    TEMPORARY_COMPUTER,
)

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
    # A prefix is one filter in AD: always asked, so the answer is complete.
    assert colliding.document["index"]["used"] == []
    assert colliding.document["complete"] is True
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


Escrow = Callable[[str, RecoveryKey], None]


@pytest.fixture
def escrow(samba_dc: Directory) -> Iterator[Escrow]:
    """Escrows keys for computers of their own in OU=Lab, all removed after the test (the
    session's DC is shared; named TEMPORARY_COMPUTER…, so that what Deleted Objects keeps
    of them is known to the tests that export it)."""
    dc = samba_dc.dc
    conn = dc.connect()
    made: list[str] = []
    computers: dict[str, str] = {}

    def add(computer: str, key: RecoveryKey) -> None:
        if computer not in computers:
            computers[computer] = dc.add_computer(conn, computer, "OU=Lab")
            made.append(computers[computer])
        made.append(dc.add_recovery_key(conn, computers[computer], key))

    try:
        yield add
    finally:
        for dn in reversed(made):
            conn.delete(dn)
        conn.unbind()


def lab_key(label: str, key_id: uuid.UUID) -> RecoveryKey:
    """A key as Windows escrows one, key package included: removed, it stays in Deleted
    Objects for the session, and exports elsewhere count the keys without a package."""
    made = RecoveryKey.derive(label, dt.datetime.now(dt.UTC).replace(microsecond=0))
    return dataclasses.replace(made, recovery_guid=key_id)


def unique(prefix: str = "") -> uuid.UUID:
    """A new GUID, starting with ``prefix`` if given: no earlier test's tombstone has it."""
    fresh = uuid.uuid4().hex
    return uuid.UUID(prefix.replace("-", "").lower() + fresh[len(prefix.replace("-", "")) :])


def test_a_key_escrowed_after_the_refresh_is_found_by_its_8_digits(
    lab: Lab, samba_dc: Directory, escrow: Escrow
) -> None:
    # 8 digits no seeded key has: what is left in Deleted Objects meets no other test.
    tag = uuid.uuid4().hex[:6].upper()
    known = lab_key("known", unique())
    escrow(f"{TEMPORARY_COMPUTER}K{tag}", known)
    assert refresh(lab).code == 0
    late = lab_key("late", unique(known.key_id[:8]))
    escrow(f"{TEMPORARY_COMPUTER}L{tag}", late)
    config = lab.config(user=ADMIN)
    checks = ad_checks()
    secrets = [*checks.get("secrets", []), known.password, late.password]
    outcome = invoke_with(
        config,
        "find",
        "-k",
        known.key_id[:8],
        "-f",
        "json",
        secrets=secrets,
        never_shown=checks.get("never_shown", []),
    )
    assert outcome.code == 0, outcome.err
    assert sorted(outcome.key_ids) == sorted([known.key_id, late.key_id])
    document = outcome.document
    assert (document["ambiguous"], document["complete"]) == (True, True)
    assert document["index"]["used"] == []


def test_one_key_id_on_two_computers_reveals_nothing(
    lab: Lab, samba_dc: Directory, escrow: Escrow
) -> None:
    shared = unique()
    victim, planted = lab_key("victim", shared), lab_key("planted", shared)
    tag = uuid.uuid4().hex[:6].upper()
    victim_pc, planted_pc = f"{TEMPORARY_COMPUTER}V{tag}", f"{TEMPORARY_COMPUTER}P{tag}"
    escrow(victim_pc, victim)
    escrow(planted_pc, planted)
    config = lab.config(user=ADMIN)
    checks = ad_checks()
    secrets = [*checks.get("secrets", []), victim.password, planted.password]
    never = list(checks.get("never_shown", []))
    assert refresh(lab).code == 0
    for key_id in (victim.key_id, victim.key_id[:8]):
        for index in ((), ("--no-index",)):
            outcome = invoke_with(
                config,
                "find",
                "-k",
                key_id,
                "-r",
                "INC-4",
                *index,
                secrets=secrets,
                never_shown=never,
            )
            assert outcome.code == 5, (key_id, index, outcome.err)
            assert outcome.out == ""
            assert f"{victim_pc} (lab)" in outcome.err
            assert f"{planted_pc} (lab)" in outcome.err
            assert outcome.err.count("\n") == 1
    refusals = trail_entries()
    assert [entry["action"] for entry in refusals] == ["refuse"] * 4
    assert {tuple(sorted(e["computers"])) for e in refusals} == {
        tuple(sorted([f"{planted_pc} (lab)", f"{victim_pc} (lab)"]))
    }
