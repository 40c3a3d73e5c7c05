"""The Graph emulator's Intune managed devices, the beta rotateBitLockerKeys action and the
directory audit log, through raw HTTP and the real msal / msgraph-sdk."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from urllib.parse import quote

import pytest

from examples.lab.graph_emulator import (
    AuditEvent,
    GraphEmulator,
    ManagedDevice,
    RotationScript,
    Tenant,
)
from tests.integration.graph_clients import (
    KEYS,
    Answer,
    Sdk,
    app_token,
    assert_graph_error,
    call,
    confidential_client,
    key_query,
    key_url,
    msal_credential,
    request_configuration,
    require_clients,
    run_sdk,
    user_token,
)

pytestmark = pytest.mark.integration

READ = "DeviceManagementManagedDevices.Read.All"
WRITE = "DeviceManagementManagedDevices.ReadWrite.All"
AUDIT = "AuditLog.Read.All"
MANAGED = "/v1.0/deviceManagement/managedDevices"
BETA_MANAGED = "/beta/deviceManagement/managedDevices"
AUDITS = "/v1.0/auditLogs/directoryAudits"
# How published Log Analytics queries pull the key ID and device out of additionalDetails[0].
DETAIL = re.compile(r"key ID: '(?P<key_id>[^']*)'\. Backed up from device: '(?P<device>[^']*)'")


def rotate_url(managed: ManagedDevice | str, version: str = "beta") -> str:
    managed_id = managed if isinstance(managed, str) else managed.id
    return f"/{version}/deviceManagement/managedDevices/{managed_id}/rotateBitLockerKeys"


def filter_query(text: str) -> str:
    return "$filter=" + quote(text, safe="")


def intune_message(answer: Answer) -> dict[str, Any]:
    """Intune's own error document, which Graph serializes into error.message."""
    document: dict[str, Any] = json.loads(answer.body["error"]["message"])
    assert document["_version"] == 3
    assert "Operation ID (for customer support): " in document["Message"]
    return document


def key_ids_of(graph: GraphEmulator, token: str, device_id: str) -> list[dict[str, Any]]:
    query = filter_query(f"deviceId eq '{device_id}'")
    answer = call(graph, "GET", f"{KEYS}?{query}", token=token)
    assert answer.status == 200, answer.body
    rows: list[dict[str, Any]] = answer.body["value"]
    return rows


# == managed devices =============================================================================


def test_managed_devices_filter_select_paging_and_permissions(graph: GraphEmulator) -> None:
    pcs = [graph.add_device(f"PC-{n:02d}") for n in range(5)]
    managed = [graph.add_managed_device(pc) for pc in pcs]
    graph.add_device("NOT-ENROLLED")
    assert graph.managed_devices == managed
    assert managed[0].azure_ad_device_id == pcs[0].device_id
    token = app_token(graph, READ)

    for prefix in (MANAGED, BETA_MANAGED):
        query = filter_query(f"azureADDeviceId eq '{pcs[3].device_id.upper()}'")
        answer = call(graph, "GET", f"{prefix}?{query}&$select=id,deviceName", token=token)
        assert answer.status == 200, answer.body
        assert answer.body["value"] == [{"id": managed[3].id, "deviceName": "PC-03"}]
        assert answer.body["@odata.context"].endswith(
            "#deviceManagement/managedDevices(id,deviceName)"
        )
        assert prefix.split("/")[1] in answer.body["@odata.context"]

    full = call(graph, "GET", f"{MANAGED}/{managed[1].id}", token=token).body
    assert full["@odata.type"] == "#microsoft.graph.managedDevice"
    assert (full["azureADDeviceId"], full["deviceName"]) == (pcs[1].device_id, "PC-01")

    graph.home.managed_devices_page_size = 2
    seen, url = [], f"{MANAGED}?$select=id"
    while url:
        page = call(graph, "GET", url, token=token).body
        seen += [row["id"] for row in page["value"]]
        url = page.get("@odata.nextLink", "").removeprefix(graph.base_url)
    assert seen == [m.id for m in managed]
    assert len(call(graph, "GET", f"{MANAGED}?$top=4", token=token).body["value"]) == 4

    for other in (app_token(graph, "Device.Read.All"), app_token(graph, "BitlockerKey.Read.All")):
        denied = call(graph, "GET", MANAGED, token=other)
        assert_graph_error(denied, 403, "Forbidden")
        assert f"one of the following scopes: {READ}, {WRITE}" in intune_message(denied)["Message"]
    assert call(graph, "GET", MANAGED, token=app_token(graph, WRITE)).status == 200
    app = graph.add_app("console", delegated_scopes=[READ])
    agent = graph.add_user("agent@contoso.onmicrosoft.com")
    assert call(graph, "GET", MANAGED, token=user_token(graph, app, agent, READ)).status == 200

    unknown = call(graph, "GET", f"{MANAGED}/{'0' * 8}-0000-0000-0000-{'0' * 12}", token=token)
    assert_graph_error(unknown, 404, "ResourceNotFound")
    intune_message(unknown)
    startswith = filter_query("startswith(deviceName,'PC')")
    bad = call(graph, "GET", f"{MANAGED}?{startswith}", token=token)
    assert_graph_error(bad, 400, "BadRequest")


