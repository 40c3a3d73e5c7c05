"""GET /devices/delta: the devices of a tenant, then only the ones that changed.

Source: "device: delta" (learn.microsoft.com/graph/api/device-delta, v1.0) and "Use delta
query to track changes in Microsoft Graph data":
- a round of one or more requests: pages joined by `@odata.nextLink` (a `$skiptoken`); the
  last page carries `@odata.deltaLink` (a `$deltatoken`) instead, to be used as it is for
  the next round, which returns only what changed since;
- query parameters other than `$deltatoken` and `$skiptoken` go in the first request only:
  Graph encodes them into the tokens (`$select` here; `id` is always returned);
- an object deleted since comes back as `{"id": ..., "@removed": {"reason": "deleted"}}`.
The page does not document `$top`: the emulator refuses it, and `$filter` (only by `id`,
which the emulator does not implement) with the emulator's own 400 text.

Changes are what the tenant's change log holds (Tenant.add_device, rename_device,
remove_device): a recovery key escrowed for an existing device changes no device, so it is
not in a delta, as in Entra. Generated devices are part of the first round and never change.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as urlquote

from ._generated import Chain, DeviceSegment, ListSegment
from ._model import DEVICE_READERS, Device

if TYPE_CHECKING:
    from ._graph import Graph, Principal
    from ._http import Request, Response


def is_delta(lowered: list[str]) -> bool:
    """/devices/delta, as written or as the SDK writes it (delta()), or fully qualified."""
    return lowered[:1] == ["devices"] and lowered[1:] in (
        ["delta"],
        ["delta()"],
        ["microsoft.graph.delta"],
        ["microsoft.graph.delta()"],
    )


def devices_delta(graph: Graph, request: Request, principal: Principal) -> Response:
    from ._graph import DEVICE_PROPERTIES, bad_request, insufficient_privileges, parse_select

    if not principal.has(*DEVICE_READERS):
        raise insufficient_privileges()
    params: dict[str, str] = {}
    for name, value in request.query_params():
        if name.startswith("$"):
            if name.lower() not in ("$select", "$deltatoken", "$skiptoken"):
                raise bad_request(
                    f"Query option '{name}' is not supported by the emulator's devices/delta."
                )
            params[name.lower()] = value
    tenant = principal.tenant
    if "$skiptoken" in params or "$deltatoken" in params:
        if "$select" in params:
            raise bad_request("$select belongs in the first request of a delta round.")
        state = _decode(params.get("$skiptoken") or params["$deltatoken"])
        if state is None:
            raise bad_request("Invalid delta token.", "Request_BadRequest")
        if "$deltatoken" in params:  # a new round: what changed since that one began
            state = {"kind": "changes", "since": state["since"], "at": 0, "sel": state["sel"]}
    else:
        select = parse_select(params.get("$select"), DEVICE_PROPERTIES, "device")
        state = {"kind": "all", "since": tenant.device_change_seq, "at": 0, "sel": select}
    rows, more = _page(tenant, state, tenant.devices_page_size)
    select = state["sel"]
    if select:
        rows = [
            row if "@removed" in row else {k: row[k] for k in ("id", *select) if k in row}
            for row in rows
        ]
    payload: dict[str, Any] = {"@odata.context": f"{graph.metadata(request)}#devices"}
    base = f"{graph.emu.base_url}{request.path}"
    if more is not None:
        payload["@odata.nextLink"] = f"{base}?$skiptoken={urlquote(_encode(more), safe='')}"
    else:
        done = {"kind": "changes", "since": state["until"], "at": 0, "sel": select}
        payload["@odata.deltaLink"] = f"{base}?$deltatoken={urlquote(_encode(done), safe='')}"
    payload["value"] = rows
    return graph.ok(payload)


def _page(tenant: Any, state: dict[str, Any], size: int) -> tuple[list[dict[str, Any]], Any]:
    """One page of the round ``state`` describes, and the state of the next page (None: the
    round ends). ``state["until"]`` is set to where the next round starts."""
    at = int(state["at"])
    if state["kind"] == "all":
        chain = Chain(
            [
                ListSegment(list(tenant.devices), Device.to_graph),
                *(DeviceSegment(block) for block in tenant.generated),
            ]
        )
        rows, next_at = chain.page(at, size)
        state["until"] = state["since"]  # changes made during the round come in the next
    else:
        changed = tenant.device_changes_since(int(state["since"]))
        rows = [
            device.to_graph()
            if isinstance(device, Device)
            else {"id": device, "@removed": {"reason": "deleted"}}
            for device in changed[at : at + size]
        ]
        next_at = at + size if at + size < len(changed) else None
        state["until"] = tenant.device_change_seq if next_at is None else state["since"]
    if next_at is None:
        return rows, None
    return rows, {**state, "at": next_at}


def _encode(state: dict[str, Any]) -> str:
    keep = {k: state[k] for k in ("kind", "since", "at", "sel")}
    return base64.urlsafe_b64encode(json.dumps(keep).encode()).rstrip(b"=").decode("ascii")


def _decode(token: str) -> dict[str, Any] | None:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if state["kind"] not in ("all", "changes") or int(state["since"]) < 0:
            return None
        int(state["at"])
        if not isinstance(state["sel"], list):
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return dict(state)
