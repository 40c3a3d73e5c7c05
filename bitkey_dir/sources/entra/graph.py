"""Requests to Microsoft Graph through msgraph-sdk's request adapter and middleware.

Requests are built by msgraph-sdk's request builders and sent through its adapter (retry
handler replaced to honour any Retry-After); their JSON is read directly, not through the
SDK's model classes: deserialising one imports over a thousand generated modules (seconds of
start-up), and only a few fields are needed here. msgraph-sdk, kiota and httpx are imported
inside the functions that use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final
from urllib.parse import urlsplit

from bitkey_dir import __version__
from bitkey_dir.core.errors import AuthError, BitkeyError, SourceError
from bitkey_dir.sources.entra.odata import parse_retry_after
from bitkey_dir.sources.entra.signin import APP_AUTH, SignIn

USER_AGENT: Final = f"bitkey-dir/{__version__}"
BATCH_LIMIT: Final = 20  # Graph's maximum number of requests in one $batch
CONCURRENT_BATCHES: Final = 4
BATCHES_AHEAD: Final = 2 * CONCURRENT_BATCHES  # read ahead of the export's writing
ROLES: Final = (
    "Cloud Device Administrator, Helpdesk Administrator, Intune Service Administrator, "
    "Security Administrator, Security Reader or Global Reader"
)
READ_KEYS: Final = "BitlockerKey.Read.All"
Record = dict[str, Any]


class GraphFailure(Exception):
    """Graph's answer to a request that failed: status, error code, message, request id."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    def where(self) -> str:
        return f" (request-id {self.request_id})" if self.request_id else ""


class NotFound(Exception):
    """Graph answered 404 to a request that allowed it."""


class Busy(Exception):
    """Graph was still throttling (429, 503, 504) after the retries, for a request that
    allowed it: ask again after ``retry_after`` seconds (None when Graph did not say)."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


def _failure_from(exc: Exception) -> GraphFailure:
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
    return GraphFailure(status, code, message, request_id)


class Graph:
    """One session with Graph: the SDK's adapter, and the requests bitkey-dir makes with it."""

    def __init__(self, adapter: Any, sign_in: SignIn) -> None:
        self.adapter = adapter
        self.sign_in = sign_in

    # -- collections ----------------------------------------------------------------------

    async def pages(
        self, builder: Any, parameters: Any, doing: str, permission: str
    ) -> AsyncIterator[Record]:
        """Every item of a collection, following @odata.nextLink."""
        info = builder.to_get_request_information(configuration(parameters))
        while True:
            page = await self.get_json(info, doing, permission)
            for item in page.get("value") or []:
                if isinstance(item, dict):
                    yield item
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str) or not next_link:
                return
            info = builder.with_url(next_link).to_get_request_information()

    async def get_json(
        self,
        info: Any,
        doing: str,
        permission: str,
        *,
        missing_ok: bool = False,
        busy_ok: bool = False,
    ) -> Record:
        """The JSON body of a GET sent through the SDK's adapter and middleware."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        raw = await self.call(
            self.adapter.send_primitive_async(info, "bytes", {"XXX": ODataError}),
            doing,
            permission,
            missing_ok=missing_ok,
            busy_ok=busy_ok,
        )
        document = json.loads(raw or b"{}")
        return document if isinstance(document, dict) else {}

    # -- key values -----------------------------------------------------------------------

    async def key_metadata(self, key_id: str) -> list[Record]:
        """One key's ID, device and date, not its value (not an audited read); [] if none."""
        from msgraph.generated.information_protection.bitlocker.recovery_keys.item import (
            bitlocker_recovery_key_item_request_builder as item,
        )

        builder = item.BitlockerRecoveryKeyItemRequestBuilder(
            self.adapter, {"bitlockerRecoveryKey%2Did": key_id}
        )
        parameters = builder.BitlockerRecoveryKeyItemRequestBuilderGetQueryParameters(
            select=["id", "deviceId", "createdDateTime", "volumeType"]
        )
        info = builder.to_get_request_information(configuration(parameters))
        try:
            found = await self.get_json(
                info, "reading the key's metadata", "BitlockerKey.ReadBasic.All", missing_ok=True
            )
        except NotFound:
            return []
        return [{**found, "id": found.get("id") or key_id}]

    async def key_value(self, key_id: str) -> Record | None:
        """One key with its value (exactly one request); None when Graph has no such key."""
        from msgraph.generated.information_protection.bitlocker.recovery_keys.item import (
            bitlocker_recovery_key_item_request_builder as item,
        )

        builder = item.BitlockerRecoveryKeyItemRequestBuilder(
            self.adapter, {"bitlockerRecoveryKey%2Did": key_id}
        )
        parameters = builder.BitlockerRecoveryKeyItemRequestBuilderGetQueryParameters(
            select=["key"]
        )
        info = builder.to_get_request_information(configuration(parameters))
        try:
            found = await self.get_json(info, "reading the key", READ_KEYS, missing_ok=True)
        except NotFound:
            return None
        return {**found, "id": found.get("id") or key_id}

    async def read_ahead(self, listed: AsyncIterator[Record]) -> AsyncIterator[tuple[Record, str]]:
        """Each listed key's metadata with its value, read by $batch of 20 while the listing
        is still paging. Keys Graph no longer has are left out.

        At most BATCHES_AHEAD batches are read ahead of the caller, and the listing pauses
        while they wait: memory stays the same at any number of keys.
        """
        # A few batches in flight hide the latency; more would only earn 429s.
        in_flight = asyncio.Semaphore(CONCURRENT_BATCHES)

        async def read(chunk: list[Record]) -> dict[str, str]:
            async with in_flight:
                return await self.key_values([meta["id"] for meta in chunk])

        ahead: deque[tuple[list[Record], asyncio.Task[dict[str, str]]]] = deque()

        async def oldest() -> list[tuple[Record, str]]:
            chunk, task = ahead.popleft()
            values = await task
            return [(meta, values[meta["id"]]) for meta in chunk if meta["id"] in values]

        chunk: list[Record] = []
        try:
            async for meta in listed:
                chunk.append(meta)
                if len(chunk) == BATCH_LIMIT:
                    ahead.append((chunk, asyncio.create_task(read(chunk))))
                    chunk = []
                    if len(ahead) > BATCHES_AHEAD:
                        for pair in await oldest():
                            yield pair
            if chunk:
                ahead.append((chunk, asyncio.create_task(read(chunk))))
            while ahead:
                for pair in await oldest():
                    yield pair
        finally:
            abandon(task for _, task in ahead)

    async def key_values(self, ids: list[str]) -> dict[str, str]:
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
            answer = await self.post_batch(body, "reading keys", READ_KEYS)
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
                    failure = GraphFailure(
                        status,
                        str(error.get("code", "")),
                        str(error.get("message", "")),
                        inner.get("request-id") if isinstance(inner, dict) else None,
                    )
                    raise self.explain(failure, "reading keys", READ_KEYS)
            pending = retry
            if pending:
                await asyncio.sleep(wait)
        if pending:
            raise SourceError(f"Graph kept throttling reads of {len(pending)} keys; try again")
        return values

    async def post_batch(
        self, body: Record, doing: str, permission: str, *, busy_ok: bool = False
    ) -> Record:
        """A $batch sent through the adapter (its retry handler honours Retry-After); with
        ``busy_ok``, still throttled after the retries raises Busy."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        info = RequestInformation(Method.POST, "{+baseurl}/$batch", {})
        info.headers.try_add("Accept", "application/json")
        # application/json, not octet-stream: kiota does not retry streamed bodies.
        info.set_stream_content(json.dumps(body).encode(), "application/json")
        raw = await self.call(
            self.adapter.send_primitive_async(info, "bytes", {"XXX": ODataError}),
            doing,
            permission,
            busy_ok=busy_ok,
        )
        answer: Record = json.loads(raw or b"{}")
        return answer

    # -- errors ---------------------------------------------------------------------------

    async def call(
        self,
        awaitable: Any,
        doing: str,
        permission: str,
        *,
        missing_ok: bool = False,
        busy_ok: bool = False,
    ) -> Any:
        from kiota_abstractions.api_error import APIError

        try:
            return await awaitable
        except APIError as exc:  # ODataError, or a bare APIError for an unreadable body
            failure = _failure_from(exc)
            if missing_ok and failure.status == 404:
                raise NotFound from None
            if busy_ok and failure.status in (429, 503, 504):
                headers = getattr(exc, "response_headers", None)
                waited = headers.get("retry-after") if isinstance(headers, dict) else None
                raise Busy(parse_retry_after(waited)) from None
            raise self.explain(failure, doing, permission) from None

    def explain(self, failure: GraphFailure, doing: str, permission: str) -> BitkeyError:
        """Graph's refusal as the error a person can act on: which permission, which role."""
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
            if permission == READ_KEYS:
                need = "BitlockerKey.Read.All (BitlockerKey.ReadBasic.All reads metadata only)"
            else:
                need = permission
            if self.sign_in.auth in APP_AUTH:
                roles = ""
            elif permission.startswith("RoleManagement"):
                roles = (
                    ", and a role that may read role assignments (Directory Readers, Global "
                    "Reader or Privileged Role Administrator)"
                )
            elif permission.startswith("DeviceManagement"):
                roles = (
                    ", and an Intune role that may rotate BitLocker keys (Intune "
                    "Administrator, or a custom role with Remote tasks: Rotate BitLocker keys)"
                )
            else:
                roles = f", and one of the roles {ROLES}"
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


