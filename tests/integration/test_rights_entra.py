"""`bitkey-dir rights show` for Entra ID against the Graph emulator: who holds a directory
role that reads BitLocker keys (built-in or custom), read from the role definitions and
their assignments, with no key read."""

from __future__ import annotations

import pytest

from examples.lab.graph_emulator import GraphEmulator
from tests.command_line import invoke_with
from tests.integration.fixtures import FULL, SOURCE, Entra

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]

READ_ROLES = "RoleManagement.Read.Directory"
READ_KEYS = "microsoft.directory/bitlockerKeys/key/read"


def test_every_role_that_reads_keys_and_its_holders(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, READ_ROLES)
    agent = graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
    both = graph.add_user(
        "lead@contoso.onmicrosoft.com", roles=["Global Reader", "Security Reader"]
    )
    custom = graph.add_user("tier1@contoso.onmicrosoft.com", display_name="Tier 1 \x1b[2Jagent")
    graph.add_user("plain@contoso.onmicrosoft.com")  # no role: not listed
    graph.add_custom_role("BitLocker readers", [READ_KEYS], [custom])
    graph.add_custom_role("Device readers", ["microsoft.directory/devices/standard/read"], [custom])
    outcome = invoke_with(entra.config(), "rights", "show", "-s", SOURCE, "--format", "json")
    assert outcome.code == 0, outcome.out + outcome.err
    holders = {h["principal"]: h for h in outcome.document["holders"]}
    assert set(holders) == {
        agent.user_principal_name,
        both.user_principal_name,
        "tier1@contoso.onmicrosoft.com",
    }
    assert [v["text"] for v in holders[agent.user_principal_name]["via"]] == [
        "Helpdesk Administrator (built-in role)"
    ]
    assert [v["text"] for v in holders[both.user_principal_name]["via"]] == [
        "Global Reader (built-in role)",
        "Security Reader (built-in role)",
    ]
    assert [v["text"] for v in holders["tier1@contoso.onmicrosoft.com"]["via"]] == [
        "BitLocker readers (custom role)"
    ]
    for holder in holders.values():
        assert holder["right"] == "read BitLocker keys"
        assert holder["scope"] == f"tenant {graph.tenant_id}"
        assert {v["origin"] for v in holder["via"]} == {"role"}
    assert graph.key_reads == []  # role listings: nothing audited as a key read


def test_the_table_lists_each_holder_under_the_tenant(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, READ_ROLES)
    graph.add_user("agent@contoso.onmicrosoft.com", roles=["Cloud Device Administrator"])
    outcome = invoke_with(entra.config(), "rights", "show", "-s", SOURCE)
    assert outcome.code == 0, outcome.err
    assert outcome.out.splitlines() == [
        f"{SOURCE}: tenant {graph.tenant_id}",
        "  read BitLocker keys:",
        "    agent@contoso.onmicrosoft.com",
        "      role: Cloud Device Administrator (built-in role)",
    ]


def test_an_app_that_may_not_read_roles_is_exit_3_naming_the_permission(entra: Entra) -> None:
    entra.daemon(*FULL)
    outcome = invoke_with(entra.config(), "rights", "show", "-s", SOURCE)
    assert outcome.code == 3
    assert READ_ROLES in outcome.err


def test_nobody_holding_a_role_is_exit_1(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, READ_ROLES)
    graph.add_user("plain@contoso.onmicrosoft.com")
    outcome = invoke_with(entra.config(), "rights", "show", "-s", SOURCE)
    assert outcome.code == 1
    assert "Nobody holds a right" in outcome.err + outcome.out


def test_an_ou_is_a_warning_for_entra(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, READ_ROLES)
    graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
    outcome = invoke_with(
        entra.config(), "rights", "show", "-s", SOURCE, "--ou", "OU=x,DC=corp", "--format", "json"
    )
    assert outcome.code == 0
    assert any("has no OUs" in w for w in outcome.document["warnings"])
