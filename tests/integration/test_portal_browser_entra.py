"""Entra sign-in in a real browser: headless Chromium against `bitkey-dir serve` as a
process, the identity platform being the Graph emulator. The portal is at
http://localhost:PORT and the emulator's sign-in page at https://127.0.0.1:PORT: two sites,
so the browser's return from the identity platform is a cross-site navigation that does not
carry the SameSite=Strict session cookie, as with the real login.microsoftonline.com.

An agent signs in, reads a key by its first 8 digits with a reason, rotates it through Intune
as themselves (entra_rotation), and signs out; an agent
without an Entra role that reads keys is told so and sees no password. Screenshots go to the
test's folder (BITKEY_DIR_SCREENSHOTS names another)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitkey_dir.sources.entra.intune import ROTATE
from examples.lab.graph_emulator import GraphEmulator, User
from tests.command_line import take_trail_entries
from tests.integration.browsers import headless, serving
from tests.integration.fixtures import SECRET, SOURCE, Entra, free_port
from tests.integration.portal_entra import AGENT_PASSWORD, KEY, SCOPES, UPN

pytestmark = pytest.mark.integration


@pytest.fixture
def helpdesk(graph: GraphEmulator) -> User:
    device = graph.add_device("PC-0042")
    graph.add_recovery_key(device, key_id=KEY)
    graph.add_managed_device(device, rotation_policy=True)
    graph.add_user("nobody@contoso.onmicrosoft.com", password=AGENT_PASSWORD)
    roles = ["Helpdesk Administrator", "Intune Service Administrator"]
    return graph.add_user(UPN, roles=roles, password=AGENT_PASSWORD)


@pytest.fixture
def portal_url(
    entra: Entra, graph: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    port = free_port()
    url = f"http://localhost:{port}"
    app = graph.add_app(
        "bitkey-dir portal", public_client=False, secret=SECRET, delegated_scopes=(*SCOPES, ROTATE),
        redirect_uris=[f"{url}/auth/callback"],
    )  # fmt: skip
    monkeypatch.setenv("BITKEY_DIR_CLIENT_SECRET", SECRET)
    entra.client_id = app.client_id
    config = entra.config()
    serve = {
        "sign_in": [SOURCE],
        "public_url": url,
        "sessions": str(tmp_path / "s.sqlite"),
        "entra_rotation": True,
    }
    with serving(config, serve, port, tmp_path / "serve.log"):
        yield url
    serve_log = (tmp_path / "serve.log").read_text(errors="replace")
    for secret in (SECRET, AGENT_PASSWORD, graph.recovery_keys[KEY.lower()].key, "code="):
        assert secret not in serve_log


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    # The emulator's CA is not the system's; the portal itself checks it (ca_file).
    with headless(tmp_path / "profile", "--ignore-certificate-errors") as chrome:
        yield chrome


def test_an_entra_agent_signs_in_reads_a_key_and_signs_out_and_one_without_a_role_sees_why(
    portal_url: str, browser: object, graph: GraphEmulator, helpdesk: User, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    shots = Path(os.environ.get("BITKEY_DIR_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    password = graph.recovery_keys[KEY.lower()].key

    def wait_for(selector: str) -> object:
        located = expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector))
        return WebDriverWait(browser, 20).until(located)

    def shot(name: str) -> None:
        browser.save_screenshot(str(shots / f"entra-{name}.png"))

    def sign_in(user: str) -> None:
        browser.get(portal_url + "/")
        wait_for("#sign-in-cloud").click()  # type: ignore[attr-defined]
        wait_for("#loginfmt")
        assert browser.current_url.startswith(graph.base_url)  # the other site
        browser.find_element(By.ID, "loginfmt").send_keys(user)
        browser.find_element(By.ID, "passwd").send_keys(AGENT_PASSWORD)
        shot(f"identity-page-{user.split('@', maxsplit=1)[0]}")
        browser.find_element(By.ID, "idSIButton9").click()
        wait_for("#agent")
        assert browser.current_url.startswith(portal_url)

    take_trail_entries()
    browser.get(portal_url + "/")
    wait_for("#sign-in-cloud")
    shot("1-sign-in")
    sign_in(UPN)
    assert browser.find_element(By.ID, "agent").text == UPN
    assert browser.current_url == portal_url + "/lookup"
    session = browser.get_cookie("bitkey_session")
    assert session
    assert session["sameSite"] == "Strict"
    assert session["httpOnly"]
    assert browser.get_cookie("bitkey_signin") is None  # the flow's cookie is gone
    shot("2-lookup")
    browser.find_element(By.ID, "key_id").send_keys(KEY[:8])
    browser.find_element(By.ID, "reason").send_keys("INC-4711 locked out after BIOS update")
    browser.find_element(By.ID, "look-up").click()
    wait_for("#answer")
    groups = [g.text for g in browser.find_elements(By.CSS_SELECTOR, ".groups .g")]
    assert groups == password.split("-")
    shot("3-reveal")
    (entry,) = take_trail_entries()
    assert entry["principal"] == UPN
    assert entry["source"] == SOURCE
    assert entry["reason"] == "INC-4711 locked out after BIOS update"
    assert f"(signed in with {SOURCE})" in " ".join(entry["command"])
    assert graph.key_reads[-1].user_principal_name == UPN  # Graph saw the agent's token
    browser.find_element(By.CSS_SELECTOR, ".rotate-button").click()
    wait_for("#rotation")
    assert "Intune was asked to rotate the keys" in browser.find_element(By.ID, "rotation").text
    shot("3b-rotate")
    (rotated,) = take_trail_entries()
    assert (rotated["action"], rotated["principal"]) == ("rotate", UPN)
    assert graph.rotations[-1].user_principal_name == UPN  # Intune saw the agent's token
    browser.find_element(By.ID, "sign-out").click()
    wait_for("#sign-in-cloud")
    shot("4-signed-out")
    browser.get(portal_url + "/lookup")
    wait_for("#sign-in-cloud")  # the session is gone

    sign_in("nobody@contoso.onmicrosoft.com")
    browser.find_element(By.ID, "key_id").send_keys(KEY[:8])
    browser.find_element(By.ID, "reason").send_keys("INC-4712")
    browser.find_element(By.ID, "look-up").click()
    wait_for("#answer")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "no right to read" in page
    assert "holds none of the built-in Entra roles that read" in page
    assert password.split("-")[0] not in browser.page_source
    shot("5-no-role")
    assert take_trail_entries() == []
