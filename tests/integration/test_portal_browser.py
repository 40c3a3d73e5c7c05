"""The portal as an agent uses it: headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium) against `bitkey-dir serve` running as a real process (uvicorn), signing
in to the Samba DC, looking a key up with a reason, reading it, rotating it after the call
and signing out. Screenshots of each step go to the test's folder (BITKEY_DIR_SCREENSHOTS
names another)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.command_line import take_trail_entries
from tests.integration.browsers import headless, serving
from tests.integration.fixtures import Directory, Lab, free_port
from tests.integration.seed import HELPDESK, computer_spec

pytestmark = pytest.mark.integration

NEWEST = sorted(computer_spec("WS001").keys, key=lambda key: key.created)[-1]


@pytest.fixture
def portal_url(lab: Lab, tmp_path: Path) -> Iterator[str]:
    serve = {"sign_in": ["lab"], "sessions": str(tmp_path / "sessions.sqlite")}
    port = free_port()
    with serving(lab.config(user=None), serve, port, tmp_path / "serve.log"):
        yield f"http://localhost:{port}"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with headless(tmp_path / "profile") as chrome:
        yield chrome


def signed_in_cookie_is_strict(cookie: dict[str, object] | None) -> bool:
    return bool(
        cookie and cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    )


def test_an_agent_signs_in_reads_a_key_rotates_it_and_signs_out(
    portal_url: str, browser: object, samba_dc: Directory, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    shots = Path(os.environ.get("BITKEY_DIR_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    def wait_for(selector: str) -> object:
        """The element, once the page that has it loaded: a click does not wait for that."""
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        located = expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector))
        return WebDriverWait(browser, 20).until(located)

    def shot(name: str) -> None:
        browser.save_screenshot(str(shots / f"{name}.png"))

    take_trail_entries()
    browser.get(portal_url + "/")
    assert browser.find_element(By.ID, "sign-in")
    shot("1-sign-in")
    browser.find_element(By.ID, "username").send_keys(samba_dc.upn(HELPDESK.name))
    browser.find_element(By.ID, "password").send_keys(HELPDESK.password)
    browser.find_element(By.ID, "sign-in").click()
    wait_for("#agent")
    assert browser.find_element(By.ID, "agent").text == samba_dc.upn(HELPDESK.name)
    shot("2-lookup")
    browser.find_element(By.ID, "key_id").send_keys(NEWEST.key_id[:8])
    browser.find_element(By.ID, "reason").send_keys("INC-4711 locked out after BIOS update")
    browser.find_element(By.ID, "look-up").click()
    wait_for("#answer")
    groups = [g.text for g in browser.find_elements(By.CSS_SELECTOR, ".groups .g")]
    assert groups == NEWEST.password.split("-")
    assert "WS001" in browser.find_element(By.CSS_SELECTOR, ".computer").text
    shot("3-reveal")
    (entry,) = take_trail_entries()
    assert entry["principal"] == samba_dc.upn(HELPDESK.name)
    assert entry["reason"] == "INC-4711 locked out after BIOS update"
    assert "127.0.0.1" in " ".join(entry["command"])
    browser.find_element(By.CSS_SELECTOR, ".rotate-button").click()
    wait_for("#rotation")
    assert "manage-bde" in browser.find_element(By.ID, "rotation").text
    assert signed_in_cookie_is_strict(browser.get_cookie("bitkey_session"))
    shot("4-rotate")
    (rotated,) = take_trail_entries()
    assert rotated["action"] == "rotate"
    signed_in = browser.get_cookie("bitkey_session")
    browser.find_element(By.ID, "sign-out").click()
    wait_for("#sign-in")
    shot("5-signed-out")
    browser.get(portal_url + "/lookup")
    wait_for("#sign-in")  # the session is gone
    # Only the sign-in form's own session is left: the agent's is gone for good.
    assert [c["value"] for c in browser.get_cookies()] != [signed_in["value"]]


def test_twenty_agents_at_once_each_get_their_own_answer(
    portal_url: str, samba_dc: Directory
) -> None:
    """Load: 20 signed-in sessions look keys up at the same moment; every one is answered,
    with its own key, and no page shows another session's key or agent."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    readable = [
        key
        for name in ("WS001", "WS002", "PC(01)", "LT001", "LT002")
        for key in computer_spec(name).keys
    ]
    wanted = [readable[i % len(readable)] for i in range(20)]
    base = portal_url.replace("localhost", "127.0.0.1")

    def csrf(text: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        assert found, text[:500]
        return found[1]

    def session_of(response: httpx.Response) -> str:
        found = re.search(r"bitkey_session=([^;]+)", response.headers["set-cookie"])
        assert found
        return found[1]

    def agent(number: int) -> tuple[int, str]:
        # httpx keeps Secure cookies off plain HTTP, even to loopback: the cookie is sent by hand.
        with httpx.Client(base_url=base, timeout=60) as http:
            form = http.get("/sign-in")
            signed_in = http.post(
                "/sign-in",
                headers={"cookie": f"bitkey_session={session_of(form)}"},
                data={
                    "csrf": csrf(form.text),
                    "username": samba_dc.upn(HELPDESK.name),
                    "password": HELPDESK.password,
                },
            )
            assert signed_in.status_code == 303
            cookie = {"cookie": f"bitkey_session={session_of(signed_in)}"}
            page = http.get("/lookup", headers=cookie).text
            data = {"csrf": csrf(page), "key_id": wanted[number].key_id, "reason": f"LOAD-{number}"}
            answer = http.post("/lookup", headers=cookie, data=data)
            assert answer.status_code == 200
            return number, answer.text

    take_trail_entries()
    with ThreadPoolExecutor(max_workers=20) as pool:
        pages = dict(pool.map(agent, range(20)))
    for number, text in pages.items():
        key = wanted[number]
        assert key.password.split("-")[0] in text, number
        others = {other.password for other in readable if other.key_id != key.key_id}
        assert not [p for p in others if p.split("-")[3] in text and p.split("-")[4] in text]
    reasons = sorted(entry["reason"] for entry in take_trail_entries())
    assert reasons == sorted(f"LOAD-{n}" for n in range(20))
