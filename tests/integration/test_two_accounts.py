"""Two AD sources that bind as different accounts: a password from the environment reaches
only the account it was meant for. The DC itself counts failed binds (badPwdCount and
badPasswordTime of the other account, read as Administrator): one account's password sent to
the other's bind would count towards its lockout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.command_line import Outcome, invoke_with, toml_value
from tests.integration.fixtures import SECRETS, Directory
from tests.integration.seed import HELPDESK, PLAIN

pytestmark = pytest.mark.integration

LOCKOUT_THRESHOLD = 50  # Samba counts failed binds only under a threshold; nothing gets locked
CHECKS = {"secrets": SECRETS, "never_shown": [HELPDESK.password, PLAIN.password]}


class FailedBinds:
    """The plain user's failed binds, as the DC records them."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.dn = directory.seeded.users[PLAIN.name].dn

    def read(self) -> tuple[int, object]:
        import ldap3

        connection = self.directory.dc.connect()
        try:
            connection.search(
                self.dn,
                "(objectClass=*)",
                ldap3.BASE,
                attributes=["badPwdCount", "badPasswordTime"],
            )
            found = connection.response[0]["attributes"]
            return int(str(found.get("badPwdCount") or 0)), found.get("badPasswordTime")
        finally:
            connection.unbind()


@pytest.fixture
def failed_binds(samba_dc: Directory) -> Iterator[FailedBinds]:
    import ldap3

    def threshold(value: str | None = None) -> str:
        connection = samba_dc.dc.connect()
        try:
            if value is not None:
                connection.modify(
                    samba_dc.base_dn, {"lockoutThreshold": [(ldap3.MODIFY_REPLACE, [value])]}
                )
            connection.search(
                samba_dc.base_dn, "(objectClass=*)", ldap3.BASE, attributes=["lockoutThreshold"]
            )
            return str(connection.response[0]["attributes"]["lockoutThreshold"])
        finally:
            connection.unbind()

    before = threshold()
    threshold(str(LOCKOUT_THRESHOLD))
    try:
        yield FailedBinds(samba_dc)
    finally:
        threshold(before)


@pytest.fixture
def two(samba_dc: Directory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`ad1` binds as the helpdesk, `ad2` as the plain user; both are the defaults."""
    for name in ("BITKEY_DIR_PASSWORD", "BITKEY_DIR_PASSWORD_AD1", "BITKEY_DIR_PASSWORD_AD2"):
        monkeypatch.delenv(name, raising=False)
    lines = ["[defaults]", 'sources = ["ad1", "ad2"]']
    for name, user in (("ad1", HELPDESK.name), ("ad2", PLAIN.name)):
        lines += [
            f"[sources.{name}]",
            'type = "ad"',
            f"servers = {toml_value([samba_dc.url])}",
            f"ca_file = {toml_value(str(samba_dc.ca_file))}",
            f"user = {toml_value(samba_dc.upn(user))}",
            "timeout = 5",
        ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Outcome:
    return invoke_with(config, *args, **CHECKS)  # type: ignore[arg-type]


def assert_refused(outcome: Outcome) -> None:
    assert outcome.code == 2, (outcome.code, outcome.out, outcome.err)
    assert "BITKEY_DIR_PASSWORD is set, but 2 sources of this command sign in as" in outcome.err
    assert "BITKEY_DIR_PASSWORD_AD1, BITKEY_DIR_PASSWORD_AD2" in outcome.err


def test_the_bare_variable_is_refused_before_either_account_binds(
    two: Path,
    samba_dc: Directory,
    failed_binds: FailedBinds,
    monkeypatch: pytest.MonkeyPatch,
    trail_file: Path,
) -> None:
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", HELPDESK.password)
    before = failed_binds.read()
    key = samba_dc.keys("WS001")[0]
    reveal = {"time": "2025-01-01T00:00:00+00:00", "key_id": key.key_id, "computer": "WS001"}
    trail_file.write_text(
        "".join(json.dumps({**reveal, "source": name}) + "\n" for name in ("ad1", "ad2"))
    )
    assert_refused(run(two, "doctor"))
    assert_refused(run(two, "audit", "--disclosed"))
    assert_refused(run(two, "find", "-k", key.key_id, "-f", "json"))
    assert_refused(run(two, "find", "-k", key.key_id, "-s", "ad1", "-s", "ad2"))
    assert failed_binds.read() == before
    # One source asked: the bare variable can only be meant for it.
    alone = run(two, "find", "-k", key.key_id, "-s", "ad1", "-f", "key")
    assert alone.code == 0, alone.err
    assert failed_binds.read() == before


def test_each_account_reads_its_own_variable(
    two: Path, samba_dc: Directory, failed_binds: FailedBinds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BITKEY_DIR_PASSWORD_AD1", HELPDESK.password)
    monkeypatch.setenv("BITKEY_DIR_PASSWORD_AD2", PLAIN.password)
    before = failed_binds.read()
    key = samba_dc.keys("WS001")[0]
    found = run(two, "find", "-k", key.key_id, "-f", "json")
    assert found.code == 0, found.err
    # The helpdesk reads the password; the plain user sees the object without it.
    by_source = {k["source"]: k["recovery_password"] for k in found.keys}
    assert by_source == {"ad1": key.password, "ad2": None}
    doctor = run(two, "doctor", "-f", "json")
    assert [s["status"] for s in doctor.document["sources"]] == ["ok", "ok"]
    assert failed_binds.read() == before
