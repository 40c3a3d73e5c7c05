"""Microsoft Entra ID over Microsoft Graph: bitlockerRecoveryKey resources of devices.

Config (``type = "entra"``):

``tenant_id``, ``client_id``  the directory and the app registration
``auth``               ``"device-code"`` (default), ``"browser"``, ``"client-secret"`` or
                       ``"client-certificate"``
``certificate_file``   PEM with the private key and certificate, for client-certificate
``authority_host``     default ``https://login.microsoftonline.com`` (national clouds differ)
``graph_url``          default ``https://graph.microsoft.com``
``ca_file``            CA bundle for TLS-inspecting proxies (and tests)
``timeout``            seconds per request (default 30)

Key values are read only for the keys a lookup returns, because Entra audits every read.
msal, msgraph-sdk and httpx are imported only when a lookup runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import ssl
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import urlsplit

from bitkey_dir import __version__
from bitkey_dir.config import Settings
from bitkey_dir.credentials import Secret, Wanted
from bitkey_dir.errors import AuthError, BitkeyError, InputError, SourceError
from bitkey_dir.model import ComputerName, KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.sources.base import Warn
from bitkey_dir.sources.entra_auth import APP_AUTH, DELEGATED_AUTH, SignIn

if TYPE_CHECKING:
    from bitkey_dir.audit import Escrow

USER_AGENT: Final = f"bitkey-dir/{__version__}"
BATCH_LIMIT: Final = 20  # Graph's maximum number of requests in one $batch
CONCURRENT_BATCHES: Final = 4
BATCHES_AHEAD: Final = 2 * CONCURRENT_BATCHES  # read ahead of the export's writing
MAX_RETRY_AFTER: Final = 60.0
ROLES: Final = (
    "Cloud Device Administrator, Helpdesk Administrator, Intune Service Administrator, "
    "Security Administrator, Security Reader or Global Reader"
)
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def odata_quote(text: str) -> str:
    """An OData string literal: quotes doubled, wrapped in single quotes.

    >>> odata_quote("O'Brien's PC")
    "'O''Brien''s PC'"
    """
    return "'" + text.replace("'", "''") + "'"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: integer, fractional, or an HTTP date.

    >>> parse_retry_after("2.128"), parse_retry_after("0"), parse_retry_after("soon")
    (2.128, 0.0, None)
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class _GraphFailure(Exception):
    def __init__(self, status: int, code: str, message: str, request_id: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    def where(self) -> str:
        return f" (request-id {self.request_id})" if self.request_id else ""


def _failure_from(exc: Exception) -> _GraphFailure:
    status = int(getattr(exc, "response_status_code", 0) or 0)
    headers = getattr(exc, "response_headers", None)
    request_id = headers.get("request-id") if isinstance(headers, dict) else None
    error = getattr(exc, "error", None)
    code = str(getattr(error, "code", "") or "")
    message = str(getattr(error, "message", "") or type(exc).__name__)
    inner = getattr(error, "inner_error", None)
    request_id = request_id or getattr(inner, "request_id", None)
    if isinstance(request_id, list):
        request_id = request_id[0] if request_id else None
    return _GraphFailure(status, code, message, request_id)


def _volume_type(value: Any) -> str | None:
    if value is None:
        return None
    text = str(getattr(value, "value", value))
    return {"1": "operatingSystemVolume", "2": "fixedDataVolume", "3": "removableDataVolume"}.get(
        text, text
    )


@dataclass
class EntraSource:
    """Keys from Entra ID; signs in on first use and keeps the token for the run."""

    type_name: ClassVar[str] = "entra"

    name: str
    sign_in: SignIn
    timeout: int = 30

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> EntraSource:
        auth = settings.choice("auth", DELEGATED_AUTH + APP_AUTH, "device-code")
        certificate = settings.string("certificate_file")
        ca_file = settings.string("ca_file")
        graph_url = _https_url(settings, "graph_url", "https://graph.microsoft.com")
        authority_host = _https_url(settings, "authority_host", "https://login.microsoftonline.com")
        timeout = settings.integer("timeout", 30, minimum=1)
        sign_in = SignIn(
            tenant_id=_identifier(settings, "tenant_id"),
            client_id=_identifier(settings, "client_id"),
            auth=auth,
            authority_host=authority_host,
            graph_url=graph_url,
            ca_file=settings.base_dir / Path(ca_file).expanduser() if ca_file else None,
            certificate_file=(
                settings.base_dir / Path(certificate).expanduser() if certificate else None
            ),
            timeout=timeout,
            source=name,
        )
        if auth == "client-certificate" and certificate is None:
            raise settings.error("certificate_file", "a PEM file for client-certificate sign-in")
        settings.reject_unknown()
        return cls(name=name, sign_in=sign_in, timeout=timeout)

    def describe(self) -> str:
        return f"{self.sign_in.graph_url} tenant {self.sign_in.tenant_id} ({self.sign_in.auth})"

    @property
    def principal(self) -> str:
        """For the access trail: the signed-in user, or the app."""
        return self.sign_in.principal

    def close(self) -> None:
        """Each lookup opens and closes its own HTTP client."""

    # -- signing in once ----------------------------------------------------------------

    @property
    def login_secret(self) -> Wanted | None:
        """The client secret `bitkey-dir login` reads, for client-secret sign-in."""
        return self.sign_in.wanted

    def login(self, secret: Secret | None) -> str:
        """Sign in afresh and keep the tokens (and the client secret) for later runs."""
        from bitkey_dir import keystore

        principal = self.sign_in.login(secret)
        wanted = self.sign_in.wanted
        if wanted is not None and secret is not None:
            keystore.current().set(wanted.entry, secret.value)
            return f"signed in as {principal}; the client secret and tokens are stored"
        return f"signed in as {principal}; the tokens are stored"

    def logout(self) -> list[str]:
        return self.sign_in.forget()

    def auth_status(self) -> dict[str, object]:
        from bitkey_dir import keystore
        from bitkey_dir.env import CLIENT_SECRET_ENV
        from bitkey_dir.token_cache import summarize

        cache = self.sign_in.cache_file()
        loaded = cache.load() if cache.exists() else None
        summary = summarize(loaded.serialized) if loaded and loaded.serialized else None
        wanted = self.sign_in.wanted
        tokens: dict[str, object] = {"saved": summary is not None}
        if summary is not None:
            expires = summary.access_token_expires
            tokens.update(
                {
                    "accounts": list(summary.accounts),
                    "access_token_expires": (
                        datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")
                        if expires is not None
                        else None
                    ),
                    "refresh_token": summary.refresh_tokens > 0,
                    "summary": summary.describe(),
                }
            )
        elif loaded is not None and loaded.problem:
            tokens["problem"] = loaded.problem
        account = (
            summary.accounts[0]
            if summary and summary.accounts
            else f"app {self.sign_in.client_id}"
            if self.sign_in.auth in APP_AUTH
            else None
        )
        return {
            "account": account,
            "secret": "client secret" if wanted else None,
            "stored": keystore.current().has(wanted.entry) if wanted else None,
            "environment": bool(wanted and os.environ.get(CLIENT_SECRET_ENV)),
            "tokens": tokens,
        }

    # -- running the async SDK from synchronous callers ---------------------------------

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        if query.computer is not None:
            _device_filter(query.computer)  # bad input is refused before anyone signs in
        self.sign_in.token()  # sign in first, so that a sign-in problem is reported as one
        return asyncio.run(self._with_client(lambda adapter: self._find(adapter, query, warn)))

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        self.sign_in.token()

        async def keys() -> AsyncIterator[RecoveryKey]:
            async with self._adapter() as adapter:
                async for key in self._all_keys(adapter, warn):
                    yield key

        yield from _drive(keys())

    async def _with_client(self, work: Any) -> Any:
        async with self._adapter() as adapter:
            return await work(adapter)

    @contextlib.asynccontextmanager
    async def _adapter(self) -> AsyncIterator[Any]:
        """msgraph-sdk's request adapter on a client of our own; Graph's network errors
        inside the ``async with`` become a SourceError."""
        import httpx
        from kiota_abstractions.api_client_builder import register_default_deserializer
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_http.kiota_client_factory import KiotaClientFactory
        from kiota_http.middleware import RetryHandler
        from kiota_http.middleware.options import RetryHandlerOption
        from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.graph_request_adapter import options as graph_options
        from msgraph_core import GraphClientFactory
        from msgraph_core.middleware import GraphTelemetryHandler

        class RetryAfterHandler(RetryHandler):
            """kiota's handler, honouring fractional and zero Retry-After values."""

            def get_delay_time(
                self, retry_count: int, response: Any = None, delay: float = 0.0
            ) -> float:
                headers = getattr(response, "headers", None) or {}
                waited = parse_retry_after(headers.get("retry-after"))
                if waited is not None:
                    return waited
                return float(super().get_delay_time(retry_count, None, delay))

        # What GraphServiceClient's constructor would do: without a JSON parser registered,
        # kiota cannot read Graph's error bodies and raises a bare APIError.
        register_default_deserializer(JsonParseNodeFactory)
        graph_url = self.sign_in.graph_url
        context = ssl.create_default_context(
            cafile=str(self.sign_in.ca_file) if self.sign_in.ca_file else None
        )
        headers = {
            "User-Agent": USER_AGENT,
            "ocp-client-name": "bitkey-dir",
            "ocp-client-version": __version__,
        }
        middleware = [
            RetryAfterHandler(RetryHandlerOption(delay=0.5, max_retries=4))
            if isinstance(handler, RetryHandler)
            else handler
            for handler in KiotaClientFactory.get_default_middleware(graph_options)
        ]
        middleware.append(GraphTelemetryHandler())
        async with httpx.AsyncClient(verify=context, timeout=self.timeout, headers=headers) as http:
            client_http = GraphClientFactory.create_with_custom_middleware(middleware, client=http)
            auth = AzureIdentityAuthenticationProvider(
                self.sign_in.credential(),
                scopes=self.sign_in.scopes,  # kiota's default scope would drop a port
                allowed_hosts=[urlsplit(graph_url).hostname or ""],  # else no token is sent
            )
            adapter = GraphRequestAdapter(auth, client_http)
            adapter.base_url = f"{graph_url}/v1.0"  # else requests go to the public cloud
            try:
                yield adapter
            except httpx.HTTPError as exc:
                raise SourceError(
                    f"cannot reach Microsoft Graph at {graph_url} ({type(exc).__name__})"
                ) from None

    # -- lookups ------------------------------------------------------------------------

    async def _find(self, adapter: Any, query: Query, warn: Warn) -> list[RecoveryKey]:
        if query.computer is not None:
            return await self._keys_of_computer(adapter, query.computer, warn)
        key_id = query.key_id
        if key_id is None:
            raise InputError("a query needs a Key ID or a computer name")
        if key_id.is_full:
            key = await self._read_key(adapter, str(key_id).lower(), warn)
            if key is None:
                warn(self._not_found_hint(f"Key ID {key_id}"))
            return [key] if key is not None else []
        listed = await self._list_keys(adapter, None)
        wanted = [meta for meta in listed if key_id.matches(KeyId.parse(meta["id"]))]
        if not wanted:
            warn(self._not_found_hint(f"Key ID {key_id}"))
            return []
        return await self._read_keys(adapter, wanted, {}, warn)

    def _not_found_hint(self, what: str) -> str:
        return (
            f"no recovery key with {what} is visible to {self.sign_in.principal}; keys of "
            f"devices outside its reach (without one of the roles {ROLES}, or ownership of "
            "the device) are not listed either"
        )

    async def _keys_of_computer(
        self, adapter: Any, name: ComputerName, warn: Warn
    ) -> list[RecoveryKey]:
        devices = await self._devices(adapter, name)
        if not devices:
            warn(f"no device named {name.text} is visible to {self.sign_in.principal}")
            return []
        by_name: dict[str, list[dict[str, str]]] = {}
        for device in devices:
            by_name.setdefault(device["displayName"].lower(), []).append(device)
        for same in by_name.values():
            if len(same) > 1:
                ids = ", ".join(device["deviceId"] for device in same)
                warn(
                    f"{len(same)} devices are named {same[0]['displayName']} (device IDs "
                    f"{ids}): check the Device ID with the user"
                )
        names = {device["deviceId"]: device["displayName"] for device in devices}
        listed: list[dict[str, Any]] = []
        for device_id in names:
            listed += await self._list_keys(adapter, device_id)
        if not listed:
            warn(f"{name.text}: no recovery keys escrowed in Entra ID for the matching devices")
            return []
        return await self._read_keys(adapter, listed, names, warn)

    async def _devices(self, adapter: Any, name: ComputerName) -> list[dict[str, str]]:
        from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder

        parameters = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
            filter=_device_filter(name), select=["id", "deviceId", "displayName"]
        )
        builder = DevicesRequestBuilder(adapter, {})
        found: list[dict[str, str]] = []
        async for device in self._pages(
            adapter, builder, parameters, "listing devices", "Device.Read.All"
        ):
            device_id, shown = device.get("deviceId"), device.get("displayName")
            if isinstance(device_id, str) and isinstance(shown, str) and name.matches(shown):
                found.append({"deviceId": device_id, "displayName": shown})
        return found

    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        """Every Windows device with its number of keys and the newest key's date.

        Key metadata only: BitlockerKey.ReadBasic.All and Device.Read.All suffice, and no key
        read is audited. Devices are listed once and keys once, then joined here.
        """
        self.sign_in.token()
        yield from asyncio.run(self._with_client(self._escrow))

    async def _escrow(self, adapter: Any) -> list[Escrow]:
        from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder
        from msgraph.generated.information_protection.bitlocker.recovery_keys import (
            recovery_keys_request_builder as keys_module,
        )

        from bitkey_dir.audit import Escrow

        counts: dict[str, tuple[int, datetime | None]] = {}
        keys = keys_module.RecoveryKeysRequestBuilder(adapter, {})
        key_query = keys.RecoveryKeysRequestBuilderGetQueryParameters(
            select=["id", "createdDateTime", "deviceId"]
        )
        async for key in self._pages(
            adapter, keys, key_query, "listing keys", "BitlockerKey.ReadBasic.All"
        ):
            device_id = str(key.get("deviceId") or "").lower()
            created = _timestamp(key.get("createdDateTime"))
            count, newest = counts.get(device_id, (0, None))
            if created is not None and (newest is None or created > newest):
                newest = created
            counts[device_id] = (count + 1, newest)
        devices = DevicesRequestBuilder(adapter, {})
        device_query = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
            filter="operatingSystem eq 'Windows'",
            select=["deviceId", "displayName", "operatingSystem", "operatingSystemVersion"],
            top=999,
        )
        found = []
        async for device in self._pages(
            adapter, devices, device_query, "listing devices", "Device.Read.All"
        ):
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
            found.append(Escrow(self.name, name, location, count, newest, location or "?"))
        return found

    async def _list_keys(self, adapter: Any, device_id: str | None) -> list[dict[str, Any]]:
        """Key metadata (never values): all keys, or a device's keys."""
        from msgraph.generated.information_protection.bitlocker.recovery_keys import (
            recovery_keys_request_builder as keys_module,
        )

        builder = keys_module.RecoveryKeysRequestBuilder(adapter, {})
        parameters = builder.RecoveryKeysRequestBuilderGetQueryParameters(
            filter=f"deviceId eq {odata_quote(device_id)}" if device_id else None
        )
        listed: list[dict[str, Any]] = []
        async for key in self._pages(
            adapter, builder, parameters, "listing keys", "BitlockerKey.ReadBasic.All"
        ):
            if isinstance(key.get("id"), str) and _UUID.fullmatch(key["id"]):
                listed.append(key)
        return listed

    async def _pages(
        self, adapter: Any, builder: Any, parameters: Any, doing: str, permission: str
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a collection, following @odata.nextLink."""
        info = builder.to_get_request_information(_configuration(parameters))
        while True:
            page = await self._get_json(adapter, info, doing, permission)
            for item in page.get("value") or []:
                if isinstance(item, dict):
                    yield item
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str) or not next_link:
                return
            info = builder.with_url(next_link).to_get_request_information()

    async def _get_json(
        self, adapter: Any, info: Any, doing: str, permission: str, *, missing_ok: bool = False
    ) -> dict[str, Any]:
        """The JSON body of a GET sent through the SDK's adapter and middleware.

        msgraph-sdk's model classes are not used: deserialising one imports over a thousand
        generated modules (seconds of start-up), and only a few fields are needed here.
        """
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        raw = await self._call(
            adapter.send_primitive_async(info, "bytes", {"XXX": ODataError}),
            doing,
            permission,
            missing_ok=missing_ok,
        )
        document = json.loads(raw or b"{}")
        return document if isinstance(document, dict) else {}

    async def _read_key(self, adapter: Any, key_id: str, warn: Warn) -> RecoveryKey | None:
        """One key with its value: exactly one Graph request."""
        from msgraph.generated.information_protection.bitlocker.recovery_keys.item import (
            bitlocker_recovery_key_item_request_builder as item,
        )

        builder = item.BitlockerRecoveryKeyItemRequestBuilder(
            adapter, {"bitlockerRecoveryKey%2Did": key_id}
        )
        parameters = builder.BitlockerRecoveryKeyItemRequestBuilderGetQueryParameters(
            select=["key"]
        )
        info = builder.to_get_request_information(_configuration(parameters))
        try:
            found = await self._get_json(
                adapter,
                info,
                "reading the key",
                "BitlockerKey.Read.All",
                missing_ok=True,
            )
        except _NotFound:
            return None
        return self._key({**found, "id": found.get("id") or key_id}, {}, warn)

    async def _read_keys(
        self,
        adapter: Any,
        listed: list[dict[str, Any]],
        names: dict[str, str],
        warn: Warn,
    ) -> list[RecoveryKey]:
        """Values for listed keys: one GET for a single key, else $batch of up to 20."""
        if len(listed) == 1:
            key = await self._read_key(adapter, listed[0]["id"], warn)
            return [_with_computer(key, names)] if key is not None else []

        async def each() -> AsyncIterator[dict[str, Any]]:
            for meta in listed:
                yield meta

        return [key async for key in self._read_batched(adapter, each(), names, warn)]

    async def _read_batched(
        self,
        adapter: Any,
        listed: AsyncIterator[dict[str, Any]],
        names: dict[str, str] | asyncio.Task[dict[str, str]],
        warn: Warn,
    ) -> AsyncIterator[RecoveryKey]:
        """Key values in $batch requests of 20, started while the listing is still paging.

        At most BATCHES_AHEAD batches are read ahead of the caller, and the listing pauses
        while they wait: memory stays the same at any number of keys. The device names are
        awaited before the first key is handed on.
        """
        # A few batches in flight hide the latency; more would only earn 429s.
        in_flight = asyncio.Semaphore(CONCURRENT_BATCHES)

        async def read(chunk: list[dict[str, Any]]) -> dict[str, str]:
            async with in_flight:
                return await self._batch_read(adapter, [meta["id"] for meta in chunk])

        ahead: deque[tuple[list[dict[str, Any]], asyncio.Task[dict[str, str]]]] = deque()

        async def oldest() -> list[RecoveryKey]:
            nonlocal names
            chunk, task = ahead.popleft()
            values = await task
            if not isinstance(names, dict):
                names = await names
            return [
                key
                for meta in chunk
                if meta["id"] in values
                and (key := self._key({**meta, "key": values[meta["id"]]}, names, warn))
            ]

        chunk: list[dict[str, Any]] = []
        try:
            async for meta in listed:
                chunk.append(meta)
                if len(chunk) == BATCH_LIMIT:
                    ahead.append((chunk, asyncio.create_task(read(chunk))))
                    chunk = []
                    if len(ahead) > BATCHES_AHEAD:
                        for key in await oldest():
                            yield key
            if chunk:
                ahead.append((chunk, asyncio.create_task(read(chunk))))
            while ahead:
                for key in await oldest():
                    yield key
        finally:
            _abandon(task for _, task in ahead)

    async def _batch_read(self, adapter: Any, ids: list[str]) -> dict[str, str]:
        """Key values by id through $batch, retrying throttled items after Retry-After."""
        values: dict[str, str] = {}
        pending = list(ids)
        for _attempt in range(5):
            if not pending:
                break
            body = {
                "requests": [
                    {
                        "id": str(number),
                        "method": "GET",
                        "url": f"/informationProtection/bitlocker/recoveryKeys/{key_id}"
                        "?$select=key",
                    }
                    for number, key_id in enumerate(pending)
                ]
            }
            answer = await self._post_batch(adapter, body)
            retry: list[str] = []
            wait = 0.0
            for response in answer.get("responses", []):
                key_id = pending[int(response.get("id", -1))]
                status = int(response.get("status", 0))
                payload = response.get("body") or {}
                if status == 200 and isinstance(payload, dict) and payload.get("key"):
                    values[key_id] = str(payload["key"])
                elif status in (429, 503, 504):
                    retry.append(key_id)
                    item_headers = {
                        k.lower(): v for k, v in (response.get("headers") or {}).items()
                    }
                    waited = parse_retry_after(item_headers.get("retry-after"))
                    wait = max(wait, 1.0 if waited is None else waited)
                elif status == 404:
                    continue
                else:
                    error = payload.get("error", {}) if isinstance(payload, dict) else {}
                    inner = error.get("innerError", {}) if isinstance(error, dict) else {}
                    failure = _GraphFailure(
                        status,
                        str(error.get("code", "")),
                        str(error.get("message", "")),
                        inner.get("request-id") if isinstance(inner, dict) else None,
                    )
                    raise self._explain(failure, "reading keys", "BitlockerKey.Read.All")
            pending = retry
            if pending:
                await asyncio.sleep(wait)
        if pending:
            raise SourceError(f"Graph kept throttling reads of {len(pending)} keys; try again")
        return values

    async def _post_batch(self, adapter: Any, body: dict[str, Any]) -> dict[str, Any]:
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        info = RequestInformation(Method.POST, "{+baseurl}/$batch", {})
        info.headers.try_add("Accept", "application/json")
        # application/json, not octet-stream: kiota does not retry streamed bodies.
        info.set_stream_content(json.dumps(body).encode(), "application/json")
        raw = await self._call(
            adapter.send_primitive_async(info, "bytes", {"XXX": ODataError}),
            "reading keys",
            "BitlockerKey.Read.All",
        )
        answer: dict[str, Any] = json.loads(raw or b"{}")
        return answer

    async def _all_keys(self, adapter: Any, warn: Warn) -> AsyncIterator[RecoveryKey]:
        from msgraph.generated.information_protection.bitlocker.recovery_keys import (
            recovery_keys_request_builder as keys_module,
        )

        builder = keys_module.RecoveryKeysRequestBuilder(adapter, {})
        parameters = builder.RecoveryKeysRequestBuilderGetQueryParameters()

        async def listed() -> AsyncIterator[dict[str, Any]]:
            async for key in self._pages(
                adapter, builder, parameters, "listing keys", "BitlockerKey.ReadBasic.All"
            ):
                if isinstance(key.get("id"), str) and _UUID.fullmatch(key["id"]):
                    yield key

        # Device names come from one listing of devices, read while the keys are.
        names = asyncio.create_task(self._device_names(adapter))
        try:
            async for key in self._read_batched(adapter, listed(), names, warn):
                yield key
        finally:
            _abandon([names])

    async def _device_names(self, adapter: Any) -> dict[str, str]:
        from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder

        builder = DevicesRequestBuilder(adapter, {})
        parameters = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
            select=["deviceId", "displayName"], top=999
        )
        names: dict[str, str] = {}
        async for device in self._pages(
            adapter, builder, parameters, "listing devices", "Device.Read.All"
        ):
            device_id, shown = device.get("deviceId"), device.get("displayName")
            if isinstance(device_id, str) and isinstance(shown, str):
                names[device_id] = shown
        return names

    # -- results and errors -------------------------------------------------------------

    def _key(self, record: dict[str, Any], names: dict[str, str], warn: Warn) -> RecoveryKey | None:
        key_id = KeyId.parse(record["id"])
        password = None
        if record.get("key"):
            try:
                password = RecoveryPassword.parse(str(record["key"]))
            except BitkeyError as exc:
                warn(f"Key ID {key_id}: Entra ID holds a damaged recovery password ({exc})")
                return None
        created = _timestamp(record.get("createdDateTime"))
        device_id = record.get("deviceId")
        return RecoveryKey(
            source=self.name,
            key_id=key_id,
            recovery_password=password,
            computer=names.get(device_id) if device_id else None,
            created=created,
            volume_type=_volume_type(record.get("volumeType")),
            device_id=device_id,
        )

    async def _call(
        self, awaitable: Any, doing: str, permission: str, *, missing_ok: bool = False
    ) -> Any:
        from kiota_abstractions.api_error import APIError

        try:
            return await awaitable
        except APIError as exc:  # ODataError, or a bare APIError for an unreadable body
            failure = _failure_from(exc)
            if missing_ok and failure.status == 404:
                raise _NotFound from None
            raise self._explain(failure, doing, permission) from None

    def _explain(self, failure: _GraphFailure, doing: str, permission: str) -> BitkeyError:
        where = failure.where()
        who = self.sign_in.principal
        if failure.status == 401:
            self.sign_in.drop_access_tokens()
            return AuthError(
                f"Graph refused the token while {doing} ({failure.code or 401}: "
                f"{failure.message[:160]}); the saved token was dropped: run again to get a "
                f"new one{where}"
            )
        if failure.status == 403:
            if permission == "BitlockerKey.Read.All":
                need = "BitlockerKey.Read.All (BitlockerKey.ReadBasic.All reads metadata only)"
            else:
                need = permission
            roles = "" if self.sign_in.auth in APP_AUTH else f", and one of the roles {ROLES}"
            return AuthError(
                f"{who} may not do this while {doing}: it needs the {need} permission{roles}{where}"
            )
        if failure.status in (429, 503, 504):
            return SourceError(
                f"Graph is busy ({failure.status}) while {doing}, after retries; try again{where}"
            )
        return SourceError(
            f"Graph answered {failure.status} while {doing}: {failure.code} "
            f"{failure.message[:200]}{where}"
        )


class _NotFound(Exception):
    pass


def _device_filter(name: ComputerName) -> str:
    """displayName eq '…', or startswith for a pattern; Graph has no other wildcard."""
    if not name.has_wildcard:
        return f"displayName eq {odata_quote(name.text)}"
    prefix = name.text.split("*", 1)[0]
    if not prefix:
        raise InputError(
            "Entra ID matches device names by their beginning: put at least one character "
            "before the first * (PC-00*)"
        )
    return f"startswith(displayName,{odata_quote(prefix)})"


def _timestamp(value: Any) -> datetime | None:
    """Graph's ISO 8601 timestamps ("2024-03-01T10:15:00Z"), always with a UTC offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


def _with_computer(key: RecoveryKey, names: dict[str, str]) -> RecoveryKey:
    from dataclasses import replace

    if key.computer is None and key.device_id in names:
        return replace(key, computer=names[key.device_id])
    return key


def _configuration(parameters: Any) -> Any:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_abstractions.headers_collection import HeadersCollection

    # A fresh HeadersCollection each time: older kiota shared one between requests.
    return RequestConfiguration(query_parameters=parameters, headers=HeadersCollection())


def _https_url(settings: Settings, key: str, default: str) -> str:
    value = settings.string(key, default) or default
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise settings.error(key, "an https:// URL with only a host (and port)")
    return value.rstrip("/")


def _identifier(settings: Settings, key: str) -> str:
    value = settings.required_string(key, "a GUID or, for tenant_id, a domain name")
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", value):
        raise settings.error(key, "a GUID or, for tenant_id, a domain name")
    return value


def _abandon(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel tasks no longer wanted; a failure one of them already had is the failure
    that is being reported anyway, so it is taken, not logged as never retrieved."""
    for task in tasks:
        if task.done():
            if not task.cancelled():
                task.exception()
        else:
            task.cancel()


def _drive(stream: AsyncIterator[RecoveryKey]) -> Iterator[RecoveryKey]:
    """An async generator consumed from synchronous code, on an event loop of its own: its
    work goes on only while the caller asks for the next item."""

    async def step() -> RecoveryKey:
        return await anext(stream)

    with asyncio.Runner() as runner:
        try:
            while True:
                try:
                    item = runner.run(step())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            # Also when the caller stops early: the stream's own clean-up runs on this loop.
            runner.run(_close(stream))


async def _close(stream: AsyncIterator[RecoveryKey]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
