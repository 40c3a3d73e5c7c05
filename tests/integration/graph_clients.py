"""Talking to the Graph emulator as a client would: raw HTTP (http.client, which adds no header
of its own) and the real msal / msgraph-sdk / kiota clients, configured as the module docstring
of test_graph_emulator.py shows. Shared by the emulator's own tests (test_graph_emulator*.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import importlib
import json
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from examples.lab.graph_emulator import App, GraphEmulator, RecoveryKey, User

T = TypeVar("T")
DELEGATED = ("BitlockerKey.Read.All", "Device.Read.All")
USER_AGENT = "bitkey-dir-tests/1.0"
KEYS = "/v1.0/informationProtection/bitlocker/recoveryKeys"


# -- raw HTTP helpers ---------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def call(
    graph: GraphEmulator,
    method: str,
    target: str,
    *,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    user_agent: str | None = USER_AGENT,
    connection: http.client.HTTPSConnection | None = None,
) -> Answer:
    """One request with http.client, which adds no User-Agent of its own."""
    conn = connection or http.client.HTTPSConnection(
        graph.host, graph.port, context=graph.ssl_context(), timeout=10
    )
    all_headers = dict(headers or {})
    if user_agent:
        all_headers["User-Agent"] = user_agent
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    payload = None
    if isinstance(body, dict | list):
        payload = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    elif isinstance(body, str):
        payload = body.encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, target, body=payload, headers=all_headers)
    response = conn.getresponse()
    raw = response.read()
    if connection is None:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)


def app_token(graph: GraphEmulator, *roles: str, **kwargs: Any) -> str:
    app = graph.add_app("daemon", public_client=False, secret="unused", app_roles=roles)
    return graph.mint_access_token(app, roles=app.app_roles, **kwargs)


def user_token(graph: GraphEmulator, app: App, user: User, *scopes: str) -> str:
    return graph.mint_access_token(app, user=user, scopes=scopes or DELEGATED)


def key_url(key: RecoveryKey, select: str | None = None) -> str:
    return f"{KEYS}/{key.id}" + (f"?$select={select}" if select else "")


def assert_graph_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    error = answer.body["error"]
    assert error["code"] == code
    inner = error["innerError"]
    assert inner["request-id"] == answer.headers["request-id"]
    assert inner["client-request-id"] == answer.headers["client-request-id"]
    dt.datetime.strptime(inner["date"], "%Y-%m-%dT%H:%M:%S")
    return error


# -- client library helpers ---------------------------------------------------------------------


def require_clients() -> None:
    """Skip without the client libraries, except under CI=true, where these tests must run."""
    for module in ("msal", "requests", "httpx", "azure.core", "msgraph", "kiota_http"):
        try:
            importlib.import_module(module)
        except ImportError:
            reason = "the client tests need msal and msgraph-sdk: pip install ."
            if os.environ.get("CI") == "true":
                pytest.fail(f"{reason} (CI=true: they must run)", pytrace=False)
            pytest.skip(reason)


def ca_session(graph: GraphEmulator) -> Any:
    """A requests.Session that passes verify=<emulator CA> on every request."""
    import requests

    ca_file = str(graph.ca_file)

    class CaSession(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, **kwargs: Any) -> Any:  # type: ignore[override]
            kwargs.setdefault("verify", ca_file)
            return super().request(method, url, **kwargs)

    return CaSession()


def public_client(graph: GraphEmulator, app: App) -> Any:
    import msal

    return msal.PublicClientApplication(
        app.client_id,
        authority=graph.authority,
        instance_discovery=False,
        http_client=ca_session(graph),
    )


def confidential_client(graph: GraphEmulator, app: App, credential: Any) -> Any:
    import msal

    return msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=credential,
        authority=graph.authority,
        instance_discovery=False,
        http_client=ca_session(graph),
    )


def delegated_scopes(graph: GraphEmulator, *names: str) -> list[str]:
    return [f"{graph.graph_url}/{name}" for name in names or DELEGATED]


def sign_in(graph: GraphEmulator, app: App, user: User) -> tuple[Any, Any]:
    """Device code flow with the code approved before the first poll: no waiting."""
    pca = public_client(graph, app)
    flow = pca.initiate_device_flow(delegated_scopes(graph))
    graph.approve_device_code(flow["user_code"], user)
    result = pca.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    (account,) = pca.get_accounts()
    return pca, account


def msal_credential(app: Any, account: Any = None) -> Any:
    """azure.core TokenCredential over MSAL: app-only without `account`, else delegated."""
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import ClientAuthenticationError

    class MsalCredential:
        def get_token(
            self,
            *scopes: str,
            claims: str | None = None,
            tenant_id: str | None = None,
            enable_cae: bool = False,
            **kwargs: Any,
        ) -> AccessToken:
            if account is None:
                result = app.acquire_token_for_client(list(scopes), claims_challenge=claims)
            else:
                result = app.acquire_token_silent_with_error(
                    list(scopes), account=account, claims_challenge=claims
                )
            if not result or "access_token" not in result:
                raise ClientAuthenticationError(str((result or {}).get("error")))
            return AccessToken(result["access_token"], int(time.time()) + result["expires_in"])

    return MsalCredential()


@dataclass
class Sdk:
    client: Any  # GraphServiceClient
    adapter: Any  # GraphRequestAdapter


def run_sdk(
    graph: GraphEmulator,
    credential: Any,
    scopes: list[str],
    scenario: Callable[[Sdk], Awaitable[T]],
) -> T:
    """Build the SDK client exactly as the module docstring says and run `scenario`."""
    import httpx
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options as msgraph_options
    from msgraph_core import GraphClientFactory

    async def main() -> T:
        auth = AzureIdentityAuthenticationProvider(
            credential,
            scopes=scopes,
            allowed_hosts=[urlsplit(graph.graph_url).hostname or ""],
        )
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(graph.ca_file))),
            options=msgraph_options,
        )
        async with http:
            adapter = GraphRequestAdapter(auth, http)
            adapter.base_url = graph.graph_v1
            return await scenario(Sdk(GraphServiceClient(request_adapter=adapter), adapter))

    return asyncio.run(main())


def request_configuration(query_parameters: Any = None) -> Any:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_abstractions.headers_collection import HeadersCollection

    # A fresh HeadersCollection each time: older kiota shared one between requests.
    return RequestConfiguration(query_parameters=query_parameters, headers=HeadersCollection())


def key_query(**kwargs: Any) -> Any:
    from msgraph.generated.information_protection.bitlocker.recovery_keys.item import (
        bitlocker_recovery_key_item_request_builder as item,
    )

    builder = item.BitlockerRecoveryKeyItemRequestBuilder
    return request_configuration(
        builder.BitlockerRecoveryKeyItemRequestBuilderGetQueryParameters(**kwargs)
    )


def keys_query(**kwargs: Any) -> Any:
    from msgraph.generated.information_protection.bitlocker.recovery_keys import (
        recovery_keys_request_builder as keys,
    )

    builder = keys.RecoveryKeysRequestBuilder
    return request_configuration(builder.RecoveryKeysRequestBuilderGetQueryParameters(**kwargs))


def devices_query(**kwargs: Any) -> Any:
    from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder

    return request_configuration(
        DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(**kwargs)
    )


async def post_batch(sdk: Sdk, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """$batch as JSON through the adapter (msgraph-core's BatchRequestItem keeps absolute URLs)."""
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    info = RequestInformation(Method.POST, "{+baseurl}/$batch", {})
    info.headers.try_add("Accept", "application/json")
    info.set_stream_content(json.dumps({"requests": requests}).encode(), "application/json")
    raw = await sdk.adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
    return json.loads(raw)  # type: ignore[no-any-return]
