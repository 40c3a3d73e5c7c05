"""Intune's managed devices, its "rotate BitLocker keys" device action, and the rotation of
the devices a query names (Intune where it manages them, manage-bde steps elsewhere).

An Entra device (``deviceId``) is found among Intune's managed devices by
``azureADDeviceId``; the action is ``POST /beta/deviceManagement/managedDevices/{id}/
rotateBitLockerKeys`` (204), in Graph's beta only. It needs
DeviceManagementManagedDevices.ReadWrite.All, and the device needs Windows 10 1909 or later
with the client-driven recovery password rotation policy and "save to Entra ID": Graph
accepts the action either way, so a device without the policy never rotates, and that is
said with every request.

How a requested rotation went is in the managed device's ``deviceActionResults`` (beta): a
``rotateBitLockerKeysDeviceActionResult`` whose ``actionState`` is pending, active, done,
failed, notSupported (or none, canceled), with ``startDateTime`` and ``errorCode``. There is
no endpoint of its own: the managed device is read again (:func:`progress`), and once it is
done the device's keys escrowed since the action started are the new ones.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from bitkey_dir.core.errors import BitkeyError
from bitkey_dir.core.model import KeyId, Query
from bitkey_dir.core.rotation import KeyOnVolume, Progress, Rotation, State, rotation_steps
from bitkey_dir.sources.entra import listings
from bitkey_dir.sources.entra.graph import Busy, Graph, Record
from bitkey_dir.sources.entra.odata import odata_quote, timestamp, volume_type

READ_MANAGED: Final = "DeviceManagementManagedDevices.Read.All"
ROTATE: Final = "DeviceManagementManagedDevices.ReadWrite.All"
POLICY: Final = (
    "the device rotates only with the client-driven recovery password rotation policy "
    "(Windows 10 1909+, keys saved to Entra ID)"
)
# Our clock and Graph's may differ: an action result that started this much before we asked
# is still taken for ours (an older one would have to be that recent, and for the same device).
CLOCK_SKEW: Final = timedelta(minutes=5)
STATES: Final[dict[str, State]] = {
    "done": "done",
    "failed": "failed",
    "canceled": "failed",
    "notsupported": "not supported",
}


async def managed_devices(graph: Graph, device_id: str) -> list[dict[str, Any]]:
    """Intune's managed devices for one Entra device ID (normally one; none if unmanaged)."""
    from msgraph.generated.device_management.managed_devices.managed_devices_request_builder import (  # noqa: E501
        ManagedDevicesRequestBuilder,
    )

    parameters = ManagedDevicesRequestBuilder.ManagedDevicesRequestBuilderGetQueryParameters(
        filter=f"azureADDeviceId eq {odata_quote(device_id)}", select=["id", "deviceName"]
    )
    builder = ManagedDevicesRequestBuilder(graph.adapter, {})
    return [
        device
        async for device in graph.pages(
            builder, parameters, "finding the device in Intune", f"{READ_MANAGED} (or {ROTATE})"
        )
        if isinstance(device.get("id"), str)
    ]


async def rotate(graph: Graph, managed_device_id: str) -> None:
    """Queue the rotate action for one managed device (Graph answers 204)."""
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    info = RequestInformation(Method.POST)
    info.url = f"{_managed_url(graph, managed_device_id)}/rotateBitLockerKeys"
    info.headers.try_add("Accept", "application/json")
    await graph.call(
        graph.adapter.send_no_response_content_async(info, {"XXX": ODataError}),
        "asking Intune to rotate the device's keys",
        ROTATE,
    )


def _managed_url(graph: Graph, managed_device_id: str) -> str:
    base = graph.sign_in.graph_url
    return f"{base}/beta/deviceManagement/managedDevices/{quote(managed_device_id, safe='')}"


