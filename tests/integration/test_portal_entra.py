"""Agents signing in to the portal with Entra ID (authorization code flow with PKCE through
MSAL) against the Graph emulator's identity platform: their lookups read Graph with their
own delegated token, so their own Entra roles decide; roles come from Entra groups; and every
way a callback can be wrong ends on a clear page with nothing revealed and no session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the portal extra is not installed")

from bitkey_dir.portal import entra as portal_entra
from bitkey_dir.sources.entra.intune import ROTATE
from examples.lab.graph_emulator import GraphEmulator, User
from tests.command_line import take_trail_entries
from tests.integration.fixtures import SECRET, SOURCE, Entra
from tests.integration.portal_agents import Agent, clients
from tests.integration.portal_entra import (
    AGENT_PASSWORD,
    CALLBACK,
    KEY,
    SCOPES,
    UPN,
    IdentityPage,
    back,
    entra_serve_config,
    entra_sign_in,
    portal_app,
    start,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def helpdesk(graph: GraphEmulator) -> User:
    device = graph.add_device("PC-0042")
    graph.add_recovery_key(device, key_id=KEY)
    return graph.add_user(UPN, roles=["Helpdesk Administrator"], password=AGENT_PASSWORD)


def agents(
    entra: Entra, graph: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    app: dict[str, object] | None = None, scopes: tuple[str, ...] = SCOPES, **serve: object,
) -> Iterator[Agent]:  # fmt: skip
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    client_id = portal_app(graph, monkeypatch, scopes, **(app or {}))
    config = entra_serve_config(entra, tmp_path, client_id, **serve)
    for found in clients(config):
        yield found[0]


@pytest.fixture
def agent(
    entra: Entra, graph: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Agent]:
    yield from agents(entra, graph, tmp_path, monkeypatch)


def nothing_secret(agent: Agent, graph: GraphEmulator) -> None:
    for secret in [SECRET, AGENT_PASSWORD, *(k.key for k in graph.recovery_keys.values())]:
        assert secret not in agent.last


def test_an_entra_agent_reads_a_key_with_their_own_token_and_signs_out(
    agent: Agent, graph: GraphEmulator, helpdesk: User
) -> None:
    take_trail_entries()
    arrived = entra_sign_in(agent, graph, UPN)
    assert arrived.status_code == 200
    assert 'http-equiv="refresh" content="0;url=/lookup"' in arrived.text
    assert "code=" not in arrived.text
    assert "samesite=strict" in arrived.headers["set-cookie"].lower()
    assert "bitkey_signin=" in arrived.headers["set-cookie"]  # the flow cookie is cleared
    agent.get("/lookup")
    assert f'<span id="agent">{UPN}</span>' in agent.last
    nothing_secret(agent, graph)
    response = agent.look_up(KEY[:8], "INC-4711 locked out")
    assert response.status_code == 200
    password = graph.recovery_keys[KEY.lower()].key
    assert all(group in agent.last for group in password.split("-"))
    (entry,) = take_trail_entries()
    assert entry["principal"] == UPN
    assert entry["source"] == SOURCE
    assert entry["reason"] == "INC-4711 locked out"
    assert f"by {UPN} (signed in with {SOURCE})" in " ".join(entry["command"])
    # Graph saw the agent's delegated token, not the app's.
    assert graph.key_reads[-1].user_principal_name == UPN
    agent.look_up("FFFFFFFF")  # an agent who may read keys: "not found" is trustworthy
    assert "No recovery key found" in agent.last
    assert "no right to read" not in agent.last
    app = agent.http.app.state.portal  # type: ignore[attr-defined]
    (desk,) = list(app.desks._desks.values())
    delegation = desk.delegation
    agent.post("/sign-out")
    assert "Sign in with cloud" in agent.last
    assert len(app.desks) == 0
    with pytest.raises(Exception, match="signed out"):
        delegation.token()  # the token cache went with the desk
    agent.get("/lookup")
    assert "Sign in with cloud" in agent.last


def test_an_agent_without_an_entra_role_is_told_so_and_sees_no_password(
    agent: Agent, graph: GraphEmulator, helpdesk: User
) -> None:
    graph.add_user("nobody@contoso.onmicrosoft.com", password=AGENT_PASSWORD)
    assert entra_sign_in(agent, graph, "nobody@contoso.onmicrosoft.com").status_code == 200
    take_trail_entries()
    agent.get("/lookup")
    response = agent.look_up(KEY[:8])
    assert response.status_code == 200
    assert "no right to read" in agent.last
    assert "holds none of the built-in Entra roles that read" in agent.last
    assert "No recovery key found" not in agent.last
    nothing_secret(agent, graph)
    assert take_trail_entries() == []


def test_a_state_the_portal_did_not_start_is_refused(agent: Agent, graph: GraphEmulator,
                                                     helpdesk: User) -> None:  # fmt: skip
    location = IdentityPage(graph).sign_in(start(agent), UPN, AGENT_PASSWORD)
    forged = location.replace("state=", "state=x")
    response = back(agent, forged)
    assert response.status_code == 400
    assert "not started here" in response.text
    nothing_secret(agent, graph)
    assert agent.get("/lookup").url.path == "/sign-in"  # type: ignore[attr-defined]


def test_a_code_comes_back_once(agent: Agent, graph: GraphEmulator, helpdesk: User) -> None:
    location = IdentityPage(graph).sign_in(start(agent), UPN, AGENT_PASSWORD)
    assert back(agent, location).status_code == 200
    again = back(agent, location)
    assert again.status_code == 400
    assert "used already" in again.text
    assert "set-cookie" not in again.headers or "bitkey_session=" not in again.headers["set-cookie"]


def test_another_flows_code_fails_the_pkce_check(
    agent: Agent, graph: GraphEmulator, helpdesk: User
) -> None:
    """Code injection: a code issued for one flow, brought back with another flow's state,
    is redeemed with that flow's verifier, which does not match the code's challenge."""
    page = IdentityPage(graph)
    first = page.sign_in(start(agent), UPN, AGENT_PASSWORD)
    second = page.sign_in(start(agent), UPN, AGENT_PASSWORD)
    code = first.split("code=")[1].split("&")[0]
    mixed = second.split("?")[0] + "?code=" + code + "&state=" + second.split("state=")[1]
    response = back(agent, mixed)
    assert response.status_code == 401
    assert "AADSTS501481" in response.text
    nothing_secret(agent, graph)
    assert agent.get("/lookup").url.path == "/sign-in"  # type: ignore[attr-defined]


def test_an_error_sent_back_is_shown(agent: Agent, graph: GraphEmulator, helpdesk: User) -> None:
    location = IdentityPage(graph).sign_in(start(agent), UPN, "", action="cancel")
    assert "error=access_denied" in location
    response = back(agent, location)
    assert response.status_code == 401
    assert "did not sign you in: AADSTS65004: User declined" in response.text


def test_a_flow_older_than_ten_minutes_is_refused(
    agent: Agent, graph: GraphEmulator, helpdesk: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = IdentityPage(graph).sign_in(start(agent), UPN, AGENT_PASSWORD)
    monkeypatch.setattr(portal_entra, "FLOW_LIFETIME", -1)
    response = back(agent, location)
    assert response.status_code == 400
    assert "took too long" in response.text


def test_a_callback_without_the_flow_cookie_is_refused(
    agent: Agent, graph: GraphEmulator, helpdesk: User
) -> None:
    location = IdentityPage(graph).sign_in(start(agent), UPN, AGENT_PASSWORD)
    agent.http.cookies.delete("bitkey_signin", path="/auth/callback")
    assert back(agent, location).status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "state=" + "A" * 20_000 + "&code=x",
        "state=%00%0a%1b%5B31m&code=x",
        "state=%E2%80%AEabc&code=x",
        "code=abc%00%0d%0aSet-Cookie:%20x=y",
        "error=x&error_description=%3Cscript%3Ealert(1)%3C/script%3E",
        "state=&code=&error=",
    ],
)
def test_hostile_callbacks_end_on_a_page(agent: Agent, graph: GraphEmulator, query: str) -> None:
    response = agent.http.get(f"/auth/callback?{query}", follow_redirects=False)
    assert response.status_code == 400
    assert "<script>" not in response.text
    assert "x=y" not in response.headers.get("set-cookie", "")


def test_hostile_code_with_a_real_state_is_refused(
    agent: Agent, graph: GraphEmulator, helpdesk: User
) -> None:
    location = IdentityPage(graph).sign_in(start(agent), UPN, AGENT_PASSWORD)
    state = location.split("state=")[1].split("&")[0]
    response = back(agent, f"{CALLBACK}?code=ab%00%1bcd&state={state}")
    assert response.status_code == 400
    assert graph.count("/oauth2/v2.0/token") == 0 or "AADSTS" not in response.text


def test_roles_come_from_the_groups_claim_and_from_graph_on_overage(
    entra: Entra, graph: GraphEmulator, helpdesk: User, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    advanced = graph.add_group("BitLocker Advanced", [helpdesk])
    nested = graph.add_group("Nested", [advanced])
    auditor = graph.add_user("audit@contoso.onmicrosoft.com", password=AGENT_PASSWORD)
    graph.add_group("Auditors", [auditor], group_id="7d9c6b7e-0000-4000-8000-000000000001")
    serve = {"advanced": [nested.id], "auditors": ["7D9C6B7E-0000-4000-8000-000000000001"]}
    options = {"group_membership_claims": "SecurityGroup"}
    for agent in agents(entra, graph, tmp_path, monkeypatch, options, **serve):
        entra_sign_in(agent, graph, UPN)
        agent.get("/lookup")
        assert "(advanced)" in agent.last
        assert graph.count("transitiveMemberOf") == 0  # the claim sufficed
        agent.post("/sign-out")
        graph.groups_claim_limit = 1  # two groups: overage, so Graph is asked
        entra_sign_in(agent, graph, UPN)
        agent.get("/lookup")
        assert "(advanced)" in agent.last
        assert graph.count("transitiveMemberOf") == 1
        agent.post("/sign-out")
        entra_sign_in(agent, graph, "audit@contoso.onmicrosoft.com")
        agent.get("/")
        assert "(auditor)" in agent.last


@pytest.fixture
def rotating(
    entra: Entra, graph: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Agent]:
    """The portal with entra_rotation on, its app consented to Intune's permission."""
    yield from agents(entra, graph, tmp_path, monkeypatch, None, (*SCOPES, ROTATE),
                      entra_rotation=True)  # fmt: skip


