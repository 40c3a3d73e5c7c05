"""Intune's managed devices, and its "rotate BitLocker keys" device action.

An Entra device (``deviceId``) is found among Intune's managed devices by
``azureADDeviceId``; the action is ``POST /beta/deviceManagement/managedDevices/{id}/
rotateBitLockerKeys`` (204), in Graph's beta only. It needs
DeviceManagementManagedDevices.ReadWrite.All, and the device needs Windows 10 1909 or later
with the client-driven recovery password rotation policy and "save to Entra ID": Graph
accepts the action either way, so a device without the policy never rotates, and that is
said with every request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from bitkey_dir.sources.entra.odata import odata_quote

if TYPE_CHECKING:
    from bitkey_dir.sources.entra.graph import Graph

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
