"""An Entra-signed-in agent as the portal's request-level tests drive it: the portal in
process (starlette's TestClient, "https://testserver"), the identity platform's sign-in
page on the Graph emulator (httpx trusting the emulator's CA), the browser's part in between
done by hand: follow the portal's redirect to /authorize, post the user's name and password
there, and bring the code back to the portal's callback."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from examples.lab.graph_emulator import GraphEmulator
from tests.command_line import toml_value
from tests.integration.fixtures import SECRET, SECRET_ENV, SOURCE, Entra
from tests.integration.portal_agents import Agent

PUBLIC_URL = "https://testserver"
CALLBACK = f"{PUBLIC_URL}/auth/callback"
AGENT_PASSWORD = "Agent-Pa55word!"  # the emulator user's, never shown by the portal
SCOPES = ("BitlockerKey.Read.All", "Device.Read.All", "GroupMember.Read.All")
UPN = "agent@contoso.onmicrosoft.com"  # the helpdesk agent's Entra account
KEY = "063EA4E1-7C4B-4F0E-9F2A-8B1D2C3E4F50"  # the key the agent looks up


def portal_app(
    graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch, scopes: tuple[str, ...] = SCOPES,
    **options: object,
) -> str:  # fmt: skip
    """A confidential web app registered for the portal's callback, the tenant's admin
    consenting to ``scopes``; its client ID."""
    app = graph.add_app(
        "bitkey-dir portal",
        public_client=False,
        secret=SECRET,
        delegated_scopes=scopes,
        redirect_uris=[CALLBACK],
        **options,  # type: ignore[arg-type]
    )
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return app.client_id


def entra_serve_config(entra: Entra, tmp_path: Path, client_id: str, **serve: object) -> Path:
    entra.client_id = client_id
    config = entra.config()
    table = {
        "sign_in": [SOURCE],
        "public_url": PUBLIC_URL,
        "sessions": str(tmp_path / "sessions.sqlite"),
        **serve,
    }
    lines = ["", "[serve]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    with config.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return config


class IdentityPage:
    """The browser's visit to the emulator's sign-in page."""

    def __init__(self, graph: GraphEmulator) -> None:
        self.http = httpx.Client(verify=graph.ssl_context(), timeout=30)

    def sign_in(self, auth_uri: str, user: str, password: str, action: str = "sign-in") -> str:
        """Where the identity platform sends the browser back (the Location)."""
        shown = self.http.get(auth_uri)
        assert shown.status_code == 200, shown.text
        request = re.search(r"name='request' value='([^']+)'", shown.text)
        assert request, shown.text
        answer = self.http.post(
            auth_uri.split("?", maxsplit=1)[0],
            data={"request": request[1], "username": user, "password": password, "action": action},
        )
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]


def start(agent: Agent) -> str:
    """Press "Sign in with cloud": the /authorize URL the portal sends the browser to."""
    agent.get("/sign-in")
    response = agent.http.post(
        "/sign-in/entra", data={"csrf": agent.csrf, "source": SOURCE}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def back(agent: Agent, location: str) -> httpx.Response:
    """The browser arriving at the portal's callback (path and query of ``location``)."""
    parts = urlsplit(location)
    response = agent.http.get(f"{parts.path}?{parts.query}", follow_redirects=False)
    agent._read(response.text)
    return response


def entra_sign_in(agent: Agent, graph: GraphEmulator, user: str) -> httpx.Response:
    location = IdentityPage(graph).sign_in(start(agent), user, AGENT_PASSWORD)
    assert location.startswith(CALLBACK)
    return back(agent, location)