def test_add_managed_device_checks_its_device(graph: GraphEmulator) -> None:
    pc = graph.add_device("PC-01")
    managed = graph.add_managed_device(pc.device_id, managed_device_id="md-1")
    assert (managed.id, managed.device, managed.rotation_policy) == ("md-1", pc, True)
    with pytest.raises(ValueError, match="exists already"):
        graph.add_managed_device(pc, managed_device_id="MD-1")
    with pytest.raises(ValueError, match="no device"):
        graph.add_managed_device("00000000-0000-0000-0000-000000000001")
    fabrikam = graph.add_tenant("fabrikam.onmicrosoft.com")
    with pytest.raises(ValueError, match="no device"):
        fabrikam.add_managed_device(pc)  # another tenant's device


# == rotateBitLockerKeys =========================================================================


def test_rotation_escrows_a_newer_key_of_each_rotated_volume(graph: GraphEmulator) -> None:
    pc = graph.add_device("PC-01")
    old = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    originals = [
        graph.add_recovery_key(pc, created=old, volume_type=volume)
        for volume in ("operatingSystemVolume", "fixedDataVolume", "removableDataVolume")
    ]
    managed = graph.add_managed_device(pc)
    app = graph.add_app(
        "rotator", public_client=False, secret="s", app_roles=[WRITE, "BitlockerKey.Read.All"]
    )
    token = graph.mint_access_token(app, roles=app.app_roles)

    answer = call(graph, "POST", rotate_url(managed), token=token)
    assert (answer.status, answer.body) == (204, None)
    assert answer.headers["request-id"]
    (rotation,) = graph.rotations
    assert (rotation.managed_device_id, rotation.device_id) == (managed.id, pc.device_id)
    assert (rotation.app_id, rotation.user_id) == (app.client_id, None)
    assert rotation.request_id == answer.headers["request-id"]

    rows = key_ids_of(graph, token, pc.device_id)
    new = [row for row in rows if row["id"] not in {k.id for k in originals}]
    assert sorted(row["volumeType"] for row in new) == ["fixedDataVolume", "operatingSystemVolume"]
    assert all(row["createdDateTime"] > originals[0].metadata()["createdDateTime"] for row in new)
    assert {k.id for k in originals} <= {row["id"] for row in rows}  # the old keys stay
    password = call(graph, "GET", key_url(graph.recovery_keys[new[0]["id"]], "key"), token=token)
    assert password.body["key"] == graph.recovery_keys[new[0]["id"]].key


def test_rotation_waits_for_the_rotation_delay(graph: GraphEmulator) -> None:
    pc = graph.add_device("PC-01")
    graph.add_recovery_key(pc)
    managed = graph.add_managed_device(pc)
    graph.rotation_delay = 600
    assert graph.home.rotation_delay == 600
    token = app_token(graph, WRITE, "BitlockerKey.Read.All")
    assert call(graph, "POST", rotate_url(managed), token=token).status == 204
    assert len(key_ids_of(graph, token, pc.device_id)) == 1
    graph.advance_clock(599)
    assert len(key_ids_of(graph, token, pc.device_id)) == 1
    graph.advance_clock(2)
    rows = key_ids_of(graph, token, pc.device_id)
    assert len(rows) == 2
    assert graph.rotations[0].escrow_due is not None
    assert graph.home.escrow_due_rotations() == []  # escrowed once only


