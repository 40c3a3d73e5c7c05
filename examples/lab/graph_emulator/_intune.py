"""Intune on Graph: managed devices (v1.0 and beta) and the beta rotateBitLockerKeys action.

Sources, by behaviour:
- List managedDevices (intune-devices-manageddevice-list): GET /deviceManagement/managedDevices,
  DeviceManagementManagedDevices.Read.All or .ReadWrite.All, delegated or application; rows are
  managedDevice objects (`@odata.type` #microsoft.graph.managedDevice). Mapping an Entra
  deviceId to its managed device with `$filter=azureADDeviceId eq '<deviceId>'` is what
  published rotation runbooks do.
- rotateBitLockerKeys (intune-devices-manageddevice-rotatebitlockerkeys, beta only):
  POST /beta/deviceManagement/managedDevices/{id}/rotateBitLockerKeys, no body, 204 No Content,
  DeviceManagementManagedDevices.ReadWrite.All. On v1.0 the segment does not exist: Graph's
  answer for an unknown segment, 400 BadRequest "Resource not found for the segment
  'rotateBitLockerKeys'." (the same answer microsoft-graph-docs#21262 quotes for a segment
  missing from a version).
- Intune's errors wrap its own JSON in the Graph envelope's `message`: 403 code "Forbidden",
  message {"_version": 3, "Message": "Application is not authorized to perform this
  operation. Application must have one of the following scopes: ... - Operation ID (for
  customer support): 00000000-... - Activity ID: ... - Url: https://fef....", ...}
  (quoted in mondoohq/cnspec#1708 and maester365/maester#1395); 404 code "ResourceNotFound"
  with "An error has occurred - Operation ID ..." (ThomasKur/IntuneDocumentation#39).

The emulator's own choices, where no source says:
- A delegated caller of rotateBitLockerKeys also needs an Intune role that allows remote
  actions; Intune RBAC is not modelled, so the directory roles "Intune Service Administrator"
  and "Global Administrator" stand for it (model.INTUNE_ROLES). Without one: 403 Forbidden,
  "User is not authorized to perform this operation." in Intune's wrapper.
- The action only queues a device action, so Graph answers 204 whether or not the device
  will ever rotate (no rotation policy, offline, Windows too old); nothing in the response
  tells. The outcome is in the managed device's `deviceActionResults` (beta): a
  rotateBitLockerKeysDeviceActionResult with `actionName`, `actionState` (none, pending,
  canceled, active, done, failed, notSupported), `startDateTime`, `lastUpdatedDateTime` and
  `errorCode`; no endpoint of its own, so a client reads the managed device again. The
  emulator serves one result per device (the latest request's), on GET by id and in lists,
  under /beta only (the derived type is beta's); `actionName` "rotateBitLockerKeys".
- Unscripted, a device added with rotation_policy=False answers 204, is recorded in
  `Tenant.rotations` (escrow_due None), escrows nothing, and its result stays "pending"; one
  with the policy is "pending" until its keys are escrowed, then "done".
- A test scripts the outcome with `managed.rotation_script = RotationScript(pending_reads=2,
  outcome="failed", error_code=-2147024809)`: the result is "pending" for that many GETs of
  the managed device by id after the request, then "done" (the new keys are escrowed at that
  moment, whatever rotation_delay says), "failed" with the errorCode, or "notSupported".
- A device with a rotation policy escrows new keys (Tenant.escrow_due_rotations) once
  `Tenant.rotation_delay` seconds of emulator clock have passed. The old keys stay unless
  `Tenant.rotation_replaces_keys` is set: then they are deleted with a "Delete BitLocker key"
  audit event each, which is what published runbooks look for to confirm a rotation.
- Only `$filter` eq on azureADDeviceId, deviceName, id or userPrincipalName (or of such
  clauses) is accepted; the 400 for anything else is worded by the emulator.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._generated import Chain, ListSegment
from ._http import Request, Response
from ._model import (
    INTUNE_ROLES,
    MANAGED_DEVICES_READ,
    MANAGED_DEVICES_WRITE,
    ManagedDevice,
    graph_datetime,
)
from ._model import Rotation as RotationRecord
from ._odata import FilterSyntaxError, UnsupportedFilter, parse_filter

if TYPE_CHECKING:
    from ._graph import Graph, Principal

MANAGED_DEVICE_PROPERTIES = {
    name.lower(): name
    for name in (
        "id",
        "userId",
        "deviceName",
        "managedDeviceOwnerType",
        "enrolledDateTime",
        "lastSyncDateTime",
        "operatingSystem",
        "complianceState",
        "managementAgent",
        "osVersion",
        "azureADRegistered",
        "deviceEnrollmentType",
        "azureADDeviceId",
        "deviceRegistrationState",
        "isEncrypted",
        "userPrincipalName",
        "model",
        "manufacturer",
        "serialNumber",
        "userDisplayName",
        "managedDeviceName",
        "deviceActionResults",
    )
}
MANAGED_DEVICE_FILTERS = {"azureADDeviceId", "deviceName", "id", "userPrincipalName"}
NO_OPERATION = "00000000-0000-0000-0000-000000000000"
ROTATE_ACTION = "rotateBitLockerKeys"


@dataclass
class RotationScript:
    """How a managed device answers its next rotateBitLockerKeys: "pending" for
    `pending_reads` GETs of it by id, then `outcome` (with `error_code` when it failed)."""

    pending_reads: int = 0
    outcome: Literal["done", "failed", "notSupported"] = "done"
    error_code: int = 0


@dataclass
class ActionResult:
    """The device action result of one accepted rotateBitLockerKeys."""

    rotation: RotationRecord
    state: str = "pending"
    updated: dt.datetime | None = None
    error_code: int = 0
    reads: int = 0
    script: RotationScript | None = None

    def to_graph(self) -> dict[str, Any]:
        started = graph_datetime(self.rotation.time)
        return {
            "@odata.type": "#microsoft.graph.rotateBitLockerKeysDeviceActionResult",
            "actionName": ROTATE_ACTION,
            "actionState": self.state,
            "startDateTime": started,
            "lastUpdatedDateTime": graph_datetime(self.updated) if self.updated else started,
            "errorCode": self.error_code,
        }


def advance(graph: Graph, managed: ManagedDevice, *, read: bool) -> None:
    """Bring the device's rotation result up to date; ``read``: a GET of it by id, which
    a script counts."""
    now = graph.emu.now_datetime()
    for result in managed.action_results:
        if result.state != "pending":
            continue
        script = result.script
        if script is None:
            due = result.rotation.escrow_due
            if due is not None and due <= now:
                result.state, result.updated = "done", due
            continue
        if not read:
            continue
        result.reads += 1
        if result.reads <= script.pending_reads:
            continue
        result.state, result.updated, result.error_code = script.outcome, now, script.error_code
        if script.outcome == "done":
            graph.emu.tenants[result.rotation.tenant_id.lower()].escrow_now(result.rotation)


def action_results(request: Request, managed: ManagedDevice) -> list[dict[str, Any]]:
    """What `deviceActionResults` holds for the request's version: beta's derived type only
    under /beta."""
    if request.path.split("/")[1] != "beta":
        return []
    return [result.to_graph() for result in managed.action_results]


def intune_error(status: int, code: str, message: str, request: Request) -> Any:
    """Intune's answer: its own JSON document, serialized into the Graph error's message."""
    from ._graph import GraphError

    url = (
        "https://fef.emulator.manage.microsoft.com/DeviceFE/StatelessDeviceFEService/"
        + request.path.split("/", 2)[2]
        + "?api-version=2024-06-14"
    )
    document = {
        "_version": 3,
        "Message": f"{message} - Operation ID (for customer support): {NO_OPERATION} - "
        f"Activity ID: {uuid.uuid4()} - Url: {url}",
        "CustomApiErrorPhrase": "",
        "RetryAfter": None,
        "ErrorSourceService": "",
        "HttpHeaders": "{}",
    }
    return GraphError(status, code, json.dumps(document, indent=2).replace("\n", "\r\n"))


def not_authorized(request: Request, *scopes: str) -> Any:
    return intune_error(
        403,
        "Forbidden",
        "Application is not authorized to perform this operation. Application must have one "
        f"of the following scopes: {', '.join(scopes)}",
        request,
    )


def managed_devices(graph: Graph, request: Request, principal: Principal) -> Response:
    from ._graph import bad_request, parse_select, query_options

    if not principal.has(MANAGED_DEVICES_READ, MANAGED_DEVICES_WRITE):
        raise not_authorized(request, MANAGED_DEVICES_READ, MANAGED_DEVICES_WRITE)
    tenant = principal.tenant
    params = query_options(request, {"$filter", "$select", "$top", "$skiptoken"})
    select = parse_select(params.get("$select"), MANAGED_DEVICE_PROPERTIES, "managedDevice")
    predicate = None
    if "$filter" in params:
        try:
            predicate, clauses = parse_filter(params["$filter"], MANAGED_DEVICE_PROPERTIES)
        except (FilterSyntaxError, UnsupportedFilter) as exc:
            raise bad_request(f"Invalid filter clause: {exc}") from exc
        for clause in clauses:
            if clause.op != "eq" or clause.prop not in MANAGED_DEVICE_FILTERS:
                raise bad_request(
                    f"Filtering on '{clause.prop}' with '{clause.op}' is not supported by the "
                    "emulator's managedDevices."
                )
    top = tenant.managed_devices_page_size
    if "$top" in params:
        value = params["$top"]
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            raise bad_request(f"Invalid $top value '{value}'.")
        top = int(value)
    for managed in tenant.managed_devices:
        advance(graph, managed, read=False)

    def row(managed: ManagedDevice) -> dict[str, Any]:
        return {**managed.to_graph(), "deviceActionResults": action_results(request, managed)}

    chain = Chain([ListSegment(list(tenant.managed_devices), row)])
    start = graph.start_position(request, params)
    rows, next_position = chain.page(start, top, predicate=predicate)
    context = f"{graph.metadata(request)}#deviceManagement/managedDevices"
    if select:
        context += "(" + ",".join(select) + ")"
        rows = [{name: row[name] for name in select} for row in rows]
    return graph.page(request, params, rows, next_position, context)


def managed_device(
    graph: Graph, request: Request, principal: Principal, managed_device_id: str
) -> Response:
    from ._graph import parse_select, query_options

    if not principal.has(MANAGED_DEVICES_READ, MANAGED_DEVICES_WRITE):
        raise not_authorized(request, MANAGED_DEVICES_READ, MANAGED_DEVICES_WRITE)
    params = query_options(request, {"$select"})
    select = parse_select(params.get("$select"), MANAGED_DEVICE_PROPERTIES, "managedDevice")
    found = principal.tenant.find_managed_device(managed_device_id)
    if found is None:
        raise intune_error(404, "ResourceNotFound", "An error has occurred", request)
    advance(graph, found, read=True)
    row = {**found.to_graph(), "deviceActionResults": action_results(request, found)}
    if select:
        row = {name: row[name] for name in select}
    context = f"{graph.metadata(request)}#deviceManagement/managedDevices/$entity"
    return graph.ok({"@odata.context": context, **row})


def rotate_bitlocker_keys(
    graph: Graph, request: Request, principal: Principal, managed_device_id: str, request_id: str
) -> Response:
    if not principal.has(MANAGED_DEVICES_WRITE):
        raise not_authorized(request, MANAGED_DEVICES_WRITE)
    user = principal.user
    if principal.delegated and user is not None and not user.roles & INTUNE_ROLES:
        raise intune_error(
            403, "Forbidden", "User is not authorized to perform this operation.", request
        )
    tenant = principal.tenant
    found = tenant.find_managed_device(managed_device_id)
    if found is None:
        raise intune_error(404, "ResourceNotFound", "An error has occurred", request)
    now = graph.emu.now_datetime()
    script = found.rotation_script
    record = RotationRecord(
        managed_device_id=found.id,
        device_id=found.azure_ad_device_id,
        app_id=principal.app_id,
        user_id=user.id if user else None,
        user_principal_name=user.user_principal_name if user else None,
        time=now,
        request_id=request_id,
        tenant_id=tenant.tenant_id,
        escrow_due=now + dt.timedelta(seconds=tenant.rotation_delay)
        if found.rotation_policy and script is None
        else None,
    )
    # One result per action: the latest request's replaces the one before.
    found.action_results = [ActionResult(record, script=script)]
    tenant.record_rotation(record)
    advance(graph, found, read=False)
    return Response(204, b"", {})
