"""`bitkey-dir rights` and doctor's rights against the Samba DC.

Each test that changes rights makes an OU of its own, outside OU=Corp and OU=Lab (where every
authenticated user sees the recovery objects), holding one computer with one key: there an
ordinary user sees nothing below the computer but the names of its children. The OU is
deleted afterwards; the computer's key then stays in Deleted Objects, under the prefix other
tests leave alone.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from ldap3 import BASE

from bitkey_dir.sources.ad.access import DACL_ONLY
from bitkey_dir.sources.ad.delegation import KEY_PACKAGE, RECOVERY_INFORMATION, RECOVERY_PASSWORD
from examples.lab.samba_dc import RecoveryKey
from tests.command_line import Outcome, invoke_with, trail_entries
from tests.integration.fixtures import ADMIN, Directory, Lab, ad_checks
from tests.integration.seed import DOMAIN, PLAIN, TEMPORARY_COMPUTER, WORKSTATIONS

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Hidden:
    ou: str
    computer: str
    key: RecoveryKey


@pytest.fixture
def hidden(samba_dc: Directory) -> Iterator[Hidden]:
    """An OU with one computer and one key, which no ordinary account may see."""
    tag = uuid.uuid4().hex[:6].upper()
    dc, conn = samba_dc.dc, samba_dc.dc.connect()
    try:
        ou = dc.add_ou(conn, f"OU=Rights{tag}")
        name = f"{TEMPORARY_COMPUTER}{tag}"
        computer = dc.add_computer(conn, name, f"OU=Rights{tag}")
        key = RecoveryKey.derive(f"{name}/1", dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC))
        dc.add_recovery_key(conn, computer, key)
        yield Hidden(ou, name, key)
        dc.tree_delete(conn, ou)
    finally:
        conn.unbind()


def run(lab: Lab, user: str, hidden: Hidden, *args: str) -> Outcome:
    """`bitkey-dir ARGS` as ``user``, its source's base DN the hidden OU."""
    config = lab.config(user=user, base_dn=hidden.ou)
    checks = ad_checks()
    checks["secrets"] = [*checks.get("secrets", []), hidden.key.password]
    return invoke_with(config, *args, **checks)


def dacl(samba_dc: Directory, dn: str) -> bytes:
    conn = samba_dc.dc.connect()
    try:
        conn.search(
            dn, "(objectClass=*)", BASE, attributes=["nTSecurityDescriptor"], controls=[DACL_ONLY]
        )
        raw: bytes = conn.response[0]["raw_attributes"]["nTSecurityDescriptor"][0]
        return raw
    finally:
        conn.unbind()


def ou_check(document: dict[str, Any], ou: str) -> dict[str, Any]:
    (source,) = document["sources"]
    (check,) = [c for c in source["checks"] if c["subject"] == ou]
    return dict(check)


def test_the_schema_guids_are_those_the_code_uses(samba_dc: Directory) -> None:
    conn = samba_dc.dc.connect()
    try:
        for name, guid in (
            ("msFVE-RecoveryInformation", RECOVERY_INFORMATION),
            ("msFVE-RecoveryPassword", RECOVERY_PASSWORD),
            ("msFVE-KeyPackage", KEY_PACKAGE),
        ):
            assert samba_dc.dc.schema_guid(conn, name) == guid, name
    finally:
        conn.unbind()


def test_grant_lets_an_account_read_what_it_could_not_and_revoke_undoes_it(
    lab: Lab, samba_dc: Directory, hidden: Hidden
) -> None:
    principal = f"{DOMAIN}\\{PLAIN.name}"
    before = dacl(samba_dc, hidden.ou)

    # The account sees only the names of the recovery objects: keys exist, it cannot see them.
    outcome = run(lab, "plain", hidden, "doctor", "--format", "json")
    assert outcome.code == 3
    check = ou_check(outcome.document, hidden.ou)
    assert check["status"] == "missing-right"
    assert check["detail"].startswith("recovery objects: 1, visible: 0, readable: 0")
    assert "cannot see recovery objects that exist" in check["detail"]
    assert f"no ACE on the OU gives {principal} or its groups Read Property" in check["detail"]
    assert check["fix"].startswith(
        f'bitkey-dir rights grant -s "lab" --ou "{hidden.ou}" --principal "'
    )
    assert f'dsacls "{hidden.ou}" /I:S /G' in check["fix"]
    assert run(lab, "plain", hidden, "find", "-c", hidden.computer).code == 1

    # A what-if says what would change, and changes nothing.
    what_if = run(
        lab, ADMIN, hidden, "rights", "grant", "--ou", hidden.ou, "-p", principal, "--what-if"
    )
    assert what_if.code == 0
    assert f"would add: (OA;CIIO;RP;;msFVE-RecoveryInformation;{principal})" in what_if.out
    assert f'dsacls "{hidden.ou}" /I:S /G "{principal}:RP;;msFVE-RecoveryInformation"' in (
        what_if.out
    )
    assert dacl(samba_dc, hidden.ou) == before
    assert not [e for e in trail_entries() if e.get("scope") == hidden.ou]

    # The account itself may not grant it.
    refused = run(lab, "plain", hidden, "rights", "grant", "--ou", hidden.ou, "-p", principal)
    assert refused.code == 3
    assert "may not change the DACL" in refused.err
    assert dacl(samba_dc, hidden.ou) == before

    granted = run(lab, ADMIN, hidden, "rights", "grant", "--ou", hidden.ou, "-p", principal)
    assert granted.code == 0, granted.err
    assert (
        f"added: (OA;CIIO;RPCR;msFVE-RecoveryPassword;msFVE-RecoveryInformation;{principal})"
        in (granted.out)
    )
    shown = run(lab, ADMIN, hidden, "rights", "show", "--ou", hidden.ou, "-f", "json")
    mine = [h for h in shown.document["holders"] if h["principal"] == principal]
    assert {h["right"] for h in mine} == {"see recovery objects", "read recovery passwords"}
    assert all(way["origin"] == "explicit" for h in mine for way in h["via"])

    found = run(lab, "plain", hidden, "find", "-c", hidden.computer, "-f", "json")
    assert found.code == 0, found.err
    assert [key["recovery_password"] for key in found.keys] == [hidden.key.password]
    healthy = run(lab, "plain", hidden, "doctor", "--format", "json")
    assert healthy.code == 0, healthy.out
    assert ou_check(healthy.document, hidden.ou)["status"] == "ok"

    again = run(lab, ADMIN, hidden, "rights", "grant", "--ou", hidden.ou, "-p", principal)
    assert again.code == 0
    assert "already there" in again.out

    revoked = run(lab, ADMIN, hidden, "rights", "revoke", "--ou", hidden.ou, "-p", principal)
    assert revoked.code == 0, revoked.err
    assert dacl(samba_dc, hidden.ou) == before

    # The grant and the revoke are in the trail, each once; the what-if, the refused grant
    # and the grant with nothing to do are not.
    changes = [e for e in trail_entries() if e.get("scope") == hidden.ou]
    assert [e["action"] for e in changes] == ["grant", "revoke"]
    for entry in changes:
        assert entry["grantee"] == principal
        assert entry["grantee_id"].startswith("S-1-5-21-")
        assert entry["principal"] == lab.accounts[ADMIN][0]
        assert entry["source"] == "lab"
        assert len(entry["changed"]) == 2
    assert any("msFVE-RecoveryPassword" in ace for ace in changes[0]["changed"])
    listed = run(lab, ADMIN, hidden, "trail", "-n", "50")
    assert f"rights granted to {principal} below {hidden.ou} (2 entries)" in listed.out
    assert f"rights revoked from {principal} below {hidden.ou} (2 entries)" in listed.out
    assert run(lab, "plain", hidden, "doctor", "--format", "json").code == 3


