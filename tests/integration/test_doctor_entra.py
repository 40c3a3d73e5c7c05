"""`bitkey-dir doctor` against the Graph emulator: the token's permissions and roles, the
admin-consent URL for what is missing, and Graph's answer to the token.

The emulator knows BitlockerKey.Read.All, BitlockerKey.ReadBasic.All and Device.Read.All;
AuditLog.Read.All and the Intune permissions it does not know, so an app never holds them
there: doctor shows them as a warning (no command of today needs them), not a failure.
"""

from __future__ import annotations

from typing import Any

import pytest

from examples.lab.graph_emulator import GraphEmulator
from tests.command_line import Outcome, invoke_with
from tests.integration.fixtures import FULL, ROLE_NAMES, SECRET, SOURCE, Entra, device_code_answered

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]


def doctor(entra: Entra, **settings: object) -> Outcome:
    config = entra.config(**settings)
    return invoke_with(config, "doctor", SOURCE, "--format", "json", **entra.checks)


def checks(outcome: Outcome) -> dict[tuple[str, str], dict[str, Any]]:
    (source,) = outcome.document["sources"]
    return {(c["area"], c["subject"]): c for c in source["checks"]}


def test_an_app_with_every_permission_is_healthy(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon("BitlockerKey.Read.All", "Device.Read.All")
    graph.add_recovery_key(graph.add_device("PC-0042"))
    outcome = doctor(entra)
    assert outcome.code == 0, outcome.out
    found = checks(outcome)
    assert found["sign-in", f"app {entra.client_id}"]["status"] == "ok"
    assert found["permission", "BitlockerKey.Read.All"]["status"] == "ok"
    basic = found["permission", "BitlockerKey.ReadBasic.All"]
    assert basic["status"] == "ok"
    assert "through BitlockerKey.Read.All" in basic["detail"]
    assert found["permission", "Device.Read.All"]["status"] == "ok"
    for later in ("AuditLog.Read.All", "DeviceManagementManagedDevices.ReadWrite.All"):
        assert found["permission", later]["status"] == "warn"
    assert found["graph", graph.graph_url]["status"] == "ok"
    assert not [area for area, _ in found if area == "role"]  # an app has no roles
    assert graph.key_reads == []  # a listing: no key was read, nothing audited


def test_an_app_without_device_read_is_exit_3_with_the_consent_url(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon("BitlockerKey.Read.All")
    outcome = doctor(entra)
    assert outcome.code == 3
    device = checks(outcome)["permission", "Device.Read.All"]
    assert device["status"] == "missing-right"
    consent = f"{graph.base_url}/{graph.tenant_id}/adminconsent?client_id={entra.client_id}"
    assert device["fix"] == (
        "add the application permission Device.Read.All to the app registration, then "
        f"grant consent: {consent}"
    )


def test_the_table_names_the_missing_permission_and_the_url(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon("BitlockerKey.ReadBasic.All", "Device.Read.All")
    config = entra.config()
    code, out, _ = invoke_with(config, "doctor", **entra.checks)
    assert code == 3
    assert "MISSING RIGHT permission: BitlockerKey.Read.All" in out
    assert f"{graph.base_url}/{graph.tenant_id}/adminconsent?client_id=" in out


def test_a_refused_secret_is_a_missing_sign_in(entra: Entra) -> None:
    entra.daemon()
    entra.monkeypatch.setenv("BITKEY_DIR_CLIENT_SECRET", "Wr0ng~not-the-secret_99")
    outcome = doctor(entra)
    assert outcome.code == 3
    (sign_in,) = [c for (area, _), c in checks(outcome).items() if area == "sign-in"]
    assert sign_in["status"] == "missing-right"


@pytest.mark.usefixtures("file_keyring")
def test_a_signed_in_user_without_a_role_is_told_which_roles_read_keys(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.public()
    plain = graph.add_user("plain@contoso.onmicrosoft.com")
    with device_code_answered(graph, plain):
        assert entra.login(auth="device-code").code == 0
    outcome = doctor(entra, auth="device-code")
    assert outcome.code == 3
    role = checks(outcome)["role", plain.user_principal_name]
    assert role["status"] == "missing-right"
    assert "only the keys of devices it owns" in role["detail"]
    for name in ROLE_NAMES:
        assert name in role["fix"]
    found = checks(outcome)
    assert found["permission", "BitlockerKey.Read.All"]["status"] == "ok"  # scp
    assert found["permission", "Device.Read.All"]["status"] == "ok"


@pytest.mark.usefixtures("file_keyring")
def test_a_helpdesk_administrator_is_healthy(entra: Entra, graph: GraphEmulator) -> None:
    entra.public()
    agent = graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
    with device_code_answered(graph, agent):
        assert entra.login(auth="device-code").code == 0
    outcome = doctor(entra, auth="device-code")
    assert outcome.code == 0, outcome.out
    role = checks(outcome)["role", agent.user_principal_name]
    assert role["status"] == "ok"
    assert role["detail"].startswith("holds Helpdesk Administrator")


def test_an_unreachable_identity_platform_is_exit_4(entra: Entra) -> None:
    entra.daemon()
    outcome = doctor(entra, authority_host="https://127.0.0.1:9")
    assert outcome.code == 4
    (sign_in,) = [c for (area, _), c in checks(outcome).items() if area == "sign-in"]
    assert sign_in["status"] == "unreachable"


# -- whether device owners may read their keys (the tenant's authorization policy) ------------

POLICY_READ = "Policy.Read.All"
OWNERS = ("policy", "device owners")


@pytest.mark.parametrize(("allowed", "status"), [(True, "warn"), (False, "ok")])
def test_owners_reading_their_keys_is_a_warning(
    entra: Entra, graph: GraphEmulator, allowed: bool, status: str
) -> None:
    entra.daemon(*FULL, POLICY_READ)
    graph.home.owners_read_bitlocker_keys = allowed
    outcome = doctor(entra)
    assert outcome.code == 0, outcome.out  # a warning, not a failure
    owners = checks(outcome)[OWNERS]
    assert owners["status"] == status
    if allowed:
        assert "allowedToReadBitlockerKeysForOwnedDevice is true" in owners["detail"]
        assert "AllowedToReadBitlockerKeysForOwnedDevice = $false" in owners["fix"]
    else:
        assert owners["detail"] == "may not read their devices' BitLocker keys"
    assert graph.count(r"^/v1\.0/policies/authorizationPolicy$", method="GET") == 1


def test_the_policy_is_read_per_tenant(entra: Entra, graph: GraphEmulator) -> None:
    app = graph.add_app(
        "msp", public_client=False, secret=SECRET, app_roles=[*FULL, POLICY_READ], multi_tenant=True
    )
    entra.client_id = app.client_id
    entra.monkeypatch.setenv("BITKEY_DIR_CLIENT_SECRET", SECRET)
    strict = graph.add_tenant("strict.onmicrosoft.com")
    strict.consent(app, app_roles=[*FULL, POLICY_READ])
    strict.owners_read_bitlocker_keys = False
    config = entra.config(tenant_id=None, tenant_ids=[graph.tenant_id, strict.tenant_id])
    outcome = invoke_with(config, "doctor", SOURCE, "--format", "json", **entra.checks)
    assert outcome.code == 0, outcome.out
    statuses = {}
    for source in outcome.document["sources"]:
        (owners,) = [c for c in source["checks"] if (c["area"], c["subject"]) == OWNERS]
        statuses[source["source"]] = owners["status"]
    assert statuses == {
        f"{SOURCE}/{graph.tenant_id}": "warn",
        f"{SOURCE}/{strict.tenant_id}": "ok",
    }


def test_a_sign_in_that_may_not_read_the_policy_cannot_tell_and_says_so(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon(*FULL)
    outcome = doctor(entra)
    assert outcome.code == 0, outcome.out
    owners = checks(outcome)[OWNERS]
    assert owners["status"] == "warn"
    assert owners["detail"].startswith("cannot tell whether device owners may read")
    assert "it takes Policy.Read.All" in owners["detail"]
    assert "request-id" in owners["detail"]


def test_a_policy_that_does_not_say_cannot_tell(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, POLICY_READ)
    graph.home.owners_read_bitlocker_keys = None
    owners = checks(doctor(entra))[OWNERS]
    assert owners["status"] == "warn"
    assert "without allowedToReadBitlockerKeysForOwnedDevice" in owners["detail"]