async def rotations(graph: Graph, source: str, query: Query) -> list[Rotation]:
    """Ask Intune to rotate the keys of each device answering ``query``. No key value is
    read (nothing is audited as a read): devices come from names or key metadata."""
    keys_of: dict[str, list[KeyOnVolume]] = {}
    names: dict[str, str] = {}
    if query.computer is not None:
        for device in await listings.devices_named(graph, query.computer):
            names[device["deviceId"]] = device["displayName"]
            keys_of[device["deviceId"]] = [
                _on_volume(meta) for meta in await listings.list_keys(graph, device["deviceId"])
            ]
    elif query.key_id is not None:
        listed = (
            await graph.key_metadata(str(query.key_id).lower())
            if query.key_id.is_full
            else await listings.list_keys(graph)
        )
        for meta in listed:
            key = _on_volume(meta)
            device_id = meta.get("deviceId")
            if query.key_id.matches(key.key_id) and isinstance(device_id, str):
                keys_of.setdefault(device_id, []).append(key)
        if keys_of:
            with contextlib.suppress(BitkeyError):  # names are for people: optional
                names = await listings.names_of(graph, set(keys_of))
    found = []
    for device_id, keys in keys_of.items():
        managed = await managed_devices(graph, device_id)
        computer = names.get(device_id)
        key_ids = tuple(dict.fromkeys(key.key_id for key in keys))
        if not managed:
            found.append(
                Rotation(
                    source,
                    computer,
                    device_id,
                    key_ids,
                    "by hand",
                    "not managed by Intune: rotate the keys on the device, as an "
                    "administrator, in PowerShell",
                    rotation_steps(keys, backup="entra"),
                )
            )
            continue
        for device in managed:
            asked = datetime.now(UTC)
            await rotate(graph, device["id"])
            found.append(
                Rotation(
                    source,
                    computer or device.get("deviceName"),
                    device_id,
                    key_ids,
                    "requested",
                    f"Intune was asked to rotate the keys (managed device {device['id']}); "
                    f"{POLICY}",
                    follow_up=device["id"],
                    requested=asked,
                )
            )
    return found


def _on_volume(meta: Record) -> KeyOnVolume:
    return KeyOnVolume(KeyId.parse(meta["id"]), volume_type(meta.get("volumeType")))


async def progress(graph: Graph, rotation: Rotation) -> Progress:
    """What Intune says now of a rotation it was asked for: the managed device's latest
    rotateBitLockerKeys result, and once done the keys the device escrowed since."""
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation

    if rotation.follow_up is None:
        return Progress("pending", detail="no managed device to ask")
    info = RequestInformation(Method.GET)
    info.url = _managed_url(graph, rotation.follow_up)
    info.headers.try_add("Accept", "application/json")
    try:
        device = await graph.get_json(
            info,
            "reading the rotation's progress in Intune",
            f"{READ_MANAGED} (or {ROTATE})",
            busy_ok=True,
        )
    except Busy as busy:
        return Progress("pending", detail="Intune is busy", retry_after=busy.retry_after)
    result = _latest_rotation(device.get("deviceActionResults"), rotation.requested)
    if result is None:
        return Progress("pending", detail="Intune lists no rotation of the device yet")
    state = STATES.get(str(result.get("actionState") or "").casefold(), "pending")
    if state == "pending":
        return Progress("pending", detail=f"Intune: {result.get('actionState') or 'none'}")
    if state != "done":
        return Progress(state, detail=_error(result))
    started = timestamp(result.get("startDateTime"))
    new = [
        KeyId.parse(meta["id"])
        for meta in await listings.list_keys(graph, rotation.device_id or "")
        if (created := timestamp(meta.get("createdDateTime"))) is not None
        and (started is None or created >= started)
        and KeyId.parse(meta["id"]) not in rotation.key_ids
    ]
    detail = "" if new else "Intune reports it done; no newer key is listed for the device yet"
    return Progress("done", tuple(new), detail)


def _latest_rotation(results: Any, requested: datetime | None) -> Record | None:
    """The newest rotateBitLockerKeys result that may be ours (not older than the request,
    give or take the clocks' difference)."""
    if not isinstance(results, list):
        return None
    mine = []
    for result in results:
        if not isinstance(result, dict):
            continue
        kind = f"{result.get('actionName')} {result.get('@odata.type')}".casefold()
        started = timestamp(result.get("startDateTime"))
        if "rotatebitlockerkeys" not in kind:
            continue
        if requested is not None and started is not None and started < requested - CLOCK_SKEW:
            continue
        mine.append((started or datetime.min.replace(tzinfo=UTC), result))
    return max(mine, key=lambda pair: pair[0])[1] if mine else None


def _error(result: Record) -> str:
    """The device's own words: actionState and errorCode (an HRESULT, shown in hex too)."""
    state = str(result.get("actionState") or "")
    code = result.get("errorCode")
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        return f"Intune: {state}, error code {code} (0x{code & 0xFFFFFFFF:08X})"
    return f"Intune: {state}"
