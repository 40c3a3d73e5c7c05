"""The pure parts of the portal's Entra sign-in: [serve] settings for Entra sources and
public_url, the store of sign-ins under way (state, browser cookie, lifetime, single use),
the sign-in page's CSP, and the hand-over of an agent's sign-in to their Entra source."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the portal extra is not installed")

from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import Response

from bitkey_dir.core.errors import ConfigError
from bitkey_dir.portal import entra
from bitkey_dir.portal.desks import AgentInteraction, agent_config
from bitkey_dir.portal.entra import Flows, Pending, hashed, plausible
from bitkey_dir.portal.settings import read_settings
from bitkey_dir.portal.web import CSP, with_form_targets
from bitkey_dir.runtime import interaction
from bitkey_dir.runtime.config import parse_config
from bitkey_dir.runtime.delegation import handed_over
from bitkey_dir.runtime.sealed import Sealed

CLOUD = {
    "type": "entra",
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "11111111-2222-3333-4444-555555555555",
    "auth": "client-secret",
}
SOURCES = {"corp": {"type": "ad", "servers": ["ldaps://dc1"]}, "cloud": CLOUD}


def settings_of(serve: dict[str, object], cloud: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    sources = {**SOURCES, "cloud": {**CLOUD, **(cloud or {})}}
    return read_settings(parse_config({"sources": sources, "serve": serve}, Path("c.toml")))


def test_entra_sources_sign_in_through_the_browser_back_to_public_url() -> None:
    settings = settings_of({"sign_in": ["corp", "cloud"], "public_url": "https://helpdesk.corp/"})
    assert settings.entra == ("cloud",)
    assert settings.ad == ("corp",)
    assert settings.redirect_uri == "https://helpdesk.corp/auth/callback"
    loopback = settings_of({"sign_in": ["cloud"], "public_url": "http://localhost:8080"})
    assert loopback.redirect_uri == "http://localhost:8080/auth/callback"


@pytest.mark.parametrize(
    ("serve", "cloud", "problem"),
    [
        ({"sign_in": ["cloud"]}, None, "public_url: expected https://HOST"),
        ({"sign_in": ["cloud"], "public_url": "http://helpdesk.corp"}, None, "public_url"),
        ({"sign_in": ["cloud"], "public_url": "https://h/portal"}, None, "public_url"),
        ({"sign_in": ["cloud"], "public_url": "https://h/?x=1"}, None, "public_url"),
        ({"sign_in": ["cloud"], "public_url": "https://u:p@h"}, None, "public_url"),
        ({"sign_in": ["cloud"], "public_url": "https://h:99999"}, None, "public_url"),
        ({"sign_in": ["cloud"], "public_url": "https://h\n.x"}, None, "public_url"),
        ({"sign_in": ["cloud"], "public_url": 42}, None, "public_url"),
        ({"sign_in": ["cloud"], "public_url": "https://" + "h" * 300}, None, "public_url"),
        ({"sign_in": ["cloud"], "public_url": "https://h_<x>"}, None, "public_url"),
        ({"sign_in": ["cloud"], "public_url": "https://h"}, {"auth": "device-code"}, "secret"),
        ({"sign_in": ["cloud"], "public_url": "https://h"}, {"tenant_ids": ["a"]}, "one tenant"),
        (
            {"sign_in": ["cloud"], "public_url": "https://h", "entra_rotation": "yes"},
            None,
            "entra_rotation: expected true or false",
        ),
        (
            {"sign_in": ["corp"], "entra_rotation": True},
            None,
            "entra_rotation: expected true only with an Entra source",
        ),
    ],
)
def test_bad_entra_sign_in_settings_name_the_key(
    serve: dict[str, object], cloud: dict[str, object] | None, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        settings_of(serve, cloud)


def pending(browser: str, started: float | None = None) -> Pending:
    return Pending("cloud", Sealed("{}"), hashed(browser), started or time.time())


def test_a_flow_is_taken_once_by_the_browser_it_was_given_to() -> None:
    flows = Flows()
    assert flows.add("state-1", pending("cookie-1"))
    assert flows.take("state-1", "another browser's cookie") == (None, "unknown")
    assert flows.take("state-2", "cookie-1") == (None, "unknown")
    taken, why = flows.take("state-1", "cookie-1")
    assert taken is not None
    assert why == ""
    assert flows.take("state-1", "cookie-1") == (None, "unknown")


def test_an_old_flow_is_refused_and_purged(monkeypatch: pytest.MonkeyPatch) -> None:
    flows = Flows()
    flows.add("old", pending("c", time.time() - entra.FLOW_LIFETIME - 1))
    assert flows.take("old", "c") == (None, "expired")
    flows.add("older", pending("c", time.time() - entra.FLOW_LIFETIME - 1))
    flows.add("new", pending("c"))
    assert len(flows) == 1  # filing one purges the lapsed


def test_a_flood_of_sign_ins_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entra, "MOST_FLOWS", 3)
    flows = Flows()
    assert all(flows.add(f"s{n}", pending("c")) for n in range(3))
    assert not flows.add("s3", pending("c"))


@given(st.text(max_size=300))
def test_only_short_printable_ascii_is_a_plausible_state(text: str) -> None:
    if plausible(text, 256):
        assert text.isascii()
        assert text.isprintable()
        assert 0 < len(text) <= 256


def test_the_sign_in_page_may_lead_to_the_identity_platform_only() -> None:
    response = with_form_targets(Response(), ("https://login.microsoftonline.com",))
    csp = response.headers["content-security-policy"]
    assert "form-action 'self' https://login.microsoftonline.com;" in csp
    assert csp.replace(" https://login.microsoftonline.com", "") == CSP
    assert "content-security-policy" not in with_form_targets(Response(), ()).headers


class Handed:
    source = "cloud"
    username = "agent@contoso.onmicrosoft.com"
    groups = None

    def token(self) -> tuple[str, int]:
        return "a-token", 0

    def forget(self) -> None:
        pass


def test_an_agents_entra_sign_in_is_handed_to_their_source_only() -> None:
    agent = AgentInteraction("cloud", Handed.username, None, Handed())
    assert handed_over("cloud") is None  # outside the agent's operations
    with interaction.using(agent):
        assert handed_over("cloud") is not None
        assert handed_over("corp") is None
    assert agent.secret("password of agent@contoso.onmicrosoft.com (cloud)") == ""


def test_an_entra_agents_config_never_uses_the_apps_secret() -> None:
    data = {"sources": SOURCES}
    config = agent_config(data, Path("c.toml"), "cloud", Handed.username, [])
    settings = config.sources["cloud"].settings
    assert settings.value("auth") == "device-code"  # delegated: the handed-over token
    assert "user" not in settings


def test_a_huge_url_in_a_config_error_is_described_at_once() -> None:
    from bitkey_dir.runtime.config import without_userinfo

    started = time.monotonic()
    with pytest.raises(ConfigError, match="public_url"):
        settings_of({"sign_in": ["cloud"], "public_url": "https://" + "h" * 100_000})
    assert time.monotonic() - started < 2
    assert without_userinfo("see https://u:Pa55@h/x and ldaps://a:b@dc") == (
        "see https://…@h/x and ldaps://…@dc"
    )


def test_entra_rotation_is_opt_in_and_adds_intunes_permission_to_the_sign_in() -> None:
    from bitkey_dir.portal.desks import Desk
    from bitkey_dir.sources.entra.signin import SignIn
    from bitkey_dir.sources.entra.web_signin import WebSignIn

    plain = settings_of({"sign_in": ["corp", "cloud"], "public_url": "https://h"})
    rotating = settings_of(
        {"sign_in": ["cloud"], "public_url": "https://h", "entra_rotation": True}
    )
    assert (plain.entra_rotation, rotating.entra_rotation) == (False, True)
    entra_desk = Desk("a@b", "cloud", None, Handed())  # type: ignore[arg-type]
    ad_desk = Desk("a@b", "corp", None)  # type: ignore[arg-type]
    assert entra.rotation_off(plain, entra_desk) == ("cloud",)
    assert entra.rotation_off(rotating, entra_desk) == ()
    assert entra.rotation_off(plain, ad_desk) == ()
    sign_in = SignIn.__new__(SignIn)
    object.__setattr__(sign_in, "auth", "client-secret")
    object.__setattr__(sign_in, "graph_url", "https://graph.microsoft.com")
    intune = "https://graph.microsoft.com/DeviceManagementManagedDevices.ReadWrite.All"
    assert intune not in WebSignIn(sign_in).scopes
    assert intune in WebSignIn(sign_in, rotate=True).scopes
