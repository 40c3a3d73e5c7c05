"""What bitkey-dir lists from Graph: keys (metadata, never a value), devices, and the audit
log's key reads, each built with msgraph-sdk's request builder and paged by graph.py; and
what is made of them alone (the Key ID index's entries, the escrow of each device).

Nothing here reads a key value, so nothing here is an audited read: BitlockerKey.ReadBasic.All
and Device.Read.All are enough (AuditLog.Read.All for the audit log). msgraph-sdk is imported
inside the functions, as in graph.py.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Final

from bitkey_dir.core.model import ComputerName, KeyEntry, KeyId
from bitkey_dir.sources.base import Escrow, KeyRead, Warn
from bitkey_dir.sources.entra.graph import Graph, Record, abandon
from bitkey_dir.sources.entra.odata import KEY_ID_SHAPE, device_filter, odata_quote, timestamp

LIST_KEYS: Final = "BitlockerKey.ReadBasic.All"
LIST_DEVICES: Final = "Device.Read.All"
Device = dict[str, str]  # deviceId and displayName


# -- keys -------------------------------------------------------------------------------------


async def listed_keys(graph: Graph, device_id: str | None = None) -> AsyncIterator[Record]:
    """Key metadata (never a value), page after page: all keys, or a device's keys."""
    from msgraph.generated.information_protection.bitlocker.recovery_keys import (
        recovery_keys_request_builder as keys_module,
    )

    builder = keys_module.RecoveryKeysRequestBuilder(graph.adapter, {})
    parameters = builder.RecoveryKeysRequestBuilderGetQueryParameters(
        filter=f"deviceId eq {odata_quote(device_id)}" if device_id else None
    )
    async for key in graph.pages(builder, parameters, "listing keys", LIST_KEYS):
        if isinstance(key.get("id"), str) and KEY_ID_SHAPE.fullmatch(key["id"]):
            yield key


async def list_keys(graph: Graph, device_id: str | None = None) -> list[Record]:
    """Key metadata (never values): all keys, or a device's keys."""
    return [key async for key in listed_keys(graph, device_id)]


async def key_entries(graph: Graph) -> AsyncIterator[KeyEntry]:
    """Every key's ID, device (named from one listing of devices, read meanwhile) and date."""
    names = asyncio.create_task(device_names(graph))
    try:
        async for meta in listed_keys(graph):
            known = await names
            device_id = meta.get("deviceId")
            device_id = device_id if isinstance(device_id, str) else None
            yield KeyEntry(
                key_id=KeyId.parse(meta["id"]),
                computer=known.get(device_id) if device_id else None,
                device_id=device_id,
                created=timestamp(meta.get("createdDateTime")),
            )
    finally:
        abandon([names])


# -- devices ----------------------------------------------------------------------------------


async def devices_named(graph: Graph, name: ComputerName) -> list[Device]:
    """The devices whose display name answers ``name`` (names are not unique)."""
    from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder

    parameters = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
        filter=device_filter(name), select=["id", "deviceId", "displayName"]
    )
    builder = DevicesRequestBuilder(graph.adapter, {})
    found: list[Device] = []
    async for device in graph.pages(builder, parameters, "listing devices", LIST_DEVICES):
        device_id, shown = device.get("deviceId"), device.get("displayName")
        if isinstance(device_id, str) and isinstance(shown, str) and name.matches(shown):
            found.append({"deviceId": device_id, "displayName": shown})
    return found


async def device_names(graph: Graph) -> dict[str, str]:
    """Every device's ID → display name, from one listing."""
    from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder

    builder = DevicesRequestBuilder(graph.adapter, {})
    parameters = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
        select=["deviceId", "displayName"], top=999
    )
    names: dict[str, str] = {}
    async for device in graph.pages(builder, parameters, "listing devices", LIST_DEVICES):
        device_id, shown = device.get("deviceId"), device.get("displayName")
        if isinstance(device_id, str) and isinstance(shown, str):
            names[device_id] = shown
    return names


async def names_of(graph: Graph, device_ids: set[str]) -> dict[str, str]:
    """Device ID → display name, one query per device, all at once."""
    from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder

    async def name_of(device_id: str) -> tuple[str, str | None]:
        parameters = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
            filter=f"deviceId eq {odata_quote(device_id)}", select=["displayName"]
        )
        builder = DevicesRequestBuilder(graph.adapter, {})
        async for device in graph.pages(builder, parameters, "naming the device", LIST_DEVICES):
            shown = device.get("displayName")
            if isinstance(shown, str):
                return device_id, shown
        return device_id, None

    found = await asyncio.gather(*(name_of(d) for d in sorted(device_ids)))
    return {device_id: name for device_id, name in found if name is not None}


# -- audit --------------------------------------------------------------------------------------


async def escrow(graph: Graph, source: str, warn: Warn) -> list[Escrow]:
    """Every Windows device with its number of keys and the newest key's date: keys listed
    once and devices once, then joined here."""
    from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder
    from msgraph.generated.information_protection.bitlocker.recovery_keys import (
        recovery_keys_request_builder as keys_module,
    )

    counts: dict[str, tuple[int, datetime | None]] = {}
    keys = keys_module.RecoveryKeysRequestBuilder(graph.adapter, {})
    key_query = keys.RecoveryKeysRequestBuilderGetQueryParameters(
        select=["id", "createdDateTime", "deviceId"]
    )
    async for key in graph.pages(keys, key_query, "listing keys", LIST_KEYS):
        device_id = str(key.get("deviceId") or "").lower()
        created = timestamp(key.get("createdDateTime"))
        count, newest = counts.get(device_id, (0, None))
        if created is not None and (newest is None or created > newest):
            newest = created
        counts[device_id] = (count + 1, newest)
    devices = DevicesRequestBuilder(graph.adapter, {})
    device_query = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
        filter="operatingSystem eq 'Windows'",
        select=["deviceId", "displayName", "operatingSystem", "operatingSystemVersion"],
        top=999,
    )
    found = []
    async for device in graph.pages(devices, device_query, "listing devices", LIST_DEVICES):
        device_id = str(device.get("deviceId") or "").lower()
        name = str(device.get("displayName") or device_id)
        system = " ".join(
            str(device[part])
            for part in ("operatingSystem", "operatingSystemVersion")
            if device.get(part)
        )
        count, newest = counts.get(device_id, (0, None))
        # A handful of versions among thousands of devices: one string each.
        location = sys.intern(system) if system else None
        found.append(Escrow(source, name, location, count, newest, location or "?"))
    if found and not counts:
        warn(
            f"{len(found)} Windows devices, and not one recovery key visible to "
            f"{graph.sign_in.principal}: keys of devices outside its reach are not listed, "
            "so these devices look unescrowed whether or not they are (the coverage is "
            "then not to be trusted)"
        )
    return found


async def key_reads(graph: Graph, since: datetime, source: str) -> AsyncIterator[KeyRead]:
    """Entra's "Read BitLocker key" audit events since ``since``, page after page."""
    from msgraph.generated.audit_logs.directory_audits.directory_audits_request_builder import (
        DirectoryAuditsRequestBuilder,
    )

    from bitkey_dir.sources.entra.audit_log import READ_AUDIT, events_filter, parse_event

    builder = DirectoryAuditsRequestBuilder(graph.adapter, {})
    query = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(
        filter=events_filter(since)
    )
    async for event in graph.pages(builder, query, "reading the audit log", READ_AUDIT):
        read = parse_event(event, source)
        if read is not None:
            yield read
