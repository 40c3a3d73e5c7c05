"""Every device's keys, many devices at once: the Key ID index's refresh that does not wait
for one page of the tenant's keys after another.

Graph's key listing pages 20 keys at a time through an opaque nextLink, so a tenant listed
whole costs one round trip per page, one after the other. Listed by device instead
(``$filter=deviceId eq '…'``, the only filter it has), the requests are independent: they
go 20 to a ``$batch``, several batches in flight, while the device list (``devices/delta``,
whose last page also gives the cursor of the next round of changes) is still paging.

Within Graph's throttling rules: at most ``in_flight`` batches at once (the source's
``batches_in_flight``); a throttled batch or item (429, 503, 504) is sent again after its
Retry-After, and meanwhile every batch waits and fewer go at once, growing back one by one
after batches that went through. An item is never dropped: it is answered, sent again, or
the listing fails. A device deleted meanwhile (404) is counted, and its keys are left as the
index had them. A round over every device that is given a cursor keeps it and lists the
devices 999 a page; without one, it walks the device list's delta for the next cursor.
Memory stays flat: the device list pauses while enough requests wait, and
only the devices being listed are held.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit

from bitkey_dir.core.errors import SourceError
from bitkey_dir.core.model import KeyEntry, KeyId
from bitkey_dir.sources.base import DeviceKeys, DeviceRound
from bitkey_dir.sources.entra.graph import BATCH_LIMIT, Busy, Graph, GraphFailure, Record, abandon
from bitkey_dir.sources.entra.listings import LIST_DEVICES, LIST_KEYS
from bitkey_dir.sources.entra.odata import (
    KEY_ID_SHAPE,
    odata_quote,
    parse_retry_after,
    timestamp,
)

IN_FLIGHT: Final = 8  # batches at once by default: 160 requests, well inside Graph's limits
_ATTEMPTS: Final = 8  # a request throttled this often fails the listing
_WAITING: Final = (
    8 * BATCH_LIMIT
)  # requests queued per batch in flight before the device list waits
_FILL: Final = 0.02  # seconds a half-empty batch waits for the device list to fill it
_THROTTLED: Final = (429, 503, 504)


@dataclass
class _Ask:
    device_id: str
    url: str  # relative, as $batch wants it
    attempts: int = 0


@dataclass
class _Pace:
    """How many batches may be in flight now, and when the next may leave."""

    limit: int
    allowed: int = 0
    in_flight: int = 0
    resume_at: float = 0.0

    def __post_init__(self) -> None:
        self.allowed = self.limit

    async def enter(self) -> None:
        while True:
            wait = self.resume_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif self.in_flight < self.allowed:
                self.in_flight += 1
                return
            else:
                await asyncio.sleep(0.005)

    def leave(self, throttled_for: float | None) -> None:
        self.in_flight -= 1
        if throttled_for is not None:
            self.allowed = max(1, self.allowed // 2)
            self.resume_at = max(self.resume_at, time.monotonic() + throttled_for)
        elif self.allowed < self.limit:
            self.allowed += 1


@dataclass
class _Fanout:
    graph: Graph
    round: DeviceRound
    pace: _Pace
    asks: deque[_Ask] = field(default_factory=deque)
    names: dict[str, str | None] = field(default_factory=dict)  # devices being listed
    found: dict[str, list[KeyEntry]] = field(default_factory=dict)
    done: asyncio.Queue[DeviceKeys | None] = field(default_factory=asyncio.Queue)
    listed: bool = False  # the device list has ended
    sending: int = 0  # batches a worker is sending: their retries may still come

    async def run(self, since: str | None) -> None:
        pager = asyncio.create_task(self.list_devices(since))
        workers = [asyncio.create_task(self.worker()) for _ in range(self.pace.limit)]
        tasks = [pager, *workers]
        try:
            finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in finished:
                task.result()  # the first failure ends the listing
        finally:
            abandon(tasks)
            self.done.put_nowait(None)

    async def list_devices(self, since: str | None) -> None:
        from msgraph.generated.devices.delta.delta_request_builder import DeltaRequestBuilder
        from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder

        from bitkey_dir.sources.entra.graph import configuration

        builder: Any = DeltaRequestBuilder(self.graph.adapter, {})
        select = ["deviceId", "displayName"]
        if since:
            info = builder.with_url(since).to_get_request_information()
        elif self.round.cursor:
            # A cursor is held: it stays good, so the devices come 999 a page (a delta
            # round pages at the directory's own, smaller size).
            builder = DevicesRequestBuilder(self.graph.adapter, {})
            query = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
                select=select, top=999
            )
            info = builder.to_get_request_information(configuration(query))
        else:
            delta = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=select)
            info = builder.to_get_request_information(configuration(delta))
        while True:
            page = await self.graph.get_json(info, "listing changed devices", LIST_DEVICES)
            for device in page.get("value") or []:
                if isinstance(device, dict):
                    self.ask_for(device)
            while len(self.asks) > _WAITING * self.pace.limit or self.done.qsize() > _WAITING:
                await asyncio.sleep(0.005)  # memory stays flat: the list waits for the batches
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str) or not next_link:
                cursor = page.get("@odata.deltaLink")
                if isinstance(cursor, str) and cursor:
                    self.round.cursor = cursor
                self.listed = True
                return
            info = builder.with_url(next_link).to_get_request_information()

    def ask_for(self, device: Record) -> None:
        device_id = device.get("deviceId")
        if "@removed" in device:
            self.round.vanished += 1  # its keys stay until the next full listing
            return
        if not isinstance(device_id, str) or not device_id or device_id in self.names:
            return
        shown = device.get("displayName")
        self.names[device_id] = shown if isinstance(shown, str) else None
        self.found[device_id] = []
        where = quote(f"deviceId eq {odata_quote(device_id)}", safe="'")
        self.asks.append(
            _Ask(device_id, f"/informationProtection/bitlocker/recoveryKeys?$filter={where}")
        )

    async def worker(self) -> None:
        while True:
            if len(self.asks) < BATCH_LIMIT and not self.listed:
                await asyncio.sleep(_FILL)  # fuller batches: fewer requests
            if not self.asks:
                if self.listed and self.sending == 0:
                    return
                await asyncio.sleep(0.005)
                continue
            chunk = [self.asks.popleft() for _ in range(min(BATCH_LIMIT, len(self.asks)))]
            self.sending += 1
            try:
                await self.send(chunk)
            finally:
                self.sending -= 1

    async def send(self, chunk: list[_Ask]) -> None:
        body = {
            "requests": [
                {"id": str(number), "method": "GET", "url": ask.url}
                for number, ask in enumerate(chunk)
            ]
        }
        await self.pace.enter()
        try:
            answer = await self.graph.post_batch(body, "listing keys", LIST_KEYS, busy_ok=True)
        except Busy as busy:
            self.pace.leave(1.0 if busy.retry_after is None else busy.retry_after)
            self.round.throttled += 1
            self.again(chunk)
            return
        except BaseException:
            self.pace.leave(None)
            raise
        unanswered = dict(enumerate(chunk))
        wait: float | None = None
        for response in answer.get("responses") or []:
            number = _number(response.get("id"))
            ask = unanswered.pop(number, None) if number is not None else None
            if ask is None:
                continue
            status = int(response.get("status") or 0)
            payload = response.get("body")
            payload = payload if isinstance(payload, dict) else {}
            if status == 200:
                self.take(ask, payload)
            elif status in _THROTTLED:
                headers = {str(k).lower(): v for k, v in (response.get("headers") or {}).items()}
                waited = parse_retry_after(headers.get("retry-after"))
                wait = max(wait or 0.0, 1.0 if waited is None else waited)
                self.round.throttled += 1
                self.again([ask])
            elif status == 404:
                self.forget(ask.device_id)
                self.round.vanished += 1
                self.done.put_nowait(DeviceKeys(ask.device_id, (), listed=False))
            else:
                self.pace.leave(None)
                raise self.graph.explain(_failure(status, payload), "listing keys", LIST_KEYS)
        self.pace.leave(wait)
        self.again(list(unanswered.values()))  # Graph left them out: asked again

    def again(self, asks: list[_Ask]) -> None:
        for ask in asks:
            ask.attempts += 1
            if ask.attempts >= _ATTEMPTS:
                raise SourceError(
                    f"Graph kept throttling the listing of a device's keys ({ask.attempts} "
                    "times); try again later, or lower batches_in_flight"
                )
            self.asks.appendleft(ask)

    def take(self, ask: _Ask, page: Record) -> None:
        entries = self.found.get(ask.device_id)
        if entries is None:
            return
        shown = self.names.get(ask.device_id)
        for meta in page.get("value") or []:
            key_id = meta.get("id") if isinstance(meta, dict) else None
            if not isinstance(key_id, str) or not KEY_ID_SHAPE.fullmatch(key_id):
                continue
            device_id = meta.get("deviceId")
            entries.append(
                KeyEntry(
                    key_id=KeyId.parse(key_id),
                    computer=shown,
                    device_id=device_id if isinstance(device_id, str) else ask.device_id,
                    created=timestamp(meta.get("createdDateTime")),
                )
            )
        next_link = page.get("@odata.nextLink")
        if isinstance(next_link, str) and next_link:  # a device with more than a page of keys
            self.asks.appendleft(_Ask(ask.device_id, _relative(next_link)))
            return
        self.forget(ask.device_id)
        self.round.devices += 1
        self.done.put_nowait(DeviceKeys(ask.device_id, tuple(entries)))

    def forget(self, device_id: str) -> None:
        self.names.pop(device_id, None)
        self.found.pop(device_id, None)


async def device_keys(
    graph: Graph, since: str | None, round: DeviceRound, in_flight: int = IN_FLIGHT
) -> AsyncIterator[DeviceKeys]:
    """Each listed device's keys, as soon as its listing ends (in no particular order)."""
    fanout = _Fanout(graph, round, _Pace(in_flight))
    runner = asyncio.create_task(fanout.run(since))
    try:
        while True:
            done = await fanout.done.get()
            if done is None:
                break
            yield done
        await runner  # the listing's failure, if it had one
    finally:
        abandon([runner])


def _relative(link: str) -> str:
    """A nextLink as a $batch item's URL: relative to the version (Graph refuses others)."""
    parts = urlsplit(link)
    path = parts.path
    for version in ("/v1.0/", "/beta/"):
        if version in path:
            path = "/" + path.split(version, 1)[1]
            break
    return f"{path}?{parts.query}" if parts.query else path


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _failure(status: int, payload: Record) -> GraphFailure:
    error = payload.get("error")
    error = error if isinstance(error, dict) else {}
    inner = error.get("innerError")
    inner = inner if isinstance(inner, dict) else {}
    request_id = inner.get("request-id")
    return GraphFailure(
        status,
        str(error.get("code", "")),
        str(error.get("message", "")),
        request_id if isinstance(request_id, str) else None,
    )