def test_a_rotation_can_replace_the_old_keys(graph: GraphEmulator) -> None:
    pc = graph.add_device("PC-01")
    old = graph.add_recovery_key(pc)
    usb = graph.add_recovery_key(pc, volume_type="removableDataVolume")
    managed = graph.add_managed_device(pc)
    graph.home.rotation_replaces_keys = True
    token = app_token(graph, WRITE, "BitlockerKey.Read.All", AUDIT)
    assert call(graph, "POST", rotate_url(managed), token=token).status == 204
    rows = key_ids_of(graph, token, pc.device_id)
    assert old.id not in {row["id"] for row in rows}
    assert usb.id in {row["id"] for row in rows}  # removable drives are not rotated
    assert [row["volumeType"] for row in rows if row["id"] != usb.id] == ["operatingSystemVolume"]
    gone = call(graph, "GET", key_url(old, "key"), token=token)
    assert_graph_error(gone, 404, "itemNotFound")
    deletes = filter_query("activityDisplayName eq 'Delete BitLocker key'")
    (event,) = call(graph, "GET", f"{AUDITS}?{deletes}", token=token).body["value"]
    assert event["targetResources"][0]["displayName"] == old.id


def test_a_device_without_rotation_policy_accepts_the_action_and_does_nothing(
    graph: GraphEmulator,
) -> None:
    pc = graph.add_device("PC-01")
    key = graph.add_recovery_key(pc)
    managed = graph.add_managed_device(pc, rotation_policy=False)
    token = app_token(graph, WRITE, "BitlockerKey.Read.All")
    assert call(graph, "POST", rotate_url(managed), token=token).status == 204
    assert [row["id"] for row in key_ids_of(graph, token, pc.device_id)] == [key.id]
    (rotation,) = graph.rotations
    assert rotation.escrow_due is None


def test_rotation_errors(graph: GraphEmulator) -> None:
    pc = graph.add_device("PC-01")
    managed = graph.add_managed_device(pc)
    writer = app_token(graph, WRITE)

    reader = call(graph, "POST", rotate_url(managed), token=app_token(graph, READ))
    assert_graph_error(reader, 403, "Forbidden")
    assert f"one of the following scopes: {WRITE}" in intune_message(reader)["Message"]
    unknown = call(graph, "POST", rotate_url("11111111-2222-3333-4444-555555555555"), token=writer)
    assert_graph_error(unknown, 404, "ResourceNotFound")
    v1 = call(graph, "POST", rotate_url(managed, "v1.0"), token=writer)
    error = assert_graph_error(v1, 400, "BadRequest")
    assert error["message"] == "Resource not found for the segment 'rotateBitLockerKeys'."
    assert_graph_error(
        call(graph, "GET", rotate_url(managed), token=writer), 405, "Request_BadRequest"
    )
    assert graph.rotations == []

    app = graph.add_app("console", delegated_scopes=[WRITE])
    helpdesk = graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
    intune = graph.add_user(
        "intune@contoso.onmicrosoft.com", roles=["Intune Service Administrator"]
    )
    no_role = call(
        graph, "POST", rotate_url(managed), token=user_token(graph, app, helpdesk, WRITE)
    )
    assert_graph_error(no_role, 403, "Forbidden")
    allowed = call(graph, "POST", rotate_url(managed), token=user_token(graph, app, intune, WRITE))
    assert allowed.status == 204
    (rotation,) = graph.rotations
    assert rotation.user_principal_name == intune.user_principal_name


def test_rotation_sees_only_the_callers_tenant(graph: GraphEmulator) -> None:
    fabrikam = graph.add_tenant("fabrikam.onmicrosoft.com")
    managed = graph.add_managed_device(graph.add_device("PC-01"))
    fabrikam_managed = fabrikam.add_managed_device(fabrikam.add_device("PC-01"))
    app = fabrikam.add_app("rotator", public_client=False, secret="s", app_roles=[WRITE])
    token = fabrikam.mint_access_token(app, roles=[WRITE])
    assert call(graph, "POST", rotate_url(managed), token=token).status == 404
    assert call(graph, "POST", rotate_url(fabrikam_managed), token=token).status == 204
    assert (graph.rotations, len(fabrikam.rotations)) == ([], 1)
    listed = call(graph, "GET", MANAGED, token=token).body["value"]
    assert [row["id"] for row in listed] == [fabrikam_managed.id]


