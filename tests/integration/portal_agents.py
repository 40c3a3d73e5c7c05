"""A browser as the portal's request-level tests drive it (starlette's TestClient over
"https://testserver", the session cookie being Secure), and the config they serve."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from starlette.testclient import TestClient

from bitkey_dir.portal.app import create_app
from tests.command_line import toml_value
from tests.integration.fixtures import SECRETS, WRONG_PASSWORD, Lab
from tests.integration.seed import HELPDESK, PLAIN, computer_spec

WS001 = computer_spec("WS001").keys
NEWEST = sorted(WS001, key=lambda key: key.created)[-1]
SRV001 = computer_spec("SRV001").keys[0]


class Agent:
    """One browser: a TestClient with its cookie jar, and the CSRF token of the last page."""

    def __init__(self, client: TestClient) -> None:
        self.http = client
        self.csrf = ""
        self.last = ""

    def get(self, path: str) -> object:
        response = self.http.get(path, follow_redirects=True)
        self._read(response.text)
        return response

    def post(self, path: str, **form: str) -> object:
        response = self.http.post(path, data={"csrf": self.csrf, **form}, follow_redirects=True)
        self._read(response.text)
        return response

    def _read(self, text: str) -> None:
        self.last = text
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        if found:
            self.csrf = found[1]

    def sign_in(self, user: str, password: str) -> object:
        self.get("/sign-in")
        return self.post("/sign-in", username=user, password=password)

    def look_up(self, key_id: str, reason: str = "INC-4711") -> object:
        return self.post("/lookup", key_id=key_id, reason=reason)


def serve_config(lab: Lab, tmp_path: Path, **serve: object) -> Path:
    config = lab.config(user=None)
    table = {"sign_in": ["lab"], "sessions": str(tmp_path / "sessions.sqlite"), **serve}
    lines = ["", "[serve]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    with config.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return config


def clients(config: Path, count: int = 1) -> Iterator[list[Agent]]:
    app = create_app(config)
    with TestClient(app, base_url="https://testserver") as first:
        others = [TestClient(app, base_url="https://testserver") for _ in range(count - 1)]
        yield [Agent(first), *(Agent(other) for other in others)]


def no_secret_but(text: str, allowed: tuple[str, ...] = ()) -> None:
    for secret in [*SECRETS, WRONG_PASSWORD, HELPDESK.password, PLAIN.password]:
        if secret not in allowed:
            assert secret not in text
