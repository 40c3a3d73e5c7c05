"""The emulator's authorization endpoint and authorization code grant, driven by real MSAL
(ConfidentialClientApplication.initiate_auth_code_flow / acquire_token_by_auth_code_flow)
and a browser's requests made by hand, against the documented contract."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from examples.lab.graph_emulator import GraphEmulator, User
from tests.integration.portal_entra import AGENT_PASSWORD, CALLBACK, IdentityPage

pytestmark = pytest.mark.integration
SECRET = "web-app-secret"
UPN = "agent@contoso.onmicrosoft.com"


@pytest.fixture
def user(graph: GraphEmulator) -> User:
    return graph.add_user(UPN, roles=["Helpdesk Administrator"], password=AGENT_PASSWORD)


@pytest.fixture
def web_app(graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    import msal

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(graph.ca_file))
    app = graph.add_app(
        "portal", public_client=False, secret=SECRET, redirect_uris=[CALLBACK],
        delegated_scopes=["BitlockerKey.Read.All"], group_membership_claims="SecurityGroup",
    )  # fmt: skip
    return msal.ConfidentialClientApplication(
        app.client_id, client_credential=SECRET, authority=graph.authority,
        instance_discovery=False,
    )  # fmt: skip


def flow_of(web_app: Any, graph: GraphEmulator, **options: Any) -> dict[str, Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # form_post advice
        return dict(
            web_app.initiate_auth_code_flow(
                [f"{graph.graph_url}/BitlockerKey.Read.All"], redirect_uri=CALLBACK, **options
            )
        )


def answer_of(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).query))


def test_a_code_gives_tokens_once_with_the_nonce_and_groups(
    graph: GraphEmulator, web_app: Any, user: User
) -> None:
    group = graph.add_group("Helpdesk", [user])
    flow = flow_of(web_app, graph)
    query = dict(parse_qsl(urlsplit(flow["auth_uri"]).query))
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == flow["state"]
    answer = answer_of(IdentityPage(graph).sign_in(flow["auth_uri"], UPN, AGENT_PASSWORD))
    assert answer["state"] == flow["state"]
    result = web_app.acquire_token_by_auth_code_flow(flow, answer)
    claims = result["id_token_claims"]  # MSAL checked the nonce
    assert claims["preferred_username"] == UPN
    # MSAL sends the SHA-256 of its nonce, and checks the ID token's against it.
    assert claims["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert claims["groups"] == [group.id]
    assert claims["oid"] == user.id
    assert "refresh_token" in result
    again = web_app.acquire_token_by_auth_code_flow(flow, answer)
    assert again["error"] == "invalid_grant"
    assert again["error_codes"] == [54005]


def test_more_groups_than_a_token_carries_is_the_overage_claim(
    graph: GraphEmulator, web_app: Any, user: User
) -> None:
    graph.groups_claim_limit = 2
    for number in range(3):
        graph.add_group(f"G{number}", [user])
    flow = flow_of(web_app, graph)
    answer = answer_of(IdentityPage(graph).sign_in(flow["auth_uri"], UPN, AGENT_PASSWORD))
    claims = web_app.acquire_token_by_auth_code_flow(flow, answer)["id_token_claims"]
    assert "groups" not in claims
    assert claims["_claim_names"] == {"groups": "src1"}


def redeem(graph: GraphEmulator, web_app: Any, flow: dict[str, Any], **form: str) -> Any:
    answer = answer_of(IdentityPage(graph).sign_in(flow["auth_uri"], UPN, AGENT_PASSWORD))
    body = {
        "grant_type": "authorization_code", "client_id": web_app.client_id,
        "client_secret": SECRET, "code": answer["code"], "redirect_uri": CALLBACK,
        "code_verifier": flow["code_verifier"], **form,
    }  # fmt: skip
    import httpx

    token_url = f"{graph.authority}/oauth2/v2.0/token"
    return httpx.post(token_url, data=body, verify=graph.ssl_context()).json()


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"code_verifier": "x" * 43}, 501481),
        ({"code_verifier": ""}, 501481),
        ({"redirect_uri": "https://elsewhere.example/cb"}, 500112),
        ({"code": "1.emu-code.forged"}, 9002313),
    ],
)
def test_the_code_grant_checks_verifier_redirect_and_code(
    graph: GraphEmulator, web_app: Any, user: User, form: dict[str, str], code: int
) -> None:
    answer = redeem(graph, web_app, flow_of(web_app, graph), **form)
    assert answer["error"] == "invalid_grant"
    assert answer["error_codes"] == [code]


def test_a_code_expires(graph: GraphEmulator, web_app: Any, user: User) -> None:
    flow = flow_of(web_app, graph)
    answer = answer_of(IdentityPage(graph).sign_in(flow["auth_uri"], UPN, AGENT_PASSWORD))
    graph.advance_clock(graph.auth_code_lifetime + 1)
    result = web_app.acquire_token_by_auth_code_flow(flow, answer)
    assert result["error_codes"] == [70008]


def test_a_plain_challenge_is_accepted(graph: GraphEmulator, web_app: Any, user: User) -> None:
    flow = flow_of(web_app, graph)
    plain = flow["auth_uri"].replace("code_challenge_method=S256", "code_challenge_method=plain")
    verifier = "v" * 43
    query = dict(parse_qsl(urlsplit(plain).query))
    query["code_challenge"] = verifier
    plain = plain.split("?", maxsplit=1)[0] + "?" + urlencode(query)
    answer = redeem(graph, web_app, {**flow, "auth_uri": plain, "code_verifier": verifier})
    assert "access_token" in answer, answer


def test_wrong_user_or_password_stays_on_the_page(graph: GraphEmulator, web_app: Any,
                                                  user: User) -> None:  # fmt: skip
    import re

    page = IdentityPage(graph)
    flow = flow_of(web_app, graph, login_hint=UPN)
    shown = page.http.get(flow["auth_uri"])
    assert f"value='{UPN}'" in shown.text  # login_hint fills the name in
    request = re.search(r"name='request' value='([^']+)'", shown.text)
    assert request
    url = flow["auth_uri"].split("?", maxsplit=1)[0]
    for name, password, code in ((UPN, "wrong", "AADSTS50126"), ("x@y.z", "", "AADSTS50034")):
        form = {"request": request[1], "username": name, "password": password}
        again = page.http.post(url, data=form)
        assert again.status_code == 200
        assert code in again.text
    location = page.sign_in(flow["auth_uri"], UPN, AGENT_PASSWORD)
    assert "code=" in location


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ({"response_type": "token"}, "unsupported_response_type", "700054"),
        ({"scope": ""}, "invalid_request", "900144"),
        ({"code_challenge_method": "S512"}, "invalid_request", "501471"),
        ({"code_challenge": "short"}, "invalid_request", "501491"),
        ({"prompt": "none"}, "login_required", "50058"),
    ],
)
def test_bad_requests_go_back_to_the_app_with_the_state(
    graph: GraphEmulator, web_app: Any, change: dict[str, str], error: str, code: str
) -> None:
    flow = flow_of(web_app, graph)
    query = {**dict(parse_qsl(urlsplit(flow["auth_uri"]).query)), **change}
    url = flow["auth_uri"].split("?", maxsplit=1)[0] + "?" + urlencode(query)
    response = IdentityPage(graph).http.get(url)
    assert response.status_code == 302
    answer = answer_of(response.headers["location"])
    assert answer["error"] == error
    assert answer["error_description"].startswith(f"AADSTS{code}:")
    assert answer["state"] == flow["state"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"redirect_uri": "https://evil.example/cb"}, "AADSTS50011"),
        ({"client_id": "11111111-2222-3333-4444-555555555555"}, "AADSTS700016"),
    ],
)
def test_an_unknown_app_or_redirect_is_never_redirected_to(
    graph: GraphEmulator, web_app: Any, change: dict[str, str], code: str
) -> None:
    flow = flow_of(web_app, graph)
    query = {**dict(parse_qsl(urlsplit(flow["auth_uri"]).query)), **change}
    url = flow["auth_uri"].split("?", maxsplit=1)[0] + "?" + urlencode(query)
    response = IdentityPage(graph).http.get(url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert code in response.text


def test_the_signed_in_users_groups_from_graph(graph: GraphEmulator, web_app: Any,
                                               user: User) -> None:  # fmt: skip
    import httpx

    inner = graph.add_group("Inner", [user])
    outer = graph.add_group("Outer", [inner])
    graph.add_group("Unrelated")
    token = graph.mint_access_token(
        next(iter(graph.apps.values())), user=user, scopes=["GroupMember.Read.All"]
    )
    url = f"{graph.graph_v1}/me/transitiveMemberOf/microsoft.graph.group?$top=1"
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "test"}
    with httpx.Client(verify=graph.ssl_context()) as http:
        first = http.get(url, headers=headers).json()
        second = http.get(first["@odata.nextLink"], headers=headers).json()
        assert [g["id"] for g in first["value"] + second["value"]] == [inner.id, outer.id]
        assert "@odata.nextLink" not in second
        bare = graph.mint_access_token(next(iter(graph.apps.values())), user=user, scopes=[])
        refused = http.get(url, headers={**headers, "Authorization": f"Bearer {bare}"})
        assert refused.status_code == 403
