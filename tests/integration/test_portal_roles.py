"""The portal's roles from directory groups, against the session's Samba DC: the groups are
read as the agent at sign-in (tokenGroups, nested groups included); helpdesk agents look up
by Key ID only, advanced agents also by computer name and download key packages, auditors
see the trail and the reports and never a password."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the portal extra is not installed")

from bitkey_dir.portal.desks import new_desk
from tests.command_line import take_trail_entries, trail_entries
from tests.integration.fixtures import Directory, Lab
from tests.integration.portal_agents import NEWEST, Agent, clients, no_secret_but, serve_config
from tests.integration.seed import (
    ADVANCED,
    ADVANCED_GROUP,
    AUDITOR,
    AUDITORS_GROUP,
    DOMAIN,
    HELPDESK,
)

pytestmark = pytest.mark.integration

SECRET_USERS = (ADVANCED.password, AUDITOR.password)


@pytest.fixture
def agents(
    lab: Lab, tmp_path: Path, samba_dc: Directory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Agent]]:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    # One group by its bare name, the other as DOMAIN\name: both forms are accepted.
    config = serve_config(
        lab, tmp_path, advanced=[ADVANCED_GROUP], auditors=[f"{DOMAIN}\\{AUDITORS_GROUP}"]
    )
    yield from clients(config, 3)


def signed_in(agent: Agent, directory: Directory, user: str, password: str) -> Agent:
    agent.sign_in(directory.upn(user), password)
    return agent


def clean(text: str) -> None:
    no_secret_but(text)
    for secret in SECRET_USERS:
        assert secret not in text


def test_an_agents_groups_are_read_as_them_nested_ones_too(
    lab: Lab, samba_dc: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    config = lab.config(user=None)
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    desk = new_desk(data, config, "lab", samba_dc.upn(ADVANCED.name), ADVANCED.password)
    try:
        groups = desk.client.own_groups("lab")
    finally:
        desk.client.close()
    # In "BitLocker Advanced" only through "Helpdesk Tier 2": tokenGroups is transitive.
    assert f"{DOMAIN}\\{ADVANCED_GROUP}" in groups
    assert f"{DOMAIN}\\Helpdesk Tier 2" in groups
    assert f"{DOMAIN}\\Domain Users" in groups
    assert f"{DOMAIN}\\{AUDITORS_GROUP}" not in groups


def test_a_helpdesk_agent_may_not_search_by_computer_nor_see_reports(
    agents: list[Agent], samba_dc: Directory
) -> None:
    agent = signed_in(agents[0], samba_dc, HELPDESK.name, HELPDESK.password)
    assert "(helpdesk)" in agent.last
    assert 'name="computer"' not in agent.last
    take_trail_entries()
    response = agent.post("/lookup", computer="WS001", reason="INC-1")
    assert response.status_code == 403
    assert "advanced helpdesk agents only" in agent.last
    clean(agent.last)
    for path in ("/trail", "/reads", "/disclosed"):
        response = agent.get(path)
        assert response.status_code == 403
    response = agent.post("/key-package", key_id=NEWEST.key_id, source="lab", reason="INC-1")
    assert response.status_code == 403
    clean(agent.last)
    assert trail_entries() == []


def test_an_advanced_agent_searches_by_computer_and_downloads_the_key_package(
    agents: list[Agent], samba_dc: Directory
) -> None:
    agent = signed_in(agents[0], samba_dc, ADVANCED.name, ADVANCED.password)
    assert "(advanced)" in agent.last
    take_trail_entries()
    response = agent.post("/lookup", computer="WS001", reason="INC-2 whole machine")
    assert response.status_code == 200
    for key in samba_dc.keys("WS001"):
        assert key.password.split("-")[0] in agent.last
    assert len(take_trail_entries()) == len(samba_dc.keys("WS001"))
    response = agent.http.post(
        "/key-package",
        data={"csrf": agent.csrf, "key_id": NEWEST.key_id, "source": "lab", "reason": "INC-2"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    assert response.content == NEWEST.key_package
    (entry,) = take_trail_entries()
    assert entry["reason"] == "INC-2"
    assert entry["principal"] == samba_dc.upn(ADVANCED.name)


def test_an_auditor_sees_the_trail_and_reports_but_never_a_key(
    agents: list[Agent], samba_dc: Directory
) -> None:
    helpdesk = signed_in(agents[0], samba_dc, HELPDESK.name, HELPDESK.password)
    take_trail_entries()
    helpdesk.look_up(NEWEST.key_id[:8], "INC-3 read by the helpdesk")
    auditor = signed_in(agents[1], samba_dc, AUDITOR.name, AUDITOR.password)
    assert "Access trail" in auditor.last  # an auditor starts on the trail
    assert "(auditor)" in auditor.last
    assert "INC-3 read by the helpdesk" in auditor.last
    assert NEWEST.key_id.upper() in auditor.last
    clean(auditor.last)
    for path in ("/reads", "/disclosed"):
        response = auditor.get(path)
        assert response.status_code == 200
        clean(auditor.last)
    assert NEWEST.key_id.upper() in auditor.last  # disclosed, and not rotated since
    before = len(trail_entries())
    response = auditor.get("/lookup")
    assert response.status_code == 403
    assert "never a recovery key" in auditor.last
    for form in ({"key_id": NEWEST.key_id[:8]}, {"computer": "WS001"}):
        response = auditor.post("/lookup", reason="curious", **form)
        assert response.status_code == 403
        clean(auditor.last)
    response = auditor.post("/rotate", key_id=NEWEST.key_id, source="lab", reason="x")
    assert response.status_code == 403
    response = auditor.post("/key-package", key_id=NEWEST.key_id, source="lab", reason="x")
    assert response.status_code == 403
    clean(auditor.last)
    assert len(trail_entries()) == before
