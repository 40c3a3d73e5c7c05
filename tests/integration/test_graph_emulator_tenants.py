"""The Graph emulator's tenants: each sees only its own directory, and a multi-tenant app
works in every tenant that consented to it, through raw HTTP and the real msal / msgraph-sdk.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest

from examples.lab.graph_emulator import (
    App,
    GraphEmulator,
    Tenant,
    make_client_certificate,
)
from examples.lab.graph_emulator._crypto import sign_jwt, unverified_parts
from tests.integration.graph_clients import (
    KEYS,
    Sdk,
    assert_graph_error,
    ca_session,
    call,
    key_url,
    keys_query,
    msal_credential,
    require_clients,
    run_sdk,
)

pytestmark = pytest.mark.integration

ROLES = ("BitlockerKey.Read.All", "Device.Read.All")
CLIENT_CREDENTIALS = "grant_type=client_credentials&client_id={}&client_secret={}&scope={}"


def claims(token: str) -> dict[str, Any]:
    return unverified_parts(token)[1]


def client_credentials(graph: GraphEmulator, tenant: str, app: App, secret: str) -> Any:
    """A client-credentials token request at /{tenant}/ (an ID, a domain or an alias)."""
    body = CLIENT_CREDENTIALS.format(
        app.client_id, secret, quote(f"{graph.graph_url}/.default", safe="")
    )
    return call(graph, "POST", f"/{tenant}/oauth2/v2.0/token", body=body)


@pytest.fixture
def fabrikam(graph: GraphEmulator) -> Tenant:
    return graph.add_tenant("fabrikam.onmicrosoft.com")


def test_the_emulator_starts_with_its_home_tenant(graph: GraphEmulator) -> None:
    home = graph.home
    assert (home.tenant_id, home.domain) == (graph.tenant_id, "contoso.onmicrosoft.com")
    assert graph.tenant("CONTOSO.onmicrosoft.com") is home
    assert graph.tenant(graph.tenant_id.upper()) is home
    pc = graph.add_device("PC-01")
    assert home.devices == [pc]
    assert graph.add_recovery_key(pc).id in home.recovery_keys
    with pytest.raises(ValueError, match="already"):
        graph.add_tenant("contoso.onmicrosoft.com")
    with pytest.raises(KeyError):
        graph.tenant("nowhere.onmicrosoft.com")


def test_each_tenant_is_served_by_id_and_domain(graph: GraphEmulator, fabrikam: Tenant) -> None:
    assert fabrikam.tenant_id != graph.tenant_id
    assert fabrikam.authority == f"{graph.base_url}/{fabrikam.tenant_id}"
    for name in (fabrikam.tenant_id, "fabrikam.onmicrosoft.com", "Fabrikam.OnMicrosoft.com"):
        answer = call(graph, "GET", f"/{name}/v2.0/.well-known/openid-configuration")
        assert answer.status == 200
        assert answer.body["issuer"] == f"{graph.base_url}/{fabrikam.tenant_id}/v2.0"
        assert answer.body["token_endpoint"] == f"{fabrikam.authority}/oauth2/v2.0/token"
    unknown = call(graph, "GET", "/nowhere.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    assert (unknown.status, unknown.body["error_codes"]) == (400, [90002])
    assert graph.count(tenant=fabrikam) == 3  # the unknown tenant is nobody's
    assert fabrikam.count(r"openid-configuration$") == 3


def test_a_token_sees_only_its_own_tenant(graph: GraphEmulator, fabrikam: Tenant) -> None:
    home_key = graph.add_recovery_key(graph.add_device("PC-0042"))
    fabrikam_pc = fabrikam.add_device("PC-0042")  # the same name in another tenant
    fabrikam_key = fabrikam.add_recovery_key(fabrikam_pc)
    home_app = graph.add_app("home", public_client=False, secret="s", app_roles=ROLES)
    fabrikam_app = fabrikam.add_app("fab", public_client=False, secret="s", app_roles=ROLES)
    home_token = graph.mint_access_token(home_app, roles=ROLES)
    fabrikam_token = fabrikam.mint_access_token(fabrikam_app, roles=ROLES)
    assert claims(fabrikam_token)["tid"] == fabrikam.tenant_id
    assert claims(fabrikam_token)["iss"] == fabrikam.access_token_issuer

    listed = call(graph, "GET", KEYS, token=fabrikam_token).body["value"]
    assert [row["id"] for row in listed] == [fabrikam_key.id]
    by_name = quote("displayName eq 'PC-0042'")
    devices = call(graph, "GET", f"/v1.0/devices?$filter={by_name}", token=fabrikam_token)
    assert [row["deviceId"] for row in devices.body["value"]] == [fabrikam_pc.device_id]
    other = call(graph, "GET", key_url(home_key, "key"), token=fabrikam_token)
    assert_graph_error(other, 404, "itemNotFound")
    own = call(graph, "GET", key_url(fabrikam_key, "key"), token=fabrikam_token)
    assert own.body["key"] == fabrikam_key.key
    assert call(graph, "GET", key_url(home_key, "key"), token=home_token).status == 200

    assert [r.key_id for r in fabrikam.key_reads] == [fabrikam_key.id]
    assert [r.tenant_id for r in fabrikam.key_reads] == [fabrikam.tenant_id]
    assert [r.key_id for r in graph.key_reads] == [home_key.id]  # the home tenant's log
    assert {r.key_id for r in graph.all_key_reads} == {home_key.id, fabrikam_key.id}
    assert fabrikam.count(r"/recoveryKeys") == 3
    assert graph.count(r"/recoveryKeys", tenant=graph.home) == 1


def test_a_token_from_an_unknown_tenant_or_issuer_is_refused(
    graph: GraphEmulator, fabrikam: Tenant
) -> None:
    app = graph.add_app("daemon", public_client=False, secret="s", app_roles=ROLES)
    gone = graph.add_tenant("gone.onmicrosoft.com")
    token = gone.mint_access_token(app, roles=ROLES)
    del graph.tenants[gone.tenant_id.lower()]
    answer = call(graph, "GET", KEYS, token=token)
    error = assert_graph_error(answer, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Access token validation failure. Invalid issuer."
    # Signed by the emulator, `tid` of fabrikam but the home tenant's issuer: refused too.
    mixed = {**claims(graph.mint_access_token(app, roles=ROLES)), "tid": fabrikam.tenant_id}
    kid = graph.pki.signing_kid
    token = sign_jwt(mixed, graph.pki.signing_key, {"kid": kid, "x5t": kid})
    assert_graph_error(call(graph, "GET", KEYS, token=token), 401, "InvalidAuthenticationToken")


def test_a_multi_tenant_app_needs_consent_in_each_tenant(
    graph: GraphEmulator, fabrikam: Tenant
) -> None:
    app = graph.add_app(
        "bitkey-dir", public_client=False, secret="s", app_roles=ROLES, multi_tenant=True
    )
    assert (app.tenant_id, app.sign_in_audience) == (graph.tenant_id, "AzureADMultipleOrgs")
    home = client_credentials(graph, graph.tenant_id, app, "s")
    assert home.status == 200, home.body

    refused = client_credentials(graph, "fabrikam.onmicrosoft.com", app, "s")
    assert (refused.status, refused.body["error"]) == (400, "unauthorized_client")
    assert refused.body["error_codes"] == [700016]
    assert "'fabrikam.onmicrosoft.com'" in refused.body["error_description"]
    assert refused.body["error_description"].startswith(
        f"AADSTS700016: Application with identifier '{app.client_id}' was not found in the "
        "directory"
    )

    principal = fabrikam.consent(app, app_roles=["BitlockerKey.ReadBasic.All"])
    assert fabrikam.service_principal(app) is principal
    granted = client_credentials(graph, fabrikam.tenant_id, app, "s")
    assert granted.status == 200, granted.body
    token = claims(granted.body["access_token"])
    assert token["tid"] == fabrikam.tenant_id
    assert token["iss"] == fabrikam.access_token_issuer
    assert token["idp"] == fabrikam.access_token_issuer
    assert token["roles"] == ["BitlockerKey.ReadBasic.All"]  # fabrikam's consent, not home's
    assert token["appid"] == app.client_id
    assert token["oid"] == principal.object_id != app.object_id
    home_token = claims(home.body["access_token"])
    assert (home_token["tid"], home_token["oid"]) == (graph.tenant_id, app.object_id)
    assert sorted(home_token["roles"]) == sorted(ROLES)

    wrong = client_credentials(graph, fabrikam.tenant_id, app, "guess")
    assert (wrong.status, wrong.body["error_codes"]) == (401, [7000215])

    fabrikam.remove_consent(app)
    again = client_credentials(graph, fabrikam.tenant_id, app, "s")
    assert again.body["error_codes"] == [700016]

    single = graph.add_app("single", public_client=False, secret="s", app_roles=ROLES)
    assert client_credentials(graph, fabrikam.tenant_id, single, "s").body["error_codes"] == [
        700016
    ]
    with pytest.raises(ValueError, match="single-tenant"):
        fabrikam.consent(single, app_roles=ROLES)

    no_tenant = client_credentials(graph, "organizations", app, "s")
    assert (no_tenant.status, no_tenant.body["error_codes"]) == (400, [50059])


def test_a_multi_tenant_app_signs_in_with_msal_and_reads_each_tenant_with_the_sdk(
    graph: GraphEmulator, fabrikam: Tenant
) -> None:
    require_clients()
    import msal

    cert = make_client_certificate()
    app = graph.add_app(
        "bitkey-dir", public_client=False, certificate=cert, app_roles=ROLES, multi_tenant=True
    )
    fabrikam.consent(app, app_roles=ROLES)
    keys = {
        tenant.tenant_id: tenant.add_recovery_key(tenant.add_device("PC-01"))
        for tenant in (graph.home, fabrikam)
    }
    credential = {"private_key": cert.private_key_pem, "public_certificate": cert.certificate_pem}
    scopes = [f"{graph.graph_url}/.default"]

    for tenant in (graph.home, fabrikam):
        cca = msal.ConfidentialClientApplication(
            app.client_id,
            client_credential=credential,
            authority=tenant.authority,
            instance_discovery=False,
            http_client=ca_session(graph),
        )
        result = cca.acquire_token_for_client(scopes)
        assert "access_token" in result, result
        assert claims(result["access_token"])["tid"] == tenant.tenant_id

        async def scenario(sdk: Sdk) -> tuple[list[str], str | None]:
            builder = sdk.client.information_protection.bitlocker.recovery_keys
            page = await builder.get(request_configuration=keys_query())
            ids = [key.id for key in page.value]
            one = await builder.by_bitlocker_recovery_key_id(ids[0]).get()
            return ids, one.device_id

        ids, device_id = run_sdk(graph, msal_credential(cca), scopes, scenario)
        assert ids == [keys[tenant.tenant_id].id]
        assert device_id == keys[tenant.tenant_id].device_id
    assert fabrikam.count(r"/token$") == 1
    assert graph.home.count(r"/token$") == 1


def test_delegated_sign_in_to_a_tenant_that_consented(
    graph: GraphEmulator, fabrikam: Tenant
) -> None:
    require_clients()
    import msal

    app = graph.add_app("bitkey-dir", delegated_scopes=ROLES, multi_tenant=True)
    agent = fabrikam.add_user("agent@fabrikam.onmicrosoft.com", roles=["Helpdesk Administrator"])
    key = fabrikam.add_recovery_key(fabrikam.add_device("PC-01"))
    scopes = [f"{graph.graph_url}/{name}" for name in ROLES]

    def sign_in(authority: str, user: Any) -> dict[str, Any]:
        pca = msal.PublicClientApplication(
            app.client_id,
            authority=authority,
            instance_discovery=False,
            http_client=ca_session(graph),
        )
        flow = pca.initiate_device_flow(scopes)
        assert "user_code" in flow, flow
        graph.approve_device_code(flow["user_code"], user)
        return pca.acquire_token_by_device_flow(flow)  # type: ignore[no-any-return]

    # Nobody in fabrikam consented: the user gets a code, the token is refused.
    refused = sign_in(fabrikam.authority, agent)
    assert (refused["error"], refused["error_codes"]) == ("invalid_grant", [65001])
    assert refused["suberror"] == "consent_required"

    fabrikam.consent(app, delegated_scopes=ROLES)
    for authority in (fabrikam.authority, f"{graph.base_url}/organizations"):
        result = sign_in(authority, agent)
        assert "access_token" in result, result
        token = claims(result["access_token"])
        assert (token["tid"], token["iss"]) == (fabrikam.tenant_id, fabrikam.access_token_issuer)
        assert token["upn"] == agent.user_principal_name
        assert result["id_token_claims"]["tid"] == fabrikam.tenant_id
        assert result["id_token_claims"]["iss"] == fabrikam.issuer
        answer = call(graph, "GET", key_url(key, "key"), token=result["access_token"])
        assert answer.body["key"] == key.key
    assert [read.user_principal_name for read in fabrikam.key_reads] == [
        agent.user_principal_name
    ] * 2

    # A contoso user cannot finish a sign-in started in fabrikam.
    pca = msal.PublicClientApplication(
        app.client_id,
        authority=fabrikam.authority,
        instance_discovery=False,
        http_client=ca_session(graph),
    )
    flow = pca.initiate_device_flow(scopes)
    outsider = graph.add_user("someone@contoso.onmicrosoft.com", roles=["Global Administrator"])
    with pytest.raises(ValueError, match="not in tenant"):
        graph.approve_device_code(flow["user_code"], outsider)

    # A single-tenant app has no business on /organizations (AADSTS50194).
    single = graph.add_app("single", delegated_scopes=ROLES)
    answer = call(
        graph,
        "POST",
        "/organizations/oauth2/v2.0/devicecode",
        body=f"client_id={single.client_id}&scope={quote(' '.join(scopes))}",
    )
    assert (answer.status, answer.body["error_codes"]) == (400, [50194])


def test_faults_and_latency_for_one_tenant(graph: GraphEmulator, fabrikam: Tenant) -> None:
    home_app = graph.add_app("home", public_client=False, secret="s", app_roles=ROLES)
    fabrikam_app = fabrikam.add_app("fab", public_client=False, secret="s", app_roles=ROLES)
    home_token = graph.mint_access_token(home_app, roles=ROLES)
    fabrikam_token = fabrikam.mint_access_token(fabrikam_app, roles=ROLES)

    fault = fabrikam.add_fault(r"/recoveryKeys$", status=429, retry_after=1, times=2)
    assert fault.tenant_id == fabrikam.tenant_id
    assert call(graph, "GET", KEYS, token=home_token).status == 200
    throttled = call(graph, "GET", KEYS, token=fabrikam_token)
    assert_graph_error(throttled, 429, "TooManyRequests")
    batch = {"requests": [{"id": "1", "method": "GET", "url": KEYS[5:]}]}
    answer = call(graph, "POST", "/v1.0/$batch", token=fabrikam_token, body=batch)
    assert answer.body["responses"][0]["status"] == 429  # a $batch item is the tenant's too
    assert call(graph, "GET", KEYS, token=fabrikam_token).status == 200
    assert fault.served == 2

    graph.add_fault(r"/token$", status=503, tenant="fabrikam.onmicrosoft.com")
    assert client_credentials(graph, graph.tenant_id, home_app, "s").status == 200
    assert client_credentials(graph, fabrikam.tenant_id, fabrikam_app, "s").status == 503

    fabrikam.latency = 0.2
    started = time.monotonic()
    call(graph, "GET", KEYS, token=home_token)
    assert time.monotonic() - started < 0.2
    started = time.monotonic()
    call(graph, "GET", KEYS, token=fabrikam_token)
    assert time.monotonic() - started >= 0.2
    fabrikam.latency = None  # back to the emulator's
    assert fabrikam.latency == graph.latency == 0.0

    fabrikam.recovery_keys_page_size = 1
    for tenant in (graph.home, fabrikam):
        pc = tenant.add_device("PC")
        tenant.add_recovery_key(pc)
        tenant.add_recovery_key(pc)
    assert len(call(graph, "GET", KEYS, token=fabrikam_token).body["value"]) == 1
    assert len(call(graph, "GET", KEYS, token=home_token).body["value"]) == 2
    assert graph.home.recovery_keys_page_size == graph.recovery_keys_page_size == 20
