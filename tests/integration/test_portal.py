"""The helpdesk portal at the request level, against the session's Samba DC: agents sign in
as themselves (an LDAP bind), look keys up with a reason, rotate, sign out; and everything a
portal that hands out keys must refuse.

Driven in-process by starlette's TestClient over "https://testserver" (the session cookie is
Secure); the browser walk through the same pages is in test_portal_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the portal extra is not installed")
from starlette.testclient import TestClient

from bitkey_dir.portal.sessions import SQLiteSessions
from tests.command_line import take_trail_entries, trail_entries
from tests.integration.fixtures import WRONG_PASSWORD, Directory, Lab
from tests.integration.portal_agents import (
    NEWEST,
    SRV001,
    Agent,
    clients,
    no_secret_but,
    serve_config,
)
from tests.integration.seed import COLLIDING_PREFIX, HELPDESK, PLAIN

pytestmark = pytest.mark.integration


@pytest.fixture
def portal_config(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    return serve_config(lab, tmp_path)


@pytest.fixture
def agent(portal_config: Path) -> Iterator[Agent]:
    for agents in clients(portal_config):
        yield agents[0]


def test_every_response_has_the_security_headers_and_a_strict_cookie(agent: Agent) -> None:
    response = agent.http.get("/sign-in")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # default-src 'none': no script at all, inline or not
    assert "default-src 'none'" in csp
    cookie = response.headers["set-cookie"].lower()
    for attribute in ("secure", "httponly", "samesite=strict"):
        assert attribute in cookie
    missing = agent.http.get("/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == "no-store"


def test_a_helpdesk_agent_reads_a_key_and_the_trail_names_them(
    agent: Agent, samba_dc: Directory
) -> None:
    take_trail_entries()
    response = agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
    assert response.status_code == 200
    assert "Recovery key lookup" in agent.last
    no_secret_but(agent.last)
    response = agent.look_up(NEWEST.key_id[:8], "INC-4711 user locked out")
    assert response.status_code == 200
    groups = NEWEST.password.split("-")
    for number, group in enumerate(groups, 1):
        assert f'<span class="n">{number}</span> <span class="g">{group}</span>' in agent.last
    assert "WS001" in agent.last
    no_secret_but(agent.last, (NEWEST.password,))
    (entry,) = take_trail_entries()
    assert entry["key_id"] == NEWEST.key_id.upper()
    assert entry["principal"] == samba_dc.upn(HELPDESK.name)
    assert entry["reason"] == "INC-4711 user locked out"
    command = " ".join(entry["command"])
    assert "serve" in command
    assert samba_dc.upn(HELPDESK.name) in command
    assert "testclient" in command  # the client's address, as the server saw it


def test_no_right_to_read_is_told_apart_from_not_found(agent: Agent, samba_dc: Directory) -> None:
    agent.sign_in(samba_dc.upn(PLAIN.name), PLAIN.password)
    agent.look_up(NEWEST.key_id[:8])
    assert "no right to read" in agent.last
    no_secret_but(agent.last)
    agent.look_up("FEEDFACE")
    assert "No recovery key found" in agent.last
    assert "no right" not in agent.last
    assert trail_entries() == []


def test_an_ambiguous_prefix_is_said_and_no_key_is_read_out(
    agent: Agent, samba_dc: Directory
) -> None:
    agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
    agent.look_up(COLLIDING_PREFIX)
    assert "matches 2 different keys" in agent.last


def test_a_post_without_the_csrf_token_is_refused_and_reveals_nothing(
    agent: Agent, samba_dc: Directory
) -> None:
    agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
    take_trail_entries()
    for token in ("", "forged"):
        response = agent.http.post(
            "/lookup", data={"csrf": token, "key_id": NEWEST.key_id, "reason": "x"}
        )
        assert response.status_code == 403
        no_secret_but(response.text)
    response = agent.http.post("/lookup", data={"key_id": NEWEST.key_id, "reason": "x"})
    assert response.status_code == 403
    assert trail_entries() == []
    fresh = Agent(TestClient(agent.http.app, base_url="https://testserver"))
    assert fresh.http.post("/sign-in", data={"username": "a@b", "password": "x"}).status_code == (
        403
    )


def test_a_reason_is_required_and_a_password_pasted_in_it_refused(
    agent: Agent, samba_dc: Directory
) -> None:
    agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
    response = agent.look_up(NEWEST.key_id[:8], reason="")
    assert response.status_code == 400
    assert "Give a reason" in agent.last
    response = agent.look_up(NEWEST.key_id[:8], reason=SRV001.password)
    assert response.status_code == 400
    no_secret_but(agent.last)
    assert trail_entries() == []


def test_a_wrong_password_is_refused_then_throttled(
    lab: Lab, tmp_path: Path, samba_dc: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    config = serve_config(lab, tmp_path, sign_in_attempts=2)
    for agents in clients(config):
        agent = agents[0]
        user = samba_dc.upn(PLAIN.name)
        for _ in range(2):
            response = agent.sign_in(user, WRONG_PASSWORD)
            assert response.status_code == 401
            assert "refused this user name or password" in agent.last
            no_secret_but(agent.last)
        # The right password now waits too: the account is throttled, not the guess.
        response = agent.sign_in(user, PLAIN.password)
        assert response.status_code == 429
        assert "Too many failed sign-ins" in agent.last
        # Another account from the same address still may (4 x 2 per client address).
        response = agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
        assert response.status_code == 200
        assert "Recovery key lookup" in agent.last


def test_reveals_are_rate_limited_per_agent(
    lab: Lab, tmp_path: Path, samba_dc: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    config = serve_config(lab, tmp_path, reveals_per_hour=2)
    for agents in clients(config):
        agent = agents[0]
        agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
        assert agent.look_up(NEWEST.key_id[:8]).status_code == 200
        assert agent.look_up(NEWEST.key_id[:8]).status_code == 200
        take_trail_entries()
        response = agent.look_up(NEWEST.key_id[:8])
        assert response.status_code == 429
        no_secret_but(agent.last)
        assert trail_entries() == []


def test_sign_out_ends_the_session(agent: Agent, samba_dc: Directory) -> None:
    agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
    old_csrf = agent.csrf
    response = agent.post("/sign-out")
    assert response.status_code == 200
    assert "Sign in" in agent.last
    portal = agent.http.app.state.portal
    assert len(portal.desks) == 0
    response = agent.http.post(
        "/lookup", data={"csrf": old_csrf, "key_id": NEWEST.key_id, "reason": "x"}
    )
    assert response.status_code == 403
    assert agent.http.get("/lookup", follow_redirects=False).headers["location"] == "/sign-in"
    assert agent.http.get("/sign-out").status_code == 405  # a GET never signs anyone out


@pytest.mark.parametrize("timeout", ["idle", "lifetime"])
def test_sessions_end_when_idle_and_after_their_lifetime(
    agent: Agent, samba_dc: Directory, timeout: str
) -> None:
    agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
    portal = agent.http.app.state.portal
    store: SQLiteSessions = portal.store
    session_id = agent.http.cookies["bitkey_session"]
    session = store.load(session_id)
    assert session is not None
    if timeout == "idle":
        store.save(replace(session, seen=session.seen - 15 * 60 - 1))
    else:  # used a minute ago, but signed in more than 8 hours ago
        store.save(replace(session, created=session.created - 8 * 3600 - 1))
    agent.get("/lookup")
    assert "Your session ended" in agent.last
    assert len(portal.desks) == 0
    assert store.load(session_id) is None


def test_rotate_after_the_call_goes_through_the_rotate_operation(
    agent: Agent, samba_dc: Directory
) -> None:
    agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
    agent.look_up(NEWEST.key_id[:8], "INC-9")
    assert "Rotate after the call" in agent.last
    take_trail_entries()
    agent.post("/rotate", key_id=NEWEST.key_id.upper(), source="lab", reason="INC-9")
    assert "manage-bde" in agent.last  # AD: rotated on the device, the steps are given
    (entry,) = take_trail_entries()
    assert entry["action"] == "rotate"
    assert entry["principal"] == samba_dc.upn(HELPDESK.name)
    assert entry["reason"] == "INC-9"
    no_secret_but(agent.last)


def test_each_trail_line_is_also_sent_to_syslog(
    lab: Lab, tmp_path: Path, samba_dc: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(10)
        syslog = f"udp://127.0.0.1:{listener.getsockname()[1]}"
        for agents in clients(serve_config(lab, tmp_path, syslog=syslog)):
            agent = agents[0]
            agent.sign_in(samba_dc.upn(HELPDESK.name), HELPDESK.password)
            take_trail_entries()
            agent.look_up(NEWEST.key_id[:8], 'INC-7 "quoted"')
            message = listener.recv(65536).decode()
    assert len(take_trail_entries()) == 1
    assert message.startswith("<85>1 ")
    assert " bitkey-dir " in message
    assert " reveal [bitkey@32473 " in message
    assert f'agent="{samba_dc.upn(HELPDESK.name)}"' in message
    assert 'client="testclient"' in message
    assert f'key_id="{NEWEST.key_id.upper()}"' in message
    assert 'reason="INC-7 \\"quoted\\""' in message
    assert 'computer="WS001"' in message
    no_secret_but(message)