# == directory audit events ======================================================================


def test_key_reads_are_logged_as_read_bitlocker_key_events(graph: GraphEmulator) -> None:
    pc = graph.add_device("PC-0042")
    keys = [graph.add_recovery_key(pc) for _ in range(3)]
    app = graph.add_app("bitkey-dir", delegated_scopes=["BitlockerKey.Read.All"])
    agent = graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
    daemon = graph.add_app(
        "daemon", public_client=False, secret="s", app_roles=["BitlockerKey.Read.All", AUDIT]
    )
    daemon_token = graph.mint_access_token(daemon, roles=daemon.app_roles)
    delegated = user_token(graph, app, agent, "BitlockerKey.Read.All")

    assert call(graph, "GET", key_url(keys[0], "key"), token=delegated).status == 200
    assert call(graph, "GET", key_url(keys[1]), token=delegated).status == 200  # no key: no event
    batch = {
        "requests": [
            {
                "id": "1",
                "method": "GET",
                "url": f"{KEYS.removeprefix('/v1.0')}/{keys[2].id}?$select=key",
            }
        ]
    }
    assert call(graph, "POST", "/v1.0/$batch", token=daemon_token, body=batch).status == 200

    answer = call(graph, "GET", AUDITS, token=daemon_token)
    assert answer.status == 200, answer.body
    assert answer.body["@odata.context"].endswith("/v1.0/$metadata#auditLogs/directoryAudits")
    by_app, by_user = answer.body["value"]  # newest first
    for event, key in ((by_user, keys[0]), (by_app, keys[2])):
        assert (event["activityDisplayName"], event["category"]) == (
            "Read BitLocker key",
            "KeyManagement",
        )
        assert event["result"] == "success"
        detail = DETAIL.search(event["additionalDetails"][0]["value"])
        assert detail is not None
        assert detail.group("key_id", "device") == (key.id, "PC-0042")
        assert event["targetResources"][0]["id"] == pc.id
        assert event["targetResources"][0]["displayName"] == "PC-0042"
        dt.datetime.fromisoformat(event["activityDateTime"].replace("0Z", "+00:00"))
    assert by_user["initiatedBy"]["app"] is None
    assert by_user["initiatedBy"]["user"]["id"] == agent.id
    assert by_user["initiatedBy"]["user"]["userPrincipalName"] == agent.user_principal_name
    assert by_app["initiatedBy"]["user"] is None
    principal = graph.home.service_principal(daemon)
    assert principal is not None
    assert by_app["initiatedBy"]["app"] == {
        "appId": daemon.client_id,
        "displayName": "daemon",
        "servicePrincipalId": principal.object_id,
        "servicePrincipalName": None,
    }
    assert [e.id for e in graph.audit_events] == [by_user["id"], by_app["id"]]
    assert len(graph.key_reads) == 2