def test_a_change_made_while_the_trail_cannot_be_written_says_so(
    lab: Lab, samba_dc: Directory, hidden: Hidden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DACL is changed before the line is written: exit 0 with a warning, not a failure
    that would read as "nothing changed"."""
    before = dacl(samba_dc, hidden.ou)
    monkeypatch.setenv("BITKEY_DIR_TRAIL", os.devnull)
    principal = f"{DOMAIN}\\{PLAIN.name}"
    granted = run(lab, ADMIN, hidden, "rights", "grant", "--ou", hidden.ou, "-p", principal)
    assert granted.code == 0, granted.err
    assert "the change is not in the access trail" in granted.err
    assert dacl(samba_dc, hidden.ou) != before
    revoked = run(lab, ADMIN, hidden, "rights", "revoke", "--ou", hidden.ou, "-p", principal)
    assert revoked.code == 0, revoked.err
    assert "the change is not in the access trail" in revoked.err
    assert dacl(samba_dc, hidden.ou) == before


def test_grant_by_sid_and_upn_names_the_same_account(
    lab: Lab, samba_dc: Directory, hidden: Hidden
) -> None:
    sid = samba_dc.seeded.users[PLAIN.name].sid
    by_sid = run(
        lab,
        ADMIN,
        hidden,
        "rights",
        "grant",
        "--ou",
        hidden.ou,
        "-p",
        sid,
        "--what-if",
        "--key-packages",
        "-f",
        "json",
    )
    by_upn = run(
        lab,
        ADMIN,
        hidden,
        "rights",
        "grant",
        "--ou",
        hidden.ou,
        "-p",
        samba_dc.upn(PLAIN.name),
        "--what-if",
        "--key-packages",
        "-f",
        "json",
    )
    assert by_sid.code == by_upn.code == 0
    assert by_sid.document["change"] == by_upn.document["change"]
    change = by_sid.document["change"]
    assert change["id"] == sid
    assert change["applied"] is False
    assert len(change["changed"]) == 3
    assert any("msFVE-KeyPackage" in text for text in change["changed"])


def test_an_unknown_principal_is_bad_input(lab: Lab, hidden: Hidden) -> None:
    outcome = run(
        lab,
        ADMIN,
        hidden,
        "rights",
        "grant",
        "--ou",
        hidden.ou,
        "-p",
        f"{DOMAIN}\\nobody-{uuid.uuid4().hex[:6]}",
    )
    assert outcome.code == 2
    assert "no account or group" in outcome.err


def test_show_names_the_helpdesk_delegation_and_the_defaults(lab: Lab, samba_dc: Directory) -> None:
    config = lab.config(user="plain")
    outcome = invoke_with(
        config, "rights", "show", "--ou", samba_dc.dc.dn(WORKSTATIONS), "-f", "json", **ad_checks()
    )
    assert outcome.code == 0, outcome.err
    held = {(h["principal"], h["right"]): h for h in outcome.document["holders"]}
    helpdesk = held[(f"{DOMAIN}\\helpdesk1", "read recovery passwords")]
    assert [way["text"] for way in helpdesk["via"]] == [
        f"(OA;CIIO;RPCR;msFVE-RecoveryPassword;msFVE-RecoveryInformation;{DOMAIN}\\helpdesk1)"
    ]
    assert held[(f"{DOMAIN}\\Domain Admins", "read key packages")]["via"][0]["origin"] == (
        "class default"
    )
    everyone = held[("NT AUTHORITY\\Authenticated Users", "see recovery objects")]
    assert everyone["via"][0]["origin"] == "inherited"  # from OU=Corp
    assert ("NT AUTHORITY\\Authenticated Users", "read recovery passwords") not in held
