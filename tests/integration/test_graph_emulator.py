"""The Graph emulator, proven against raw HTTP and the real msal / msgraph-sdk / kiota clients.

The emulator (examples/lab/graph_emulator) serves Microsoft Graph v1.0 and the
Microsoft identity platform over HTTPS on 127.0.0.1 with its own test CA. The tests here use
its home tenant; test_graph_emulator_tenants.py and test_graph_emulator_generated.py cover
several tenants and generated keys, test_graph_emulator_intune_audit.py Intune managed
devices, key rotation (beta) and the directory audit log.
The client libraries are driven through configuration only; nothing is patched.

How a client must be configured to talk to it (also how the Entra source must be
configurable, since national clouds differ in the same places)::

    import ssl, time
    from urllib.parse import urlsplit
    import httpx, msal, requests
    from azure.core.credentials import AccessToken
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options as msgraph_options
    from msgraph_core import GraphClientFactory

    login_url = graph_url = emulator.base_url        # https://127.0.0.1:PORT (one host for both)
    ca_file = str(emulator.ca_file)

    class CaSession(requests.Session):
        # verify= per request: REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session-level
        # `verify` (requests#3829), and CI images set them.
        def request(self, method, url, **kwargs):
            kwargs.setdefault("verify", ca_file)
            return super().request(method, url, **kwargs)

    app = msal.PublicClientApplication(
        client_id,
        authority=f"{login_url}/{tenant_id}",  # https only
        instance_discovery=False,  # else MSAL asks login.microsoftonline.com about the host
        http_client=CaSession(),
    )
    scopes = [f"{graph_url}/BitlockerKey.Read.All", f"{graph_url}/Device.Read.All"]
    flow = app.initiate_device_flow(scopes)        # app-only: [f"{graph_url}/.default"]
    result = app.acquire_token_by_device_flow(flow)  # polls every flow["interval"] s
    (account,) = app.get_accounts()

    class MsalCredential:  # an azure.core.credentials.TokenCredential
        def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kw):
            result = app.acquire_token_silent_with_error(list(scopes), account=account)
            # (app-only: app.acquire_token_for_client(list(scopes)); check "error" first)
            return AccessToken(result["access_token"], int(time.time()) + result["expires_in"])

    auth = AzureIdentityAuthenticationProvider(
        MsalCredential(),
        scopes=scopes,  # required: kiota's default scope drops the port
        allowed_hosts=[urlsplit(graph_url).hostname],  # else no token is sent at all
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_file)),
        options=msgraph_options,  # what GraphRequestAdapter would use for its own client
    )
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{graph_url}/v1.0"  # forgetting it sends requests to the public cloud
    client = GraphServiceClient(request_adapter=adapter)

The emulator's own Python API is in examples/lab/graph_emulator/__init__.py; graph_clients.py
builds the clients as shown here. Tests below that need the client libraries skip when msal /
msgraph-sdk are not installed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import http.client
import json
import random
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from examples.lab.graph_emulator import (
    ROLE_TEMPLATE_IDS,
    App,
    Device,
    GraphEmulator,
    RecoveryKey,
    User,
    generate_recovery_password,
    is_valid_recovery_password,
    make_client_certificate,
    odata_quote,
)
from tests.integration.graph_clients import (
    DELEGATED,
    KEYS,
    Sdk,
    app_token,
    assert_graph_error,
    call,
    confidential_client,
    delegated_scopes,
    devices_query,
    key_query,
    key_url,
    keys_query,
    msal_credential,
    post_batch,
    public_client,
    require_clients,
    run_sdk,
    sign_in,
    user_token,
)

pytestmark = pytest.mark.integration


# -- fixtures -----------------------------------------------------------------------------------


@dataclass
class Tenant:
    app: App  # public client, delegated BitlockerKey.Read.All + Device.Read.All consented
    helpdesk: User  # Helpdesk Administrator
    owner: User  # no role; registered owner of `own_pc`
    own_pc: Device
    other_pc: Device
    own_key: RecoveryKey
    other_keys: list[RecoveryKey]


@pytest.fixture
def tenant(graph: GraphEmulator) -> Tenant:
    app = graph.add_app("bitkey-dir", delegated_scopes=DELEGATED)
    helpdesk = graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
    owner = graph.add_user("owner@contoso.onmicrosoft.com")
    own_pc = graph.add_device("PC-OWNER", owners=[owner])
    other_pc = graph.add_device("PC-0042")
    own_key = graph.add_recovery_key(own_pc)
    other_keys = [
        graph.add_recovery_key(other_pc, volume_type=volume)
        for volume in ("operatingSystemVolume", "fixedDataVolume", "removableDataVolume")
    ]
    return Tenant(app, helpdesk, owner, own_pc, other_pc, own_key, other_keys)


# == raw HTTP: transport, identity platform, Graph contract =====================================


def test_tls_trusts_only_the_emulator_ca_and_keeps_connections_alive(graph: GraphEmulator) -> None:
    discovery = f"/{graph.tenant_id}/v2.0/.well-known/openid-configuration"
    for host in ("127.0.0.1", "localhost"):  # both names are in the certificate's SAN
        conn = http.client.HTTPSConnection(host, graph.port, context=graph.ssl_context())
        conn.request("GET", discovery)
        assert conn.getresponse().status == 200
        conn.close()

    system_trust = ssl.create_default_context()
    conn = http.client.HTTPSConnection(graph.host, graph.port, context=system_trust, timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", discovery)
    conn.close()

    keep_alive = http.client.HTTPSConnection(graph.host, graph.port, context=graph.ssl_context())
    for _ in range(3):
        assert call(graph, "GET", discovery, connection=keep_alive).status == 200
    socket_used = keep_alive.sock
    assert call(graph, "GET", discovery, connection=keep_alive).status == 200
    assert keep_alive.sock is socket_used  # HTTP/1.1 keep-alive: one TLS connection
    keep_alive.close()


def test_openid_configuration_points_back_at_the_emulator(graph: GraphEmulator) -> None:
    for tenant in (graph.tenant_id, "contoso.onmicrosoft.com"):
        config = call(graph, "GET", f"/{tenant}/v2.0/.well-known/openid-configuration").body
        assert config["issuer"] == f"{graph.base_url}/{graph.tenant_id}/v2.0"
        for name in (
            "authorization_endpoint",
            "token_endpoint",
            "device_authorization_endpoint",
            "jwks_uri",
        ):
            assert config[name].startswith(f"{graph.base_url}/{graph.tenant_id}/"), name
    keys = call(graph, "GET", f"/{graph.tenant_id}/discovery/v2.0/keys").body["keys"]
    assert keys[0]["kty"] == "RSA"

    unknown = call(graph, "GET", "/nosuchtenant.example/v2.0/.well-known/openid-configuration")
    assert unknown.status == 400
    assert unknown.body["error"] == "invalid_tenant"
    assert unknown.body["error_codes"] == [90002]
    assert unknown.body["error_description"].startswith("AADSTS90002: ")
    for field in ("timestamp", "trace_id", "correlation_id", "error_uri"):
        assert unknown.body[field]
    # Instance discovery is not emulated: a client that needs it is misconfigured.
    assert call(graph, "GET", "/common/discovery/instance?api-version=1.1").status == 404


def test_token_endpoint_errors_use_the_oauth_format(graph: GraphEmulator) -> None:
    app = graph.add_app(
        "daemon", public_client=False, secret="right", app_roles=["Device.Read.All"]
    )
    token_url = f"/{graph.tenant_id}/oauth2/v2.0/token"
    scope = quote(f"{graph.graph_url}/.default", safe="")
    ok = call(
        graph,
        "POST",
        token_url,
        body=f"grant_type=client_credentials&client_id={app.client_id}&client_secret=right"
        f"&scope={scope}",
        headers={"client-request-id": "11111111-2222-3333-4444-555555555555"},
    )
    assert ok.status == 200
    assert ok.body["token_type"] == "Bearer"
    assert "refresh_token" not in ok.body

    wrong = call(
        graph,
        "POST",
        token_url,
        body=f"grant_type=client_credentials&client_id={app.client_id}&client_secret=wrong"
        f"&scope={scope}",
        headers={"client-request-id": "11111111-2222-3333-4444-555555555555"},
    )
    assert wrong.status == 401
    assert wrong.body["error"] == "invalid_client"
    assert wrong.body["error_codes"] == [7000215]
    assert wrong.body["correlation_id"] == "11111111-2222-3333-4444-555555555555"

    not_default = call(
        graph,
        "POST",
        token_url,
        body=f"grant_type=client_credentials&client_id={app.client_id}&client_secret=right"
        f"&scope={quote(graph.graph_url + '/Device.Read.All', safe='')}",
    )
    assert (not_default.status, not_default.body["error_codes"]) == (400, [1002012])

    foreign = call(
        graph,
        "POST",
        token_url,
        body=f"grant_type=client_credentials&client_id={app.client_id}&client_secret=right"
        "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
    )
    assert (foreign.body["error"], foreign.body["error_codes"]) == ("invalid_resource", [500011])


def test_every_graph_answer_has_request_ids_and_the_error_envelope(graph: GraphEmulator) -> None:
    answer = call(graph, "GET", "/v1.0/devices", headers={"client-request-id": "my-id"})
    error = assert_graph_error(answer, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Access token is empty."
    assert answer.headers["client-request-id"] == "my-id"
    assert answer.headers["www-authenticate"].startswith('Bearer realm=""')

    token = app_token(graph, "Device.Read.All")
    ok = call(graph, "GET", "/v1.0/devices", token=token)
    assert ok.status == 200
    assert ok.headers["request-id"] == ok.headers["client-request-id"]  # none sent: echoed
    assert ok.headers["content-type"].startswith("application/json;odata.metadata=minimal")

    unknown = call(graph, "GET", "/v1.0/nosuchthing", token=token)
    assert assert_graph_error(unknown, 400, "BadRequest")["message"] == (
        "Resource not found for the segment 'nosuchthing'."
    )


def test_user_agent_is_required(graph: GraphEmulator) -> None:
    token = app_token(graph, "BitlockerKey.ReadBasic.All")
    answer = call(graph, "GET", KEYS, token=token, user_agent=None)
    error = assert_graph_error(answer, 400, "invalid_request")
    assert "Parameter (User-Agent) is required" in error["message"]
    assert call(graph, "GET", KEYS, token=token).status == 200


def test_access_tokens_are_validated(graph: GraphEmulator) -> None:
    token = app_token(graph, "Device.Read.All")
    assert call(graph, "GET", "/v1.0/devices", token=token).status == 200

    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    answer = call(graph, "GET", "/v1.0/devices", token=forged)
    assert assert_graph_error(answer, 401, "InvalidAuthenticationToken")["message"] == (
        "Access token validation failure."
    )

    public_cloud = app_token(graph, "Device.Read.All", audience="https://graph.microsoft.com")
    answer = call(graph, "GET", "/v1.0/devices", token=public_cloud)
    assert (
        "Invalid audience"
        in assert_graph_error(answer, 401, "InvalidAuthenticationToken")["message"]
    )

    short = app_token(graph, "Device.Read.All", lifetime=60)
    graph.advance_clock(60 + graph.clock_skew - 5)  # inside the 5-minute clock skew
    assert call(graph, "GET", "/v1.0/devices", token=short).status == 200
    graph.advance_clock(10)
    answer = call(graph, "GET", "/v1.0/devices", token=short)
    assert assert_graph_error(answer, 401, "InvalidAuthenticationToken")["message"] == (
        "Lifetime validation failed, the token is expired."
    )


def test_recovery_key_list_never_returns_the_key_and_pages(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    graph.recovery_keys_page_size = 2
    token = app_token(graph, "BitlockerKey.Read.All")
    device_filter = quote(f"deviceId eq '{tenant.other_pc.device_id}'")

    first = call(graph, "GET", f"{KEYS}?$filter={device_filter}&$select=key", token=token)
    assert first.status == 200
    assert all("key" not in row for row in first.body["value"])
    assert len(first.body["value"]) == 2
    next_link = first.body["@odata.nextLink"]
    assert next_link.startswith(f"{graph.base_url}{KEYS}?")
    assert "$skiptoken=" in next_link

    second = call(graph, "GET", next_link.removeprefix(graph.base_url), token=token)
    assert "@odata.nextLink" not in second.body
    ids = [row["id"] for row in first.body["value"] + second.body["value"]]
    assert ids == [key.id for key in tenant.other_keys]
    assert set(second.body["value"][0]) == {"id", "createdDateTime", "volumeType", "deviceId"}
    assert graph.key_reads == []  # listing is not a key read

    everything = call(graph, "GET", KEYS, token=token)
    assert len(everything.body["value"]) == 2  # page size 2 of the tenant's 4 keys

    for bad in (
        f"{KEYS}?$top=1",
        f"{KEYS}?$filter={quote('id eq ' + odata_quote(tenant.own_key.id))}",
        f"{KEYS}?$filter={quote('startswith(deviceId,' + odata_quote('0') + ')')}",
        f"{KEYS}?$orderby=createdDateTime",
        f"{KEYS}?$filter={device_filter}&$skiptoken=forged",
    ):
        assert call(graph, "GET", bad, token=token).status == 400, bad


def test_recovery_key_by_id_returns_the_key_only_for_select_key(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    key = tenant.other_keys[0]
    full = app_token(graph, "BitlockerKey.Read.All")

    metadata = call(graph, "GET", key_url(key), token=full)
    assert "value" not in metadata.body  # a bare object, no collection wrapper
    assert metadata.body["id"] == key.id
    assert "key" not in metadata.body

    mixed = call(graph, "GET", key_url(key, "key,id,deviceId"), token=full)
    assert set(mixed.body) == {"@odata.context", "id", "deviceId"}

    revealed = call(graph, "GET", key_url(key, "key"), token=full)
    assert revealed.status == 200
    assert revealed.body["key"] == key.key
    assert revealed.body["deviceId"] == tenant.other_pc.device_id
    assert is_valid_recovery_password(revealed.body["key"])
    (read,) = graph.key_reads
    assert (read.key_id, read.request_id) == (key.id, revealed.headers["request-id"])

    basic = app_token(graph, "BitlockerKey.ReadBasic.All")
    assert call(graph, "GET", key_url(key), token=basic).status == 200
    denied = call(graph, "GET", key_url(key, "key"), token=basic)
    error = assert_graph_error(denied, 403, "authorization_error")
    assert key.key not in json.dumps(denied.body)
    assert error["message"] == "Failed to authorize, token doesn't have the required permissions."
    assert len(graph.key_reads) == 1

    missing = call(graph, "GET", f"{KEYS}/{'0' * 8}-0000-0000-0000-{'0' * 12}", token=full)
    assert_graph_error(missing, 404, "itemNotFound")
    nothing = app_token(graph, "Device.Read.All")
    assert_graph_error(call(graph, "GET", key_url(key), token=nothing), 403, "authorization_error")


def test_delegated_callers_need_a_role_or_to_own_the_device(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    owner = user_token(graph, tenant.app, tenant.owner)
    assert call(graph, "GET", key_url(tenant.own_key, "key"), token=owner).status == 200
    denied = call(graph, "GET", key_url(tenant.other_keys[0], "key"), token=owner)
    assert_graph_error(denied, 403, "authorization_error")
    listed = call(graph, "GET", KEYS, token=owner).body["value"]
    assert [row["id"] for row in listed] == [tenant.own_key.id]
    other_filter = quote(f"deviceId eq '{tenant.other_pc.device_id}'")
    assert call(graph, "GET", f"{KEYS}?$filter={other_filter}", token=owner).status == 403

    for role in ROLE_TEMPLATE_IDS:
        holder = graph.add_user(f"{role.replace(' ', '.')}@contoso.onmicrosoft.com", roles=[role])
        token = user_token(graph, tenant.app, holder)
        answer = call(graph, "GET", key_url(tenant.other_keys[0], "key"), token=token)
        assert answer.status == 200, role
    reader = graph.add_user("reader@contoso.onmicrosoft.com", roles=["Global Reader"])
    basic_only = user_token(graph, tenant.app, reader, "BitlockerKey.ReadBasic.All")
    answer = call(graph, "GET", key_url(tenant.other_keys[0], "key"), token=basic_only)
    assert_graph_error(answer, 403, "authorization_error")


def test_devices_filter_select_and_paging(graph: GraphEmulator) -> None:
    twins = [graph.add_device("O'Brien's PC") for _ in range(2)]  # names are not unique
    for number in range(5):
        graph.add_device(f"PC-{number:02d}")
    token = app_token(graph, "Device.Read.All")

    name = odata_quote("o'brien's pc")  # 'o''brien''s pc'; matching ignores case
    by_name = quote(f"displayName eq {name}")
    select = "$select=id,deviceId,displayName"
    answer = call(graph, "GET", f"/v1.0/devices?$filter={by_name}&{select}", token=token)
    assert [row["deviceId"] for row in answer.body["value"]] == [d.device_id for d in twins]
    assert set(answer.body["value"][0]) == {"id", "deviceId", "displayName"}
    assert answer.body["@odata.context"].endswith("$metadata#devices(id,deviceId,displayName)")

    unescaped = quote("displayName eq 'O'Brien's PC'")
    answer = call(graph, "GET", f"/v1.0/devices?$filter={unescaped}", token=token)
    assert "Invalid filter clause" in assert_graph_error(answer, 400, "BadRequest")["message"]

    prefix = quote("startswith(displayName,'PC-')")
    page = call(graph, "GET", f"/v1.0/devices?$filter={prefix}&$top=2", token=token).body
    names = [row["displayName"] for row in page["value"]]
    while "@odata.nextLink" in page:
        page = call(
            graph, "GET", page["@odata.nextLink"].removeprefix(graph.base_url), token=token
        ).body
        names += [row["displayName"] for row in page["value"]]
    assert names == [f"PC-{n:02d}" for n in range(5)]

    listed = quote("displayName in ('PC-00','pc-03')")
    answer = call(graph, "GET", f"/v1.0/devices?$filter={listed}", token=token)
    assert [row["displayName"] for row in answer.body["value"]] == ["PC-00", "PC-03"]

    one = call(graph, "GET", f"/v1.0/devices/{twins[0].id}?$select=deviceId", token=token)
    assert (one.body["deviceId"], "displayName" in one.body) == (twins[0].device_id, False)
    gone = call(graph, "GET", f"/v1.0/devices/{twins[0].device_id}", token=token)
    assert_graph_error(gone, 404, "Request_ResourceNotFound")  # by object id, not deviceId

    assert call(graph, "GET", "/v1.0/devices?$top=1000", token=token).status == 400
    trust = quote("trustType eq 'AzureAd'")
    answer = call(graph, "GET", f"/v1.0/devices?$filter={trust}", token=token)
    assert_graph_error(answer, 400, "Request_UnsupportedQuery")
    answer = call(graph, "GET", "/v1.0/devices?$select=nope", token=token)
    assert_graph_error(answer, 400, "BadRequest")

    no_permission = app_token(graph, "BitlockerKey.Read.All")
    answer = call(graph, "GET", "/v1.0/devices", token=no_permission)
    assert_graph_error(answer, 403, "Authorization_RequestDenied")


def test_batch_contract(graph: GraphEmulator, tenant: Tenant) -> None:
    token = app_token(graph, "BitlockerKey.Read.All")
    requests = [
        {"id": f"k{i}", "method": "GET", "url": key_url(key, "key").removeprefix("/v1.0")}
        for i, key in enumerate(tenant.other_keys)
    ]
    requests.append({"id": "absolute", "method": "GET", "url": f"{graph.graph_v1}{KEYS}"})
    requests.append({"id": "after", "method": "GET", "url": KEYS[6:], "dependsOn": ["absolute"]})
    answer = call(graph, "POST", "/v1.0/$batch", token=token, body={"requests": requests})
    assert answer.status == 200
    responses = answer.body["responses"]
    assert [r["id"] for r in responses] != [r["id"] for r in requests]  # any order
    by_id = {r["id"]: r for r in responses}
    assert [by_id[f"k{i}"]["body"]["key"] for i in range(3)] == [k.key for k in tenant.other_keys]
    assert by_id["absolute"]["status"] == 400
    assert by_id["absolute"]["body"]["error"]["message"] == (
        "Resource not found for the segment 'https:'."
    )
    assert by_id["after"]["status"] == 424
    assert len(graph.key_reads) == 3
    assert graph.count(r"/recoveryKeys/", via_batch=True) == 3
    assert graph.count(r"^/v1\.0/\$batch$", via_batch=False) == 1

    too_many = [{"id": str(i), "method": "GET", "url": KEYS} for i in range(21)]
    answer = call(graph, "POST", "/v1.0/$batch", token=token, body={"requests": too_many})
    assert_graph_error(answer, 400, "BadRequest")
    twice = [{"id": "a", "method": "GET", "url": KEYS}, {"id": "A", "method": "GET", "url": KEYS}]
    answer = call(graph, "POST", "/v1.0/$batch", token=token, body={"requests": twice})
    assert_graph_error(answer, 400, "BadRequest")
    assert call(graph, "POST", "/v1.0/$batch", body={"requests": twice[:1]}).status == 401


def test_faults_latency_and_counters(graph: GraphEmulator) -> None:
    token = app_token(graph, "Device.Read.All")
    graph.add_fault(r"^/v1\.0/devices$", status=429, times=2, retry_after=2.128)
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    graph.add_fault(r"/devices$", status=503, times=1, retry_after=when)

    first = call(graph, "GET", "/v1.0/devices", token=token)
    assert_graph_error(first, 429, "TooManyRequests")
    assert first.headers["retry-after"] == "2.128"
    assert call(graph, "GET", "/v1.0/devices", token=token).status == 429
    third = call(graph, "GET", "/v1.0/devices", token=token)
    assert third.status == 503
    assert email.utils.parsedate_to_datetime(third.headers["retry-after"]) == when
    assert call(graph, "GET", "/v1.0/devices", token=token).status == 200
    assert graph.count(r"^/v1\.0/devices$", method="GET") == 4

    graph.add_fault(r"/token$", status=429, retry_after="7")
    throttled = call(graph, "POST", f"/{graph.tenant_id}/oauth2/v2.0/token", body="x=1")
    assert (throttled.status, throttled.headers["retry-after"]) == (429, "7")
    assert throttled.body["error"] == "temporarily_unavailable"

    graph.latency = 0.05
    started = time.monotonic()
    call(graph, "GET", "/v1.0/devices", token=token)
    assert time.monotonic() - started >= 0.05
    graph.clear_requests()
    assert graph.count() == 0


def test_generated_recovery_passwords_are_valid() -> None:
    seeded = random.Random(7)  # noqa: S311 - reproducible test data, not secrets
    assert generate_recovery_password(seeded.randrange) == generate_recovery_password(
        random.Random(7).randrange  # noqa: S311
    )
    for _ in range(200):
        password = generate_recovery_password()
        assert is_valid_recovery_password(password)
        assert len(password.replace("-", "")) == 48
    assert not is_valid_recovery_password("123456-" * 7 + "123456")


# == msal ======================================================================================


def test_msal_start_up_needs_only_openid_discovery(graph: GraphEmulator, tenant: Tenant) -> None:
    require_clients()
    public_client(graph, tenant.app)
    confidential_client(graph, graph.add_app(public_client=False, secret="s"), "s")
    paths = {(record.method, record.path) for record in graph.requests}
    assert paths == {("GET", f"/{graph.tenant_id}/v2.0/.well-known/openid-configuration")}


def test_requests_ca_bundle_overrides_a_session_level_verify(
    graph: GraphEmulator, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pitfall the per-request CaSession avoids (requests#3829)."""
    require_clients()
    import certifi  # a dependency of requests
    import msal
    import requests

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # as CI images often set it
    session = requests.Session()
    session.verify = str(graph.ca_file)
    with pytest.raises(requests.exceptions.SSLError):
        msal.PublicClientApplication(
            tenant.app.client_id,
            authority=graph.authority,
            instance_discovery=False,
            http_client=session,
        )
    public_client(graph, tenant.app)  # verify= per request wins over the environment