def rotate_after_the_call(agent: Agent) -> None:
    agent.get("/lookup")
    agent.look_up(KEY[:8], "INC-4711 locked out")
    assert 'class="rotate-button"' in agent.last
    agent.post("/rotate", key_id=KEY, source=SOURCE, reason="INC-4711 locked out")


def test_with_entra_rotation_an_agent_asks_intune_as_themselves(
    rotating: Agent, graph: GraphEmulator, helpdesk: User
) -> None:
    helpdesk.roles.add("Intune Service Administrator")
    managed = graph.add_managed_device(graph.home.devices[0], rotation_policy=True)
    entra_sign_in(rotating, graph, UPN)
    take_trail_entries()
    rotate_after_the_call(rotating)
    assert "Intune was asked to rotate the keys" in rotating.last
    (rotation,) = graph.rotations
    assert rotation.user_principal_name == UPN  # the agent's token, not the app's
    assert rotation.managed_device_id == managed.id
    reveal, rotate = take_trail_entries()
    assert reveal["principal"] == UPN
    assert rotate["action"] == "rotate"
    assert rotate["principal"] == UPN
    assert f"by {UPN} (signed in with {SOURCE})" in " ".join(rotate["command"])
    nothing_secret(rotating, graph)


def test_without_entra_rotation_the_page_says_which_setting_and_nothing_rotates(
    agent: Agent, graph: GraphEmulator, helpdesk: User
) -> None:
    helpdesk.roles.add("Intune Service Administrator")
    graph.add_managed_device(graph.home.devices[0], rotation_policy=True)
    entra_sign_in(agent, graph, UPN)
    agent.get("/lookup")
    agent.look_up(KEY[:8], "INC-4711 locked out")
    assert 'class="rotate-button"' not in agent.last  # not offered, and why instead
    assert "entra_rotation = true" in agent.last
    assert ROTATE in agent.last
    take_trail_entries()
    response = agent.post("/rotate", key_id=KEY, source=SOURCE, reason="INC-4711")
    assert response.status_code == 403
    assert "Not rotated." in agent.last
    assert "entra_rotation = true" in agent.last
    assert graph.rotations == []
    assert graph.count("rotateBitLockerKeys") == 0
    assert take_trail_entries() == []


def test_a_token_without_intunes_permission_is_told_which_and_nothing_rotates(
    rotating: Agent, graph: GraphEmulator, helpdesk: User
) -> None:
    """Consent taken back after the agent signed in: their token lacks the scope, and
    Intune refuses it; the page names the permission."""
    helpdesk.roles.add("Intune Service Administrator")
    graph.add_managed_device(graph.home.devices[0], rotation_policy=True)
    entra_sign_in(rotating, graph, UPN)
    app = rotating.http.app.state.portal  # type: ignore[attr-defined]
    (desk,) = list(app.desks._desks.values())
    (registered,) = [a for a in graph.apps.values() if a.display_name == "bitkey-dir portal"]
    token = graph.mint_access_token(registered, user=helpdesk, scopes=SCOPES)
    desk.delegation.keep(desk.delegation._cache.open(), {"access_token": token, "expires_in": 3600})
    rotate_after_the_call(rotating)
    assert f"{UPN} may not do this while finding the device in Intune" in rotating.last
    assert f"or {ROTATE}) permission" in rotating.last
    assert graph.rotations == []
    nothing_secret(rotating, graph)