@contextlib.asynccontextmanager
async def open_graph(sign_in: SignIn, timeout: int) -> AsyncIterator[Graph]:
    """msgraph-sdk's request adapter on an HTTP client of our own; Graph's network errors
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
    graph_url = sign_in.graph_url
    context = ssl.create_default_context(cafile=str(sign_in.ca_file) if sign_in.ca_file else None)
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
    async with httpx.AsyncClient(verify=context, timeout=timeout, headers=headers) as http:
        client_http = GraphClientFactory.create_with_custom_middleware(middleware, client=http)
        auth = AzureIdentityAuthenticationProvider(
            sign_in.credential(),
            scopes=sign_in.scopes,  # kiota's default scope would drop a port
            allowed_hosts=[urlsplit(graph_url).hostname or ""],  # else no token is sent
        )
        adapter = GraphRequestAdapter(auth, client_http)
        adapter.base_url = f"{graph_url}/v1.0"  # else requests go to the public cloud
        try:
            yield Graph(adapter, sign_in)
        except httpx.HTTPError as exc:
            raise SourceError(
                f"cannot reach Microsoft Graph at {graph_url} ({type(exc).__name__})"
            ) from None


def configuration(parameters: Any) -> Any:
    """A request configuration carrying ``parameters``."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_abstractions.headers_collection import HeadersCollection

    # A fresh HeadersCollection each time: older kiota shared one between requests.
    return RequestConfiguration(query_parameters=parameters, headers=HeadersCollection())


def abandon(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel tasks no longer wanted; a failure one of them already had is the failure
    that is being reported anyway, so it is taken, not logged as never retrieved."""
    for task in tasks:
        if task.done():
            if not task.cancelled():
                task.exception()
        else:
            task.cancel()