def test_device_code_flow_polls_until_the_user_approves(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    require_clients()
    pca = public_client(graph, tenant.app)
    flow = pca.initiate_device_flow(delegated_scopes(graph))
    assert flow["interval"] == 1
    assert flow["verification_uri"] == f"{graph.base_url}/devicelogin"
    assert flow["user_code"] in flow["message"]
    issued = graph.wait_for_device_code()
    assert issued.user_code == flow["user_code"]

    def approve_after_first_poll() -> None:
        deadline = time.monotonic() + 10
        while issued.polls < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        graph.approve_device_code(issued, tenant.helpdesk)

    approver = threading.Thread(target=approve_after_first_poll)
    approver.start()
    result = pca.acquire_token_by_device_flow(flow)
    approver.join()

    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == tenant.helpdesk.user_principal_name
    assert set(result["scope"].split()) >= set(delegated_scopes(graph))
    grants = [r.grant_type for r in graph.requests if r.grant_type]
    assert grants[0] == "urn:ietf:params:oauth:grant-type:device_code"
    statuses = [r.status for r in graph.requests if r.grant_type]
    assert statuses == [400, 200]  # authorization_pending, then the tokens
    key = call(graph, "GET", key_url(tenant.other_keys[0], "key"), token=result["access_token"])
    assert key.body["key"] == tenant.other_keys[0].key


def test_device_code_flow_declined_and_expired(graph: GraphEmulator, tenant: Tenant) -> None:
    require_clients()
    pca = public_client(graph, tenant.app)
    declined = pca.initiate_device_flow(delegated_scopes(graph))
    graph.decline_device_code(declined["user_code"])
    assert pca.acquire_token_by_device_flow(declined)["error"] == "authorization_declined"

    expired = pca.initiate_device_flow(delegated_scopes(graph))
    graph.advance_clock(graph.device_code_lifetime)
    result = pca.acquire_token_by_device_flow(expired)
    assert (result["error"], result["error_codes"]) == ("expired_token", [70019])

    unconsented = graph.add_app("no consent", delegated_scopes=["Device.Read.All"])
    pca = public_client(graph, unconsented)
    flow = pca.initiate_device_flow(delegated_scopes(graph))
    graph.approve_device_code(flow["user_code"], tenant.helpdesk)
    result = pca.acquire_token_by_device_flow(flow)
    assert (result["error"], result["suberror"]) == ("invalid_grant", "consent_required")


def test_silent_acquisition_uses_the_cache_then_refreshes(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    require_clients()
    scopes = delegated_scopes(graph)
    pca, account = sign_in(graph, tenant.app, tenant.helpdesk)
    before = graph.count(r"/token$")
    cached = pca.acquire_token_silent(scopes, account=account)
    assert cached["token_source"] == "cache"
    assert graph.count(r"/token$") == before  # no token request at all

    # MSAL treats an access token that expires within 5 minutes as expired.
    graph.access_token_lifetime = 120
    pca, account = sign_in(graph, tenant.app, tenant.helpdesk)
    first = graph.count(r"/token$")
    refreshed = pca.acquire_token_silent(scopes, account=account)
    assert refreshed["token_source"] == "identity_provider"
    assert graph.requests[-1].grant_type == "refresh_token"
    assert graph.count(r"/token$") == first + 1
    ok = call(graph, "GET", key_url(tenant.own_key), token=refreshed["access_token"])
    assert ok.status == 200

    graph.revoke_refresh_tokens(tenant.helpdesk)
    failed = pca.acquire_token_silent_with_error(scopes, account=account)
    assert (failed["error"], failed["error_codes"]) == ("invalid_grant", [50173])


def test_client_secret_credential(graph: GraphEmulator) -> None:
    require_clients()
    app = graph.add_app(
        "daemon", public_client=False, secret="s3cret", app_roles=["BitlockerKey.Read.All"]
    )
    cca = confidential_client(graph, app, "s3cret")
    scopes = [f"{graph.graph_url}/.default"]
    result = cca.acquire_token_for_client(scopes)
    assert "access_token" in result, result
    assert cca.acquire_token_for_client(scopes)["token_source"] == "cache"
    assert graph.count(r"/token$") == 1

    wrong = confidential_client(graph, app, "guess").acquire_token_for_client(scopes)
    assert (wrong["error"], wrong["error_codes"]) == ("invalid_client", [7000215])


def test_client_certificate_credential(graph: GraphEmulator) -> None:
    require_clients()
    cert = make_client_certificate()
    app = graph.add_app(
        "daemon", public_client=False, certificate=cert, app_roles=["Device.Read.All"]
    )
    scopes = [f"{graph.graph_url}/.default"]
    # With the certificate MSAL signs PS256 and names it by x5t#S256; with only the SHA-1
    # thumbprint it signs RS256 and names it by x5t. The emulator verifies both.
    for credential in (
        {"private_key": cert.private_key_pem, "public_certificate": cert.certificate_pem},
        {"private_key": cert.private_key_pem, "thumbprint": cert.sha1_thumbprint_hex},
    ):
        result = confidential_client(graph, app, credential).acquire_token_for_client(scopes)
        assert "access_token" in result, result
        devices = call(graph, "GET", "/v1.0/devices", token=result["access_token"])
        assert devices.status == 200

    stranger = make_client_certificate("not registered")
    credential = {
        "private_key": stranger.private_key_pem,
        "thumbprint": stranger.sha1_thumbprint_hex,
    }
    result = confidential_client(graph, app, credential).acquire_token_for_client(scopes)
    assert (result["error"], result["error_codes"]) == ("invalid_client", [700027])


def test_msal_replays_a_throttled_token_answer_until_retry_after(graph: GraphEmulator) -> None:
    """MSAL's http cache answers a repeated token request itself after a 429/5xx: for
    Retry-After seconds (integers only; otherwise 5 s for confidential and 60 s for public
    clients). A retry loop around MSAL does not reach the token endpoint meanwhile."""
    require_clients()
    app = graph.add_app("daemon", public_client=False, secret="s", app_roles=["Device.Read.All"])
    cca = confidential_client(graph, app, "s")
    scopes = [f"{graph.graph_url}/.default"]
    graph.add_fault(r"/token$", status=429, retry_after="1")
    assert cca.acquire_token_for_client(scopes)["error"] == "temporarily_unavailable"
    assert cca.acquire_token_for_client(scopes)["error"] == "temporarily_unavailable"
    assert graph.count(r"/token$") == 1  # the second answer came from MSAL's cache
    time.sleep(1.1)
    assert "access_token" in cca.acquire_token_for_client(scopes)
    assert graph.count(r"/token$") == 2


# == msgraph-sdk through kiota =================================================================


def test_sdk_lists_keys_by_device_pages_and_reads_one_key(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    require_clients()
    graph.recovery_keys_page_size = 2
    pca, account = sign_in(graph, tenant.app, tenant.helpdesk)
    graph.clear_requests()

    async def scenario(sdk: Sdk) -> tuple[list[str], str | None]:
        keys = sdk.client.information_protection.bitlocker.recovery_keys
        page = await keys.get(
            request_configuration=keys_query(filter=f"deviceId eq '{tenant.other_pc.device_id}'")
        )
        ids = [key.id for key in page.value]
        while page.odata_next_link:
            page = await keys.with_url(page.odata_next_link).get()
            ids += [key.id for key in page.value]
        one = await keys.by_bitlocker_recovery_key_id(ids[0]).get(
            request_configuration=key_query(select=["key"])
        )
        return ids, one.key

    ids, password = run_sdk(graph, msal_credential(pca, account), delegated_scopes(graph), scenario)
    assert ids == [key.id for key in tenant.other_keys]
    assert password == tenant.other_keys[0].key
    assert graph.count(rf"^{KEYS}$") == 2  # two pages
    assert [read.key_id for read in graph.key_reads] == [ids[0]]
    assert graph.key_reads[0].user_principal_name == tenant.helpdesk.user_principal_name
    user_agents = {
        r.headers.get("user-agent", "") for r in graph.requests if r.path.startswith("/v1.0")
    }
    assert all("kiota-python" in agent for agent in user_agents)


def test_sdk_finds_devices_by_a_name_with_quotes(graph: GraphEmulator) -> None:
    require_clients()
    twins = [graph.add_device("O'Brien's PC") for _ in range(2)]
    graph.add_device("O")
    app = graph.add_app("daemon", public_client=False, secret="s", app_roles=["Device.Read.All"])
    cca = confidential_client(graph, app, "s")

    name = odata_quote("O'Brien's PC")

    async def scenario(sdk: Sdk) -> list[str]:
        page = await sdk.client.devices.get(
            request_configuration=devices_query(
                filter=f"displayName eq {name}",
                select=["id", "deviceId", "displayName"],
            )
        )
        return [device.device_id for device in page.value]

    found = run_sdk(graph, msal_credential(cca), [f"{graph.graph_url}/.default"], scenario)
    assert found == [device.device_id for device in twins]


def test_sdk_sends_a_batch_and_matches_answers_by_id(graph: GraphEmulator, tenant: Tenant) -> None:
    require_clients()
    app = graph.add_app(
        "daemon", public_client=False, secret="s", app_roles=["BitlockerKey.Read.All"]
    )
    cca = confidential_client(graph, app, "s")
    wanted = {f"key-{i}": key for i, key in enumerate(tenant.other_keys)}

    async def scenario(sdk: Sdk) -> dict[str, Any]:
        requests = [
            {
                "id": item_id,
                "method": "GET",
                "url": f"/informationProtection/bitlocker/recoveryKeys/{key.id}?$select=key",
            }
            for item_id, key in wanted.items()
        ]
        return await post_batch(sdk, requests)

    answer = run_sdk(graph, msal_credential(cca), [f"{graph.graph_url}/.default"], scenario)
    by_id = {response["id"]: response for response in answer["responses"]}
    assert {item_id: r["body"]["key"] for item_id, r in by_id.items()} == {
        item_id: key.key for item_id, key in wanted.items()
    }
    assert all(r["status"] == 200 for r in by_id.values())
    assert len(graph.key_reads) == 3


def test_sdk_batch_of_21_is_rejected(graph: GraphEmulator) -> None:
    require_clients()
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    app = graph.add_app("daemon", public_client=False, secret="s", app_roles=["Device.Read.All"])
    cca = confidential_client(graph, app, "s")

    async def scenario(sdk: Sdk) -> dict[str, Any]:
        return await post_batch(
            sdk, [{"id": str(i), "method": "GET", "url": "/devices"} for i in range(21)]
        )

    with pytest.raises(ODataError) as raised:
        run_sdk(graph, msal_credential(cca), [f"{graph.graph_url}/.default"], scenario)
    assert raised.value.response_status_code == 400


def test_sdk_retry_handler_and_retry_after_values(graph: GraphEmulator) -> None:
    """What kiota-http 1.16's retry handler makes of Graph's Retry-After values.

    It parses the header with int() or as an HTTP date. "2.128" (fractional, as Graph's
    throttling docs show) is neither, and "0" counts as absent: both fall back to
    exponential backoff plus the option's 3 s default delay. (The reference notes say
    kiota crashes on fractional values; 1.16.0 does not.) So kiota never retries sooner
    than asked, but a "Retry-After: 0" costs over 3 s.
    """
    require_clients()
    graph.add_device("PC-01")
    app = graph.add_app("daemon", public_client=False, secret="s", app_roles=["Device.Read.All"])
    cca = confidential_client(graph, app, "s")
    graph.add_fault(r"^/v1\.0/devices$", status=429, retry_after="2.128")
    graph.add_fault(r"^/v1\.0/devices$", status=503, retry_after="0")

    async def scenario(sdk: Sdk) -> int:
        page = await sdk.client.devices.get()
        return len(page.value)

    assert run_sdk(graph, msal_credential(cca), [f"{graph.graph_url}/.default"], scenario) == 1
    attempts = [r for r in graph.requests if r.path == "/v1.0/devices"]
    assert [r.status for r in attempts] == [429, 503, 200]
    assert [r.headers.get("retry-attempt") for r in attempts] == [None, "1", "2"]
    assert attempts[1].time - attempts[0].time >= 2.128
    assert attempts[2].time - attempts[1].time >= 3.0  # "0" was not taken as "now"


def test_sdk_errors_carry_the_status_and_graphs_request_id(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    require_clients()
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    pca, account = sign_in(graph, tenant.app, tenant.owner)  # no role, owns one device only
    key = tenant.other_keys[0]

    async def read_key(sdk: Sdk) -> Any:
        item = sdk.client.information_protection.bitlocker.recovery_keys
        return await item.by_bitlocker_recovery_key_id(key.id).get(
            request_configuration=key_query(select=["key"])
        )

    credential = msal_credential(pca, account)
    with pytest.raises(ODataError) as raised:
        run_sdk(graph, credential, delegated_scopes(graph), read_key)
    error = raised.value
    assert error.response_status_code == 403
    assert error.error.code == "authorization_error"
    request_id = error.response_headers["request-id"]
    assert error.error.inner_error.request_id == request_id
    assert graph.requests[-1].request_id == request_id
    assert key.key not in str(error)
    assert graph.key_reads == []

    # MSAL still holds a token the emulator's clock now says has expired: Graph answers 401.
    graph.advance_clock(graph.access_token_lifetime + graph.clock_skew + 1)
    with pytest.raises(ODataError) as raised:
        run_sdk(graph, credential, delegated_scopes(graph), read_key)
    assert raised.value.response_status_code == 401
    assert raised.value.error.code == "InvalidAuthenticationToken"


def test_sdk_without_allowed_host_sends_no_token(graph: GraphEmulator, tenant: Tenant) -> None:
    """kiota silently drops the token for hosts outside allowed_hosts: Graph says 401."""
    require_clients()
    import httpx
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph_core import GraphClientFactory

    pca, account = sign_in(graph, tenant.app, tenant.helpdesk)

    async def main() -> None:
        auth = AzureIdentityAuthenticationProvider(
            msal_credential(pca, account),
            scopes=delegated_scopes(graph),
            allowed_hosts=["graph.microsoft.com"],
        )
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(verify=graph.ssl_context())
        )
        async with http:
            adapter = GraphRequestAdapter(auth, http)
            adapter.base_url = graph.graph_v1
            await GraphServiceClient(request_adapter=adapter).devices.get()

    with pytest.raises(ODataError) as raised:
        asyncio.run(main())
    assert raised.value.response_status_code == 401
    assert raised.value.error.message == "Access token is empty."
    assert "authorization" not in graph.requests[-1].headers


def test_devices_delta_rounds_changes_and_removals(graph: GraphEmulator) -> None:
    graph.devices_page_size = 2
    devices = [graph.add_device(f"PC-{n}") for n in range(3)]
    token = app_token(graph, "Device.Read.All")

    def round_from(url: str) -> tuple[list[dict[str, Any]], str]:
        rows: list[dict[str, Any]] = []
        while True:
            page = call(graph, "GET", url.removeprefix(graph.base_url), token=token).body
            rows += page["value"]
            if "@odata.deltaLink" in page:
                assert "@odata.nextLink" not in page
                return rows, page["@odata.deltaLink"]
            url = page["@odata.nextLink"]

    rows, delta = round_from("/v1.0/devices/delta?$select=deviceId,displayName")
    assert [row["displayName"] for row in rows] == ["PC-0", "PC-1", "PC-2"]
    assert set(rows[0]) == {"id", "deviceId", "displayName"}  # id always, then $select
    assert "$deltatoken=" in delta
    assert round_from(delta)[0] == []  # nothing changed since
    graph.home.rename_device(devices[0], "PC-RENAMED")
    new = graph.add_device("PC-NEW")
    graph.add_recovery_key(devices[1])  # a key changes no device
    graph.home.remove_device(devices[2])
    rows, again = round_from(delta)
    assert {row["id"]: row.get("displayName") for row in rows} == {
        devices[0].id: "PC-RENAMED",
        new.id: "PC-NEW",
        devices[2].id: None,
    }
    assert [row for row in rows if "@removed" in row] == [
        {"id": devices[2].id, "@removed": {"reason": "deleted"}}
    ]
    assert round_from(again)[0] == []
    sdk = call(graph, "GET", "/v1.0/devices/delta()?$select=deviceId", token=token)
    assert sdk.status == 200  # as msgraph-sdk writes the function
    refused = call(graph, "GET", "/v1.0/devices/delta?$top=999", token=token)
    assert_graph_error(refused, 400, "BadRequest")
    bad = call(graph, "GET", "/v1.0/devices/delta?$deltatoken=nonsense", token=token)
    assert_graph_error(bad, 400, "Request_BadRequest")
    no_permission = app_token(graph, "BitlockerKey.Read.All")
    answer = call(graph, "GET", "/v1.0/devices/delta", token=no_permission)
    assert_graph_error(answer, 403, "Authorization_RequestDenied")


def test_too_many_requests_at_once_are_throttled(graph: GraphEmulator) -> None:
    graph.add_device("PC-1")
    token = app_token(graph, "Device.Read.All")
    graph.latency = 0.3
    graph.max_in_flight = 1
    answers: list[Any] = []

    def ask() -> None:
        answers.append(call(graph, "GET", "/v1.0/devices", token=token))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    statuses = sorted(answer.status for answer in answers)
    assert statuses[0] == 200
    assert 429 in statuses
    throttled = next(answer for answer in answers if answer.status == 429)
    assert throttled.headers["retry-after"] == "1"
    assert graph.throttled == statuses.count(429)