def test_audit_filter_order_top_and_paging(graph: GraphEmulator) -> None:
    pc = graph.add_device("PC-01")
    key = graph.add_recovery_key(pc)
    admin = graph.add_user("admin@contoso.onmicrosoft.com", roles=["Global Administrator"])
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    events = [
        graph.add_audit_event(key=key, user=admin, time=start + dt.timedelta(hours=n))
        for n in range(5)
    ]
    graph.add_audit_event(
        "Delete BitLocker key",
        time=start + dt.timedelta(hours=2, minutes=30),
        operation_type="Delete",
    )
    graph.add_audit_event("Update user", category="UserManagement", time=start)
    token = app_token(graph, AUDIT)

    def ids(query: str) -> list[str]:
        answer = call(graph, "GET", f"{AUDITS}?{query}", token=token)
        assert answer.status == 200, answer.body
        return [row["id"] for row in answer.body["value"]]

    reads = filter_query("activityDisplayName eq 'Read BitLocker key'")
    assert ids(reads) == [e.id for e in reversed(events)]
    window = filter_query(
        "activityDisplayName eq 'read bitlocker key' and activityDateTime ge 2026-03-01T01:00:00Z "
        "and activityDateTime le 2026-03-01T03:00:00Z"
    )
    assert ids(window) == [events[3].id, events[2].id, events[1].id]
    assert ids(f"{reads}&$orderby=activityDateTime%20asc") == [e.id for e in events]
    assert len(ids(filter_query("startswith(activityDisplayName,'Delete')"))) == 1
    upn = filter_query(f"initiatedBy/user/userPrincipalName eq '{admin.user_principal_name}'")
    assert len(ids(upn)) == 5

    graph.home.audit_page_size = 2
    first = call(graph, "GET", f"{AUDITS}?{reads}", token=token).body
    assert len(first["value"]) == 2
    # An event logged while the client pages does not shift the later pages.
    graph.add_audit_event(key=key, user=admin, time=start + dt.timedelta(hours=9))
    seen, link = [row["id"] for row in first["value"]], first.get("@odata.nextLink")
    while link:
        assert link.startswith(f"{graph.base_url}{AUDITS}?")
        page = call(graph, "GET", link.removeprefix(graph.base_url), token=token).body
        seen += [row["id"] for row in page["value"]]
        link = page.get("@odata.nextLink")
    assert seen == [e.id for e in reversed(events)]
    top = call(graph, "GET", f"{AUDITS}?{reads}&$top=3", token=token).body
    assert len(top["value"]) == 3
    assert "@odata.nextLink" in top

    for bad in (
        filter_query("activityDateTime gt 2026-03-01T00:00:00Z"),
        filter_query("activityDisplayName eq 'x' or category eq 'y'"),
        filter_query("unknownProperty eq 'x'"),
        "$top=0",
        "$orderby=category",
    ):
        assert_graph_error(call(graph, "GET", f"{AUDITS}?{bad}", token=token), 400, "BadRequest")


def test_audit_log_needs_its_permission_and_a_role(graph: GraphEmulator) -> None:
    graph.add_audit_event("Update user", category="UserManagement")
    denied = call(graph, "GET", AUDITS, token=app_token(graph, "Directory.Read.All"))
    assert_graph_error(denied, 403, "Authorization_RequestDenied")
    app = graph.add_app("console", delegated_scopes=[AUDIT])
    helpdesk = graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
    reader = graph.add_user("reader@contoso.onmicrosoft.com", roles=["Security Reader"])
    no_role = call(graph, "GET", AUDITS, token=user_token(graph, app, helpdesk, AUDIT))
    assert_graph_error(no_role, 403, "Authorization_RequestDenied")
    allowed = call(graph, "GET", AUDITS, token=user_token(graph, app, reader, AUDIT))
    assert len(allowed.body["value"]) == 1
    event = graph.audit_events[0]
    one = call(graph, "GET", f"{AUDITS}/{event.id}", token=app_token(graph, AUDIT))
    assert (one.status, one.body["id"]) == (200, event.id)
    assert call(graph, "GET", f"{AUDITS}/nope", token=app_token(graph, AUDIT)).status == 404


def test_audit_events_belong_to_their_tenant(graph: GraphEmulator) -> None:
    fabrikam: Tenant = graph.add_tenant("fabrikam.onmicrosoft.com")
    event = fabrikam.add_audit_event("Update user", category="UserManagement")
    assert isinstance(event, AuditEvent)
    graph.add_audit_event("Update user", category="UserManagement")
    app = fabrikam.add_app("auditor", public_client=False, secret="s", app_roles=[AUDIT])
    listed = call(graph, "GET", AUDITS, token=fabrikam.mint_access_token(app, roles=[AUDIT]))
    assert [row["id"] for row in listed.body["value"]] == [event.id]


def test_audit_log_throttling_through_faults(graph: GraphEmulator) -> None:
    graph.add_audit_event("Update user", category="UserManagement")
    token = app_token(graph, AUDIT)
    graph.add_fault(r"^/v1\.0/auditLogs/directoryAudits$", status=429, retry_after=7)
    throttled = call(graph, "GET", AUDITS, token=token)
    assert_graph_error(throttled, 429, "TooManyRequests")
    assert throttled.headers["retry-after"] == "7"
    assert call(graph, "GET", AUDITS, token=token).status == 200


# == msgraph-sdk =================================================================================


