"""The AD source end to end: `bitkey-dir find` against a real (Samba) domain controller.

Every test runs the CLI in-process against the session's DC (see conftest.py) with a config
written to tmp_path. Every run is also checked for what must never happen: a traceback, an
internal error, a recovery password on stderr (or on stdout when nothing was revealed), the
bind password anywhere, a password in the access trail.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bitkey_dir.core.records import KEY_FIELDS
from tests.command_line import invoke, invoke_with, run_process, trail_entries
from tests.conftest import ROOT
from tests.integration.fixtures import (
    ADMIN,
    PASSWORDS,
    WRONG_PASSWORD,
    Directory,
    Lab,
    ad_checks,
    free_port,
    records,
)
from tests.integration.seed import (
    COLLIDING_LT001,
    COLLIDING_PREFIX,
    COLLIDING_WS002,
    HELPDESK,
    LAPTOPS,
    ODD_NAME_GUID,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (in the kernel) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


# ---------------------------------------------------------------------------------- Key ID
def test_full_key_id_as_helpdesk(lab: Lab, samba_dc: Directory, trail_file: Path) -> None:
    key = samba_dc.keys("WS001")[0]
    found = lab.find("--key-id", key.key_id)
    assert found.code == 0, found.err
    # The trail says which directory account revealed the key.
    (entry,) = trail_entries()
    assert (entry["key_id"], entry["principal"]) == (key.key_id, samba_dc.upn(HELPDESK.name))
    assert found.keys == [samba_dc.record("WS001", key)]
    assert tuple(found.keys[0]) == KEY_FIELDS
    assert found.document["sources"] == [{"name": "lab", "status": "ok", "error": None}]
    # Braces, lower case: the same key.
    again = lab.find("--key-id", "{" + key.key_id.lower() + "}")
    assert again.keys == found.keys


def test_a_full_key_id_is_one_bind_and_one_search(
    lab: Lab, samba_dc: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bitkey_dir.sources.ad")
    key = samba_dc.keys("WS001")[0]
    found = lab.find("--key-id", key.key_id, base_dn=samba_dc.base_dn)
    assert found.code == 0, found.err
    assert "1 bind, 1 search" in caplog.text


def test_full_key_id_as_admin_outside_the_helpdesk_ou(lab: Lab, samba_dc: Directory) -> None:
    key = samba_dc.keys("SRV001")[1]
    found = lab.find("--key-id", key.key_id, user=ADMIN)
    assert found.code == 0, found.err
    assert found.keys == [samba_dc.record("SRV001", key)]


def test_eight_digit_prefix(lab: Lab, samba_dc: Directory) -> None:
    (key,) = samba_dc.keys("PC(01)")
    found = lab.find("--key-id", key.key_id[:8].lower())
    assert found.code == 0, found.err
    assert found.keys == [samba_dc.record("PC(01)", key)]
    assert "confirm more digits" not in found.err


def test_colliding_prefix_shows_both_keys_and_says_so(lab: Lab, samba_dc: Directory) -> None:
    found = lab.find("--key-id", COLLIDING_PREFIX)
    assert found.code == 0, found.err
    assert found.key_ids == [COLLIDING_WS002, COLLIDING_LT001]  # newest first
    assert [k["computer"] for k in found.keys] == ["WS002", "LT001"]
    assert "matches 2 different keys" in found.err
    assert "confirm more digits" in found.err


@pytest.mark.parametrize("prefix", [COLLIDING_LT001[:13], COLLIDING_LT001[:13].replace("-", "")])
def test_longer_prefix_narrows_to_one_key(lab: Lab, prefix: str) -> None:
    found = lab.find("--key-id", prefix)
    assert found.code == 0, found.err
    assert found.key_ids == [COLLIDING_LT001]
    assert "confirm more digits" not in found.err


def test_unknown_key_id_is_exit_1_with_a_rights_hint(lab: Lab) -> None:
    for key_id in ("00000000", "00000000-0000-4000-8000-000000000000"):
        found = lab.find("--key-id", key_id)
        assert found.code == 1, found.err
        assert found.keys == []
        assert found.status == "ok"
        assert "right" in found.err.lower()


def test_a_prefix_is_confirmed_from_the_guid_attribute(lab: Lab, samba_dc: Directory) -> None:
    # ODD01's object is named with one GUID but holds another in msFVE-RecoveryGuid.
    (key,) = samba_dc.keys("ODD01")
    assert str(ODD_NAME_GUID).upper()[:8] != key.key_id[:8]
    by_name = lab.find("--key-id", str(ODD_NAME_GUID)[:8])
    assert by_name.code == 1, by_name.err
    by_attribute = lab.find("--key-id", key.key_id)
    assert by_attribute.code == 0, by_attribute.err
    assert by_attribute.keys == [samba_dc.record("ODD01", key)]


@pytest.mark.parametrize("typed", ["*)(cn=*", "063EA4E1*", "A1B2C3D4)(", "0" * 33])
def test_hostile_key_ids_are_bad_input(lab: Lab, typed: str) -> None:
    found = lab.find("--key-id", typed, user=ADMIN)
    assert found.code == 2
    assert found.out == ""


# ---------------------------------------------------------------------------------- computers
@pytest.mark.parametrize(
    "name",
    [
        "WS001",  # cn
        "ws001",
        "WS001$",  # sAMAccountName
        "ws001$",
        "ws001.bitkey.test",  # dNSHostName
        "WS001.BITKEY.TEST",
    ],
)
def test_computer_by_every_name(lab: Lab, samba_dc: Directory, name: str) -> None:
    found = lab.find("--computer", name)
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "WS001")


def test_newest_first_by_instant_with_each_utc_offset(lab: Lab, samba_dc: Directory) -> None:
    found = lab.find("--computer", "WS001")
    # Local times 01:00-08:00, 05:00+00:00, 09:00+05:30 are 09:00Z, 05:00Z, 03:30Z.
    assert [k["created"] for k in found.keys] == [
        "2024-06-01T01:00:00-08:00",
        "2024-06-01T05:00:00+00:00",
        "2024-06-01T09:00:00+05:30",
    ]
    assert {k["location"] for k in found.keys} == {samba_dc.location("WS001")}
    guid = re.compile(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}")
    assert all(guid.fullmatch(k["volume_id"]) for k in found.keys)


@pytest.mark.parametrize(
    ("pattern", "computers"),
    [
        ("WS00*", ("WS001", "WS002")),
        ("ws00*$", ("WS001", "WS002")),
        ("LT00*", ("LT001", "LT002")),  # LT002 is LT002-NEW now; LT003 is deleted
        ("*T00*", ("LT001", "LT002")),
        ("ws001*", ("WS001",)),
        ("ws001.*", ("WS001",)),
    ],
)
def test_computer_wildcards(
    lab: Lab, samba_dc: Directory, pattern: str, computers: tuple[str, ...]
) -> None:
    found = lab.find("--computer", pattern)
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, *computers)


@pytest.mark.parametrize("name", ["PC(01)", "pc(01)$", "PC(0*", "*(01)", "pc01.bitkey.test"])
def test_computer_with_parentheses(lab: Lab, samba_dc: Directory, name: str) -> None:
    found = lab.find("--computer", name)
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "PC(01)")


@pytest.mark.parametrize(
    "name",
    [
        "*)(objectClass=*",
        "WS001)(cn=*",
        "*)(|(cn=*",
        "WS001*)(|(objectClass=*",
        r"PC\2801\29",  # escaped in the filter: a literal backslash, not "("
        r"PC\28*",
        'PC"01',
        "PC'01",
        "\\",
        "WS001\\",
        "ПК-01",
        "A" * 255,
        "cn=WS001",
        "WS00[1]",  # no character classes: the brackets are literal
        "NOSUCHPC",
    ],
)
def test_names_that_match_nothing(lab: Lab, name: str) -> None:
    # As Administrator, who sees everything: an injected filter would find keys.
    found = lab.find("--computer", name, user=ADMIN)
    assert found.code == 1, (found.err, found.key_ids)
    assert found.keys == []
    assert found.status == "ok"


@pytest.mark.parametrize("name", ["PC\x0001", "WS001\x00", "P" * 300, "", "*", "**", "PC\n01"])
def test_names_that_are_bad_input(lab: Lab, name: str) -> None:
    found = lab.find("--computer", name, user=ADMIN)
    assert found.code == 2
    assert found.out == ""
    assert len([line for line in found.err.splitlines() if "error:" in line]) == 1


def test_computer_without_keys_is_exit_1_with_a_rights_hint(lab: Lab) -> None:
    found = lab.find("--computer", "NOKEY01")
    assert found.code == 1, found.err
    assert found.status == "ok"
    assert "right" in found.err.lower() or "may not" in found.err.lower()


def test_unknown_computer_is_exit_1_with_a_rights_hint(lab: Lab) -> None:
    found = lab.find("--computer", "NOSUCHPC")
    assert found.code == 1, found.err
    assert "right" in found.err.lower() or "may not" in found.err.lower()


def test_renamed_computer_keeps_its_keys(lab: Lab, samba_dc: Directory) -> None:
    for name in ("LT002-NEW", "lt002-new$", "lt002-new.bitkey.test"):
        found = lab.find("--computer", name)
        assert found.code == 0, found.err
        assert found.keys == records(samba_dc, "LT002")
        assert found.keys[0]["computer"] == "LT002-NEW"
        assert found.keys[0]["location"] == samba_dc.dc.dn(LAPTOPS)
    old = lab.find("--computer", "LT002")
    assert old.code == 1


def test_nested_ou_is_inside_the_delegation(lab: Lab, samba_dc: Directory) -> None:
    found = lab.find("--computer", "LT001")
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "LT001")
    assert [k["created"] for k in found.keys] == [
        "2024-02-10T08:00:00-05:00",
        "2023-12-31T23:59:00+00:00",
    ]


def test_base_dn_limits_the_search(lab: Lab, samba_dc: Directory) -> None:
    base = samba_dc.dc.dn("OU=Lab")
    assert lab.find("--computer", "LAB001", user=ADMIN, base_dn=base).code == 0
    outside = lab.find("--computer", "WS001", user=ADMIN, base_dn=base)
    assert outside.code == 1, outside.err


def test_page_size_one_still_returns_everything(lab: Lab, samba_dc: Directory) -> None:
    found = lab.find("--computer", "*0*", user=ADMIN, page_size=1)
    assert found.code == 0, found.err
    expected = [
        original
        for original, c in samba_dc.seeded.computers.items()
        if not c.deleted and "0" in c.name and c.keys
    ]
    assert found.keys == records(samba_dc, *expected)


# ---------------------------------------------------------------------------------- deleted
def test_deleted_computer_only_with_include_deleted(lab: Lab, samba_dc: Directory) -> None:
    (key,) = samba_dc.keys("LT003")
    expected = [samba_dc.record("LT003", key)]
    assert expected[0]["deleted"] is True
    assert lab.find("--computer", "LT003", user=ADMIN).code == 1
    assert lab.find("--key-id", key.key_id, user=ADMIN).code == 1
    assert lab.find("--key-id", key.key_id[:8], user=ADMIN).code == 1
    by_name = lab.find("--computer", "LT003", "--include-deleted", user=ADMIN)
    assert by_name.code == 0, by_name.err
    assert by_name.keys == expected
    by_id = lab.find("--key-id", key.key_id, "--include-deleted", user=ADMIN)
    assert by_id.code == 0, by_id.err
    assert without_location(by_id.keys) == without_location(expected)
    by_prefix = lab.find("--key-id", key.key_id[:8], "--include-deleted", user=ADMIN)
    assert without_location(by_prefix.keys) == without_location(expected)


def without_location(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in key.items() if k != "location"} for key in keys]


def test_a_deleted_key_reads_the_same_by_key_id_and_by_computer(
    lab: Lab, samba_dc: Directory
) -> None:
    (key,) = samba_dc.keys("LT003")
    by_name = lab.find("--computer", "LT003", "--include-deleted", user=ADMIN)
    by_id = lab.find("--key-id", key.key_id, "--include-deleted", user=ADMIN)
    assert by_name.keys == [samba_dc.record("LT003", key)]  # location: the OU it was deleted from
    assert by_id.keys == by_name.keys


@pytest.mark.parametrize("name", ["lt003$", "lt003.bitkey.test", "*T003"])
def test_deleted_computer_by_other_names(lab: Lab, samba_dc: Directory, name: str) -> None:
    found = lab.find("--computer", name, "--include-deleted", user=ADMIN)
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "LT003")


def test_include_deleted_leaves_live_keys_live(lab: Lab, samba_dc: Directory) -> None:
    found = lab.find("--computer", "LT00*", "--include-deleted", user=ADMIN)
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "LT001", "LT002", "LT003")
    assert [k["deleted"] for k in found.keys].count(True) == 1


def test_deleted_objects_invisible_to_the_helpdesk_is_not_a_failure(lab: Lab) -> None:
    found = lab.find("--computer", "LT003", "--include-deleted")
    assert found.code == 1, found.err
    assert found.status == "ok"


# ---------------------------------------------------------------------------------- rights
@pytest.mark.parametrize("computer", ["SRV001", "LAB001"])
def test_helpdesk_outside_its_ou_cannot_read(lab: Lab, samba_dc: Directory, computer: str) -> None:
    found = lab.find("--computer", computer)
    assert found.code == 3, found.err
    assert "cannot read" in found.err
    assert "msFVE-RecoveryPassword" in found.err
    assert all(k["recovery_password"] is None for k in found.keys)
    by_id = lab.find("--key-id", samba_dc.keys(computer)[0].key_id)
    assert by_id.code == 3, by_id.err
    assert "cannot read" in by_id.err


def test_message_counts_the_objects_it_cannot_read(lab: Lab) -> None:
    found = lab.find("--computer", "SRV001")
    assert "found 2 recovery objects for SRV001" in found.err
    assert "cannot read their passwords" in found.err


def test_plain_user_sees_objects_but_no_passwords(lab: Lab) -> None:
    found = lab.find("--computer", "WS001", user="plain")
    assert found.code == 3, found.err
    assert "found 3 recovery objects for WS001" in found.err
    assert "cannot read their passwords" in found.err
    assert lab.find("--key-id", COLLIDING_PREFIX, user="plain").code == 3


def test_wrong_password_is_exit_3_and_never_echoed(lab: Lab) -> None:
    lab.config()
    lab.monkeypatch.setenv("BITKEY_DIR_PASSWORD", WRONG_PASSWORD)
    found = invoke_with(lab.tmp_path / "config.toml", "find", "-k", COLLIDING_PREFIX, **ad_checks())
    assert found.code == 3, found.err
    assert found.status == "denied"
    assert WRONG_PASSWORD not in found.out + found.err
    assert HELPDESK.password not in found.out + found.err


def test_no_password_and_no_terminal_is_exit_3(lab: Lab) -> None:
    config = lab.config(set_password=False)
    # In-process: stdin is not a terminal under CliRunner...
    inprocess = invoke_with(config, "find", "-k", COLLIDING_PREFIX, **ad_checks())
    assert inprocess.code == 3, inprocess.err
    assert "BITKEY_DIR_PASSWORD" in inprocess.err
    # ...and in a real process without a controlling terminal, which must not hang on a prompt.
    env = {k: v for k, v in os.environ.items() if k != "BITKEY_DIR_PASSWORD"}
    env["PYTHONPATH"] = str(ROOT)
    proc = run_process("--config", config, "find", "-k", "A1B2C3D4", env=env, **ad_checks())
    assert proc.code == 3, proc.err
    assert "BITKEY_DIR_PASSWORD" in proc.err


def test_domain_backslash_user(lab: Lab, samba_dc: Directory) -> None:
    lab.monkeypatch.setenv("BITKEY_DIR_PASSWORD", HELPDESK.password)
    found = lab.find("-k", COLLIDING_PREFIX, user=f"BITKEY\\{HELPDESK.name}")
    assert found.code == 0, found.err
    assert found.key_ids == [COLLIDING_WS002, COLLIDING_LT001]


# ---------------------------------------------------------------------------------- transport
def test_starttls(lab: Lab, samba_dc: Directory) -> None:
    found = lab.find("--computer", "WS002", servers=[samba_dc.ldap_url])
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "WS002")


def test_failover_from_a_refused_port(lab: Lab, samba_dc: Directory) -> None:
    dead = f"ldaps://127.0.0.1:{free_port()}"
    started = time.monotonic()
    found = lab.find("--computer", "WS002", servers=[dead, samba_dc.url], timeout=2)
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "WS002")
    assert time.monotonic() - started < 3


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scheme", ["ldaps", "ldap"])
def test_failover_from_a_server_that_never_answers(
    lab: Lab, samba_dc: Directory, silent_server: int, scheme: str
) -> None:
    silent = f"{scheme}://127.0.0.1:{silent_server}"
    good = samba_dc.url if scheme == "ldaps" else samba_dc.ldap_url
    started = time.monotonic()
    found = lab.find("--computer", "WS002", servers=[silent, good], timeout=2)
    elapsed = time.monotonic() - started
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "WS002")
    assert elapsed < 2 + 2.5, f"failover took {elapsed:.1f} s with timeout = 2"


@pytest.mark.timeout(60)
def test_all_servers_dead_is_exit_4(lab: Lab, silent_server: int) -> None:
    servers = [f"ldaps://127.0.0.1:{free_port()}", f"ldaps://127.0.0.1:{silent_server}"]
    started = time.monotonic()
    found = lab.find("--key-id", COLLIDING_PREFIX, servers=servers, timeout=2)
    assert found.code == 4, found.err
    assert found.status == "failed"
    assert time.monotonic() - started < 2 + 2.5


@pytest.mark.parametrize("scheme", ["ldaps", "ldap"])
def test_wrong_ca_is_exit_4_and_names_the_certificate(
    lab: Lab, samba_dc: Directory, tmp_path: Path, scheme: str
) -> None:
    from examples.lab.samba_dc import make_test_pki

    other = make_test_pki(tmp_path / "other-ca", ip=samba_dc.dc.host, dns_names=["dc1.bitkey.test"])
    server = samba_dc.url if scheme == "ldaps" else samba_dc.ldap_url
    found = lab.find("-k", COLLIDING_PREFIX, servers=[server], ca_file=str(other.ca_file))
    assert found.code == 4, found.err
    assert "certificate" in found.err.lower()


def test_system_trust_store_does_not_trust_the_test_ca(lab: Lab) -> None:
    found = lab.find("-k", COLLIDING_PREFIX, ca_file=None)
    assert found.code == 4, found.err
    assert "certificate" in found.err.lower()


def test_host_name_must_match_the_certificate(lab: Lab, samba_dc: Directory) -> None:
    # "127.40" is the same address as 127.0.0.40 to the resolver (inet_aton), but for TLS it is
    # a host name, and the certificate names only 127.0.0.x, dc1.bitkey.test and dc1.
    first, _, _, last = samba_dc.dc.host.split(".")
    alias = f"ldaps://{first}.{last}"
    with socket.create_connection((f"{first}.{last}", 636), timeout=5):
        pass  # reachable: the failure below is the name check, not the network
    found = lab.find("-k", COLLIDING_PREFIX, servers=[alias])
    assert found.code == 4, found.err
    assert "certificate" in found.err.lower()


def test_plaintext_allowed_warns_and_the_server_refuses(lab: Lab, samba_dc: Directory) -> None:
    found = lab.find("-k", COLLIDING_PREFIX, servers=[samba_dc.ldap_url], allow_plaintext=True)
    assert found.code == 3, found.err
    assert "warning:" in found.err
    assert "plaintext" in found.err.lower() or "unencrypted" in found.err.lower()


def test_plaintext_allowed_does_not_touch_ldaps(lab: Lab) -> None:
    found = lab.find("-k", COLLIDING_PREFIX, allow_plaintext=True)
    assert found.code == 0, found.err


# ---------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"servers": ["http://127.0.0.1"]}, "servers"),
        ({"servers": []}, "servers"),
        ({"servers": ["ldaps://127.0.0.1:port"]}, "servers"),
        ({"servers": ["ldaps://"]}, "servers"),
        ({"sever": ["ldaps://127.0.0.1"]}, "sever"),
        ({"auth": "ntlm"}, "auth"),
        ({"timeout": "fast"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"page_size": -1}, "page_size"),
        ({"allow_plaintext": "yes"}, "allow_plaintext"),
    ],
)
def test_config_errors_are_exit_2(lab: Lab, settings: dict[str, object], names: str) -> None:
    found = lab.find("-k", COLLIDING_PREFIX, **settings)
    assert found.code == 2, found.err
    assert found.out == ""
    (line,) = [line for line in found.err.splitlines() if "error:" in line]
    assert "sources.lab" in line
    assert names in line


def test_simple_bind_without_a_user_is_a_config_error(lab: Lab) -> None:
    found = lab.find("-k", COLLIDING_PREFIX, user=None)
    assert found.code == 2, found.err


def test_ad_hoc_url_source(lab: Lab, samba_dc: Directory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITKEY_DIR_USER", samba_dc.upn(HELPDESK.name))
    monkeypatch.setenv("BITKEY_DIR_CA_FILE", str(samba_dc.ca_file))
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", HELPDESK.password)
    (key,) = samba_dc.keys("WS002")
    found = invoke(
        "find", "--key-id", key.key_id, "--source", samba_dc.url, "--format", "json", **ad_checks()
    )
    assert found.code == 0, found.err
    assert found.keys == [samba_dc.record("WS002", key, source=samba_dc.url)]
    starttls = invoke(
        "find", "-k", key.key_id, "-s", samba_dc.ldap_url, "-f", "json", **ad_checks()
    )
    assert starttls.code == 0, starttls.err
    monkeypatch.delenv("BITKEY_DIR_USER")
    no_user = invoke("find", "-k", key.key_id, "-s", samba_dc.url, "-f", "json", **ad_checks())
    assert no_user.code == 2
    assert "BITKEY_DIR_USER" in no_user.err


# ---------------------------------------------------------------------------------- Kerberos
def test_kerberos_with_a_ticket_and_no_password(
    lab: Lab,
    samba_dc: Directory,
    helpdesk_ccache: Path,
    monkeypatch: pytest.MonkeyPatch,
    trail_file: Path,
) -> None:
    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.dc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{helpdesk_ccache}")
    (key,) = samba_dc.keys("PC(01)")
    for servers in ([samba_dc.url], [samba_dc.ldap_url]):
        found = lab.find(
            "--key-id",
            key.key_id[:8],
            user=None,
            auth="kerberos",
            kerberos_host=samba_dc.kerberos_host,
            servers=servers,
        )
        assert "BITKEY_DIR_PASSWORD" not in os.environ
        assert found.code == 0, found.err
        assert found.keys == [samba_dc.record("PC(01)", key)]
    # The trail names the ticket's principal.
    entries = trail_entries()
    assert {entry["principal"] for entry in entries} == {f"{HELPDESK.name}@{samba_dc.dc.realm}"}
    # Kerberos also means the helpdesk's rights: outside its OU, no password.
    outside = lab.find(
        "--computer",
        "SRV001",
        user=None,
        auth="kerberos",
        kerberos_host=samba_dc.kerberos_host,
    )
    assert outside.code == 3, outside.err


def test_kerberos_needs_the_dc_host_name_when_servers_are_addresses(
    lab: Lab, samba_dc: Directory, helpdesk_ccache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.dc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{helpdesk_ccache}")
    found = lab.find("-k", COLLIDING_PREFIX, user=None, auth="kerberos")  # no kerberos_host
    assert found.code == 3, found.err
    assert "kerberos_host" in found.err


def test_kerberos_without_a_ticket_is_exit_3(
    lab: Lab, samba_dc: Directory, helpdesk_ccache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.dc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{lab.tmp_path / 'empty.ccache'}")
    found = lab.find(
        "-k", COLLIDING_PREFIX, user=None, auth="kerberos", kerberos_host=samba_dc.kerberos_host
    )
    assert found.code == 3, found.err
    assert found.status == "denied"


# ---------------------------------------------------------------------------------- trail
def test_the_trail_records_key_ids_never_passwords(lab: Lab, samba_dc: Directory) -> None:
    trail = Path(os.environ["BITKEY_DIR_TRAIL"])
    found = lab.find("--computer", "WS001", "--reason", "INC-42")
    assert found.code == 0, found.err
    entries = trail_entries()
    assert [e["key_id"] for e in entries] == [k.key_id for k in samba_dc.keys("WS001")]
    assert {e["reason"] for e in entries} == {"INC-42"}
    assert {e["source"] for e in entries} == {"lab"}
    text = trail.read_text()
    assert not [p for p in PASSWORDS if p in text or p.replace("-", "") in text]
    # Unreadable keys reveal nothing, so they are not in the trail.
    lab.find("--computer", "SRV001")
    assert len(trail.read_text().splitlines()) == len(entries)


def test_a_search_given_up_half_way_leaves_the_connection_usable(
    lab: Lab, samba_dc: Directory
) -> None:
    # With one entry a page, giving up after the first leaves the next page on its way; the
    # next search on the same connection must read past it, not take it for its own.
    from bitkey_dir.runtime.config import load_config
    from bitkey_dir.sources.ad.source import ADSource
    from bitkey_dir.sources.registry import open_sources

    (source,) = open_sources(load_config(lab.config(user=ADMIN, page_size=1)), ["lab"])
    assert isinstance(source, ADSource)
    try:
        every = [str(key.key_id) for key in source.iter_keys(lambda message: None)]
        assert len(every) > 3
        abandoned = source.iter_keys(lambda message: None)
        next(abandoned)
        abandoned.close()
        again = [str(key.key_id) for key in source.iter_keys(lambda message: None)]
        assert sorted(again) == sorted(every)
        assert len(set(again)) == len(again)
    finally:
        source.close()


def test_a_key_of_a_deleted_computer_says_how_to_see_it(lab: Lab, samba_dc: Directory) -> None:
    (key,) = samba_dc.keys("LT003")
    for asked in (key.key_id, key.key_id[:8]):
        found = lab.find("--key-id", asked, user=ADMIN)
        assert (found.code, found.keys) == (1, [])
        assert "belongs to a deleted computer: add --include-deleted" in found.err
    # Without the right to see Deleted Objects, the hint is only that they exist.
    found = lab.find("--key-id", key.key_id)
    assert found.code == 1
    assert "searched only with --include-deleted" in found.err
    assert key.password not in found.out + found.err


def test_a_bare_user_name_is_told_the_forms_ad_knows(lab: Lab) -> None:
    lab.monkeypatch.setenv("BITKEY_DIR_PASSWORD", HELPDESK.password)
    found = lab.find("--key-id", "063EA4E1", user=HELPDESK.name, set_password=False)
    assert found.code == 3
    assert "helpdesk1@your.domain or DOMAIN\\helpdesk1" in found.err


def test_a_dc_that_never_answers_is_named_as_it_is_skipped(lab: Lab, samba_dc: Directory) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never says a word
        hung = f"ldaps://127.0.0.1:{silent.getsockname()[1]}"
        key = samba_dc.keys("WS001")[0]
        found = lab.find("--key-id", key.key_id, servers=[hung, samba_dc.url], timeout=2)
    assert found.code == 0, found.err
    assert f"notice: lab: {hung} skipped (no answer within 2 s); trying {samba_dc.url}" in (
        found.err
    )
