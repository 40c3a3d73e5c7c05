"""Intune's managed devices, its "rotate BitLocker keys" device action, and the rotation of
the devices a query names (Intune where it manages them, manage-bde steps elsewhere).

An Entra device (``deviceId``) is found among Intune's managed devices by
``azureADDeviceId``; the action is ``POST /beta/deviceManagement/managedDevices/{id}/
rotateBitLockerKeys`` (204), in Graph's beta only. It needs
DeviceManagementManagedDevices.ReadWrite.All, and the device needs Windows 10 1909 or later
with the client-driven recovery password rotation policy and "save to Entra ID": Graph
accepts the action either way, so a device without the policy never rotates, and that is
said with every request.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

from bitkey_dir.core.errors import BitkeyError
from bitkey_dir.core.model import KeyId, Query
from bitkey_dir.core.rotation import Rotation, manage_bde_steps
from bitkey_dir.sources.entra import listings
from bitkey_dir.sources.entra.graph import Graph
from bitkey_dir.sources.entra.odata import odata_quote

READ_MANAGED: Final = "DeviceManagementManagedDevices.Read.All"
ROTATE: Final = "DeviceManagementManagedDevices.ReadWrite.All"
POLICY: Final = (
    "the device rotates only with the client-driven recovery password rotation policy "
    "(Windows 10 1909+, keys saved to Entra ID)"
)


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
    base = graph.sign_in.graph_url
    info.url = (
        f"{base}/beta/deviceManagement/managedDevices/{managed_device_id}/rotateBitLockerKeys"
    )
    info.headers.try_add("Accept", "application/json")
    await graph.call(
        graph.adapter.send_no_response_content_async(info, {"XXX": ODataError}),
        "asking Intune to rotate the device's keys",
        ROTATE,
    )


async def rotations(graph: Graph, source: str, query: Query) -> list[Rotation]:
    """Ask Intune to rotate the keys of each device answering ``query``. No key value is
    read (nothing is audited as a read): devices come from names or key metadata."""
    keys_of: dict[str, list[KeyId]] = {}
    names: dict[str, str] = {}
    if query.computer is not None:
        for device in await listings.devices_named(graph, query.computer):
            names[device["deviceId"]] = device["displayName"]
            keys_of[device["deviceId"]] = [
                KeyId.parse(meta["id"])
                for meta in await listings.list_keys(graph, device["deviceId"])
            ]
    elif query.key_id is not None:
        listed = (
            await graph.key_metadata(str(query.key_id).lower())
            if query.key_id.is_full
            else await listings.list_keys(graph)
        )
        for meta in listed:
            key_id = KeyId.parse(meta["id"])
            device_id = meta.get("deviceId")
            if query.key_id.matches(key_id) and isinstance(device_id, str):
                keys_of.setdefault(device_id, []).append(key_id)
        if keys_of:
            with contextlib.suppress(BitkeyError):  # names are for people: optional
                names = await listings.names_of(graph, set(keys_of))
    found = []
    for device_id, key_ids in keys_of.items():
        managed = await managed_devices(graph, device_id)
        computer = names.get(device_id)
        if not managed:
            found.append(
                Rotation(
                    source,
                    computer,
                    device_id,
                    tuple(key_ids),
                    "by hand",
                    "not managed by Intune: rotate the keys on the device",
                    manage_bde_steps(tuple(key_ids), backup="entra"),
                )
            )
            continue
        for device in managed:
            await rotate(graph, device["id"])
            found.append(
                Rotation(
                    source,
                    computer or device.get("deviceName"),
                    device_id,
                    tuple(key_ids),
                    "requested",
                    f"Intune was asked to rotate the keys (managed device {device['id']}); "
                    f"{POLICY}",
                )
            )
    return found