def test_sdk_maps_a_device_rotates_it_and_reads_the_audit_log(graph: GraphEmulator) -> None:
    require_clients()
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.generated.audit_logs.directory_audits.directory_audits_request_builder import (
        DirectoryAuditsRequestBuilder,
    )
    from msgraph.generated.device_management.managed_devices import (
        managed_devices_request_builder as managed_devices,
    )
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    devices_builder = managed_devices.ManagedDevicesRequestBuilder
    pc = graph.add_device("PC-0042")
    old = graph.add_recovery_key(pc, created=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    managed = graph.add_managed_device(pc)
    graph.add_managed_device(graph.add_device("PC-0043"))
    app = graph.add_app(
        "daemon",
        public_client=False,
        secret="s",
        app_roles=["BitlockerKey.Read.All", WRITE, AUDIT],
    )
    graph.home.audit_page_size = 1
    since = graph.now_datetime().replace(microsecond=0)

    async def scenario(sdk: Sdk) -> tuple[str, list[str], list[Any]]:
        devices = await sdk.client.device_management.managed_devices.get(
            request_configuration=request_configuration(
                devices_builder.ManagedDevicesRequestBuilderGetQueryParameters(
                    filter=f"azureADDeviceId eq '{pc.device_id}'", select=["id", "deviceName"]
                )
            )
        )
        (found,) = devices.value
        info = RequestInformation()
        info.http_method = Method.POST
        info.url = (
            f"{graph.base_url}/beta/deviceManagement/managedDevices/{found.id}/rotateBitLockerKeys"
        )
        await sdk.adapter.send_no_response_content_async(info, {"XXX": ODataError})
        keys = sdk.client.information_protection.bitlocker.recovery_keys
        listed = await keys.get()
        newest = max(listed.value, key=lambda k: k.created_date_time)
        for key_id in (old.id, newest.id):
            await keys.by_bitlocker_recovery_key_id(key_id).get(
                request_configuration=key_query(select=["key"])
            )
        audits = sdk.client.audit_logs.directory_audits
        when = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        reads = f"activityDisplayName eq 'Read BitLocker key' and activityDateTime ge {when}"
        page = await audits.get(
            request_configuration=request_configuration(
                DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(
                    filter=reads
                )
            )
        )
        events = list(page.value)
        while page.odata_next_link:
            page = await audits.with_url(page.odata_next_link).get()
            events += page.value
        return found.id, [k.id for k in listed.value], events

    cca = confidential_client(graph, app, "s")
    found_id, listed, events = run_sdk(
        graph, msal_credential(cca), [f"{graph.graph_url}/.default"], scenario
    )
    assert found_id == managed.id
    assert len(listed) == 2
    assert old.id in listed
    new_id = next(key_id for key_id in listed if key_id != old.id)
    assert [e.activity_display_name for e in events] == ["Read BitLocker key"] * 2
    parsed = [DETAIL.search(e.additional_details[0].value) for e in events]
    assert [m.group("key_id") for m in parsed if m] == [new_id, old.id]  # newest first
    assert {e.initiated_by.app.app_id for e in events} == {app.client_id}
    assert events[0].target_resources[0].display_name == "PC-0042"
    assert graph.count(r"^/v1\.0/auditLogs/directoryAudits$") == 2  # paged, one event a page
    (rotation,) = graph.rotations
    assert rotation.app_id == app.client_id


def test_sdk_retries_a_throttled_audit_query(graph: GraphEmulator) -> None:
    require_clients()
    graph.add_audit_event("Update user", category="UserManagement")
    app = graph.add_app("auditor", public_client=False, secret="s", app_roles=[AUDIT])
    graph.add_fault(r"^/v1\.0/auditLogs/directoryAudits$", status=429, retry_after=1)

    async def scenario(sdk: Sdk) -> int:
        page = await sdk.client.audit_logs.directory_audits.get()
        return len(page.value)

    cca = confidential_client(graph, app, "s")
    assert run_sdk(graph, msal_credential(cca), [f"{graph.graph_url}/.default"], scenario) == 1
    attempts = [r for r in graph.requests if r.path == AUDITS]
    assert [r.status for r in attempts] == [429, 200]
    assert attempts[1].time - attempts[0].time >= 1


# == deviceActionResults: how a rotation went ====================================================


def rotate_result(graph: GraphEmulator, token: str, managed: ManagedDevice) -> dict[str, Any]:
    answer = call(graph, "GET", f"{BETA_MANAGED}/{managed.id}", token=token)
    assert answer.status == 200, answer.body
    (result,) = answer.body["deviceActionResults"]
    return dict(result)


def test_the_action_result_is_pending_until_the_keys_are_escrowed(graph: GraphEmulator) -> None:
    pc = graph.add_device("PC-01")
    graph.add_recovery_key(pc)
    managed = graph.add_managed_device(pc)
    graph.rotation_delay = 600
    token = app_token(graph, WRITE, "BitlockerKey.Read.All")
    fresh = call(graph, "GET", f"{BETA_MANAGED}/{managed.id}", token=token)
    assert fresh.body["deviceActionResults"] == []
    assert call(graph, "POST", rotate_url(managed), token=token).status == 204
    result = rotate_result(graph, token, managed)
    assert result["@odata.type"] == "#microsoft.graph.rotateBitLockerKeysDeviceActionResult"
    assert (result["actionName"], result["actionState"]) == ("rotateBitLockerKeys", "pending")
    assert result["startDateTime"] == result["lastUpdatedDateTime"]
    # v1.0 knows no rotateBitLockerKeysDeviceActionResult.
    plain = call(graph, "GET", f"{MANAGED}/{managed.id}", token=token)
    assert plain.body["deviceActionResults"] == []
    graph.advance_clock(601)
    done = rotate_result(graph, token, managed)
    assert done["actionState"] == "done"
    assert done["lastUpdatedDateTime"] > done["startDateTime"]
    assert len(key_ids_of(graph, token, pc.device_id)) == 2
    listed = call(graph, "GET", f"{BETA_MANAGED}?$select=id,deviceActionResults", token=token)
    assert listed.body["value"][0]["deviceActionResults"][0]["actionState"] == "done"


@pytest.mark.parametrize(
    ("script", "state", "code", "keys"),
    [
        (RotationScript(pending_reads=2), "done", 0, 2),
        (
            RotationScript(pending_reads=2, outcome="failed", error_code=-2016345060),
            "failed",
            -2016345060,
            1,
        ),
        (RotationScript(pending_reads=2, outcome="notSupported"), "notSupported", 0, 1),
    ],
)
def test_a_scripted_rotation_is_pending_for_so_many_reads(
    graph: GraphEmulator, script: RotationScript, state: str, code: int, keys: int
) -> None:
    pc = graph.add_device("PC-01")
    graph.add_recovery_key(pc)
    managed = graph.add_managed_device(pc)
    managed.rotation_script = script
    token = app_token(graph, WRITE, "BitlockerKey.Read.All")
    assert call(graph, "POST", rotate_url(managed), token=token).status == 204
    assert graph.rotations[0].escrow_due is None  # the script decides, not the delay
    assert [rotate_result(graph, token, managed)["actionState"] for _ in range(2)] == [
        "pending",
        "pending",
    ]
    assert len(key_ids_of(graph, token, pc.device_id)) == 1
    result = rotate_result(graph, token, managed)
    assert (result["actionState"], result["errorCode"]) == (state, code)
    assert len(key_ids_of(graph, token, pc.device_id)) == keys


# == the authorization policy ==================================================================

POLICY = "/v1.0/policies/authorizationPolicy"


def test_the_authorization_policy_says_whether_owners_read_their_keys(
    graph: GraphEmulator,
) -> None:
    refused = call(graph, "GET", POLICY, token=app_token(graph, "BitlockerKey.Read.All"))
    assert_graph_error(refused, 403, "Authorization_RequestDenied")
    token = app_token(graph, "Policy.Read.All")
    answer = call(graph, "GET", POLICY, token=token)
    assert answer.status == 200, answer.body
    assert answer.body["id"] == "authorizationPolicy"
    assert answer.body["@odata.context"].endswith("#policies/authorizationPolicy/$entity")
    owners = "allowedToReadBitlockerKeysForOwnedDevice"
    assert answer.body["defaultUserRolePermissions"][owners] is True
    graph.home.owners_read_bitlocker_keys = False
    assert (
        call(graph, "GET", POLICY, token=token).body["defaultUserRolePermissions"][owners] is False
    )
    graph.home.owners_read_bitlocker_keys = None
    assert owners not in call(graph, "GET", POLICY, token=token).body["defaultUserRolePermissions"]
    assert call(graph, "POST", POLICY, token=token).status == 405
