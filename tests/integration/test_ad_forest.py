"""The forest-wide AD lookup against Samba: its Global Catalog port, its own DNS server.

Samba hosts one domain per forest, so the owning domain of every key is the DC's own: it is
reached through the SRV records Samba's DNS server publishes, or through
``[sources.lab.domains."bitkey.test"] servers``. Every search the source makes is recorded,
with the port it went to, to show that the Global Catalog is never asked for a password
(Samba's GC would hand it over: it does not trim its answers to the partial attribute set).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bitkey_dir.runtime.config import load_config
from bitkey_dir.sources.ad import reader as ad_reader
from bitkey_dir.sources.ad.source import ADSource
from bitkey_dir.sources.registry import open_sources
from tests.command_line import Outcome, invoke_with, toml_value
from tests.integration.fixtures import ADMIN, Directory, Lab, ad_checks, free_port, records
from tests.integration.seed import (
    COLLIDING_LT001,
    COLLIDING_PREFIX,
    COLLIDING_WS002,
    DNS_DOMAIN,
    TEMPORARY_COMPUTER,
)

pytestmark = pytest.mark.integration

PASSWORD = "msfve-recoverypassword"
GC_PORTS = (3268, 3269)


@dataclass(frozen=True)
class Asked:
    port: int
    base: str
    filter: str
    attributes: tuple[str, ...]
    scope: str


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[Asked]:
    """Every search the AD source makes, with the port of the server it went to."""
    seen: list[Asked] = []
    real = ad_reader.paged_search

    def spy(connection: Any, base: str, search_filter: str, attributes: Any, **kw: Any) -> Any:
        names = tuple(str(a).lower() for a in attributes)
        scope = kw.get("scope", "SUBTREE")
        port = connection.socket.getpeername()[1]  # either connection has its socket
        seen.append(Asked(port, base, search_filter, names, scope))
        return real(connection, base, search_filter, attributes, **kw)

    monkeypatch.setattr(ad_reader, "paged_search", spy)
    return seen


def config(
    lab: Lab,
    *,
    domains: dict[str, list[str]] | None = None,
    user: str = "helpdesk",
    **settings: object,
) -> Path:
    """`lab.config` with `[sources.lab.domains."NAME"]` tables; ``servers=None`` drops servers."""
    path = lab.config(user=user, **settings)
    text = path.read_text(encoding="utf-8")
    for name, servers in (domains or {}).items():
        text += f'\n[sources.lab.domains."{name}"]\nservers = {toml_value(servers)}\n'
    path.write_text(text, encoding="utf-8")
    return path


def find(path: Path, *args: str) -> Outcome:
    return invoke_with(path, "find", *args, "--source", "lab", "--format", "json", **ad_checks())


def gc_searches(asked: list[Asked]) -> list[Asked]:
    return [a for a in asked if a.port in GC_PORTS]


def assert_no_password_from_the_gc(asked: list[Asked]) -> None:
    assert gc_searches(asked)
    for search in gc_searches(asked):
        assert PASSWORD not in search.attributes, search
        assert "*" not in search.attributes, search


# ---------------------------------------------------------------------------------- Samba
def test_samba_answers_the_gc_ports_and_its_gc_holds_the_recovery_guid(
    samba_dc: Directory,
) -> None:
    import ldap3

    key = samba_dc.keys("WS001")[0]
    guid = "".join(f"\\{b:02x}" for b in key.recovery_guid.bytes_le)
    for port, ldaps in ((3269, True), (3268, False)):
        server = ldap3.Server(
            samba_dc.dc.host, port=port, use_ssl=ldaps, tls=samba_dc.dc.tls_config()
        )
        conn = ldap3.Connection(
            server, user=samba_dc.dc.admin_principal, password=samba_dc.dc.admin_password
        )
        conn.open()
        if not ldaps:
            conn.start_tls()
        assert conn.bind()
        conn.search(
            "", f"(msFVE-RecoveryGuid={guid})", ldap3.SUBTREE, attributes=["msFVE-RecoveryGuid"]
        )
        (entry,) = conn.response
        assert entry["raw_attributes"]["msFVE-RecoveryGuid"] == [key.recovery_guid.bytes_le]
        conn.unbind()


def test_samba_dns_publishes_the_srv_records(samba_dc: Directory) -> None:
    from bitkey_dir.sources.ad.discovery import NameServer
    from bitkey_dir.sources.ad.locate import Locator

    host, _, port = samba_dc.dc.dns_server.partition(":")
    locator = Locator((NameServer(host, int(port)),), timeout=5)
    (dc,) = locator.servers("dc", DNS_DOMAIN, "ldaps")
    assert (dc.url, dc.connect_to) == (f"ldaps://{samba_dc.kerberos_host}:636", host)
    (gc,) = locator.servers("gc", DNS_DOMAIN, "ldap")
    assert (gc.url, gc.connect_to) == (f"ldap://{samba_dc.kerberos_host}:3268", host)


# ---------------------------------------------------------------------------------- DC discovery
@pytest.mark.parametrize("scheme", ["ldaps", "ldap"])
def test_a_domain_without_servers_finds_its_dc_through_samba_dns(
    lab: Lab, samba_dc: Directory, asked: list[Asked], scheme: str
) -> None:
    path = config(
        lab,
        servers=None,
        domain=DNS_DOMAIN,
        dns_servers=[samba_dc.dc.dns_server],
        discovery_scheme=scheme,
    )
    key = samba_dc.keys("WS001")[0]
    found = find(path, "--key-id", key.key_id)
    assert found.code == 0, found.err
    assert found.keys == [samba_dc.record("WS001", key)]
    assert {a.port for a in asked} == {636 if scheme == "ldaps" else 389}
    by_name = find(path, "--computer", "WS00*")
    assert by_name.keys == records(samba_dc, "WS001", "WS002")


def test_a_domain_dns_does_not_know_is_exit_4_naming_the_srv_name(
    lab: Lab, samba_dc: Directory
) -> None:
    path = config(lab, servers=None, domain="nosuch.test", dns_servers=[samba_dc.dc.dns_server])
    found = find(path, "--key-id", COLLIDING_PREFIX)
    assert found.code == 4, found.err
    assert found.status == "failed"
    (line,) = [line for line in found.err.splitlines() if "_ldap._tcp.dc._msdcs" in line]
    assert "_ldap._tcp.dc._msdcs.nosuch.test" in line


@pytest.mark.timeout(60)
def test_a_dns_server_that_is_down_is_exit_4(lab: Lab) -> None:
    path = config(
        lab, servers=None, domain=DNS_DOMAIN, dns_servers=[f"127.0.0.1:{free_port()}"], timeout=2
    )
    started = time.monotonic()
    found = find(path, "--key-id", COLLIDING_PREFIX)
    assert found.code == 4, found.err
    assert f"_ldap._tcp.dc._msdcs.{DNS_DOMAIN}" in found.err
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------------------------- the GC
def test_gc_locates_and_the_owning_dc_reads_the_password(
    lab: Lab, samba_dc: Directory, asked: list[Asked]
) -> None:
    path = config(
        lab,
        global_catalog=[samba_dc.dc.gc_url],
        domain=DNS_DOMAIN,
        dns_servers=[samba_dc.dc.dns_server],
    )
    key = samba_dc.keys("WS001")[0]
    found = find(path, "--key-id", key.key_id)
    assert found.code == 0, found.err
    assert found.keys == [samba_dc.record("WS001", key)]
    assert_no_password_from_the_gc(asked)
    # The password came from a base-object search of the key's DN on the DC (LDAPS, 636).
    (read,) = [a for a in asked if PASSWORD in a.attributes]
    assert (read.port, read.scope) == (636, "BASE")
    assert key.key_id in read.base


def test_gc_lookups_give_what_a_dc_gives(lab: Lab, samba_dc: Directory, asked: list[Asked]) -> None:
    forest = lab.tmp_path / "forest.toml"
    config(lab, global_catalog=[samba_dc.dc.gc_url]).rename(forest)
    plain = config(lab)
    for args in (
        ("--key-id", COLLIDING_PREFIX),
        ("--key-id", COLLIDING_LT001),
        ("--computer", "WS00*"),
        ("--computer", "SRV001"),  # found, not readable by the helpdesk: exit 3 both ways
        ("--computer", "NOSUCHPC"),
        ("--key-id", "00000000"),
    ):
        expected, got = find(plain, *args), find(forest, *args)
        assert (got.code, got.keys) == (expected.code, expected.keys), args
    assert find(forest, "--key-id", COLLIDING_PREFIX).key_ids == [COLLIDING_WS002, COLLIDING_LT001]
    assert_no_password_from_the_gc(asked)


def test_gc_with_include_deleted_reads_the_deleted_objects_of_the_own_domain(
    lab: Lab, samba_dc: Directory
) -> None:
    (key,) = samba_dc.keys("LT003")
    path = config(lab, user=ADMIN, global_catalog=[samba_dc.dc.gc_url])
    assert find(path, "--computer", "LT003").code == 1
    found = find(path, "--computer", "LT003", "--include-deleted")
    assert found.code == 0, found.err
    assert found.keys == [samba_dc.record("LT003", key)]


def test_everything_through_samba_dns_gc_and_dc(
    lab: Lab, samba_dc: Directory, asked: list[Asked]
) -> None:
    path = config(
        lab,
        servers=None,
        domain=DNS_DOMAIN,
        dns_servers=[samba_dc.dc.dns_server],
        global_catalog=True,
    )
    found = find(path, "--computer", "LT001")
    assert found.code == 0, found.err
    assert found.keys == records(samba_dc, "LT001")
    assert_no_password_from_the_gc(asked)
    assert {a.port for a in asked} == {3269, 636}


def test_a_domain_table_names_the_dcs_that_passwords_are_read_from(
    lab: Lab, samba_dc: Directory, asked: list[Asked]
) -> None:
    dead = f"ldaps://127.0.0.1:{free_port()}"
    path = config(
        lab,
        servers=[dead],  # the source's own servers are down: they are not asked
        base_dn=samba_dc.base_dn,
        global_catalog=[samba_dc.dc.gc_url],
        domains={DNS_DOMAIN: [samba_dc.url]},
    )
    key = samba_dc.keys("WS002")[0]
    found = find(path, "--key-id", key.key_id)
    assert found.code == 0, found.err
    assert found.keys == [samba_dc.record("WS002", key)]
    assert "skipped" not in found.err


def test_an_owning_domain_out_of_reach_still_reports_the_key(lab: Lab, samba_dc: Directory) -> None:
    dead = f"ldaps://127.0.0.1:{free_port()}"
    path = config(lab, global_catalog=[samba_dc.dc.gc_url], domains={DNS_DOMAIN: [dead]}, timeout=2)
    key = samba_dc.keys("WS001")[0]
    found = find(path, "--key-id", key.key_id)
    # Found (not exit 1), but no password: exit 3 under the one exit-code rule.
    assert found.code == 3, found.err
    assert found.key_ids == [key.key_id]
    assert found.keys[0]["recovery_password"] is None
    assert found.keys[0]["computer"] == "WS001"
    (line,) = [line for line in found.err.splitlines() if DNS_DOMAIN in line]
    assert "passwords could not be read" in line
    assert "no directory server could be used" in line
    assert "Read and Control Access" not in found.err  # not a matter of rights


@pytest.mark.timeout(60)
def test_a_gc_that_is_down_fails_over_then_is_exit_4(
    lab: Lab, samba_dc: Directory, silent_server: int
) -> None:
    dead = f"ldaps://127.0.0.1:{free_port()}"
    silent = f"ldaps://127.0.0.1:{silent_server}"
    path = config(lab, global_catalog=[dead, silent, samba_dc.dc.gc_url], timeout=2)
    found = find(path, "--key-id", COLLIDING_PREFIX)
    assert found.code == 0, found.err
    assert found.key_ids == [COLLIDING_WS002, COLLIDING_LT001]
    assert f"{silent} skipped" in found.err
    down = config(lab, global_catalog=[dead, silent], timeout=2)
    started = time.monotonic()
    failed = find(down, "--key-id", COLLIDING_PREFIX)
    assert failed.code == 4, failed.err
    assert failed.status == "failed"
    assert time.monotonic() - started < 2 + 2.5


def test_kerberos_knows_discovered_servers_by_the_names_dns_gave(
    lab: Lab, samba_dc: Directory, helpdesk_ccache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.dc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{helpdesk_ccache}")
    path = config(
        lab,
        user=None,
        auth="kerberos",  # no kerberos_host: the SRV records name the DC
        servers=None,
        domain=DNS_DOMAIN,
        dns_servers=[samba_dc.dc.dns_server],
        global_catalog=True,
    )
    (key,) = samba_dc.keys("PC(01)")
    found = find(path, "--key-id", key.key_id[:8])
    assert found.code == 0, found.err
    assert found.keys == [samba_dc.record("PC(01)", key)]


# ---------------------------------------------------------------------------------- listing
def open_lab(path: Path) -> ADSource:
    (source,) = open_sources(load_config(path), ["lab"])
    assert isinstance(source, ADSource)
    return source


def key_ids(items: Iterator[Any]) -> list[str]:
    return sorted(str(item.key_id) for item in items)


def seeded(items: Iterator[Any]) -> list[Any]:
    """The seeded computers' keys: other tests of the session's DC make computers of their own
    (named TEMPORARY_COMPUTER…) and delete them, and Deleted Objects keeps their keys."""
    return [i for i in items if not (i.computer or "").startswith(TEMPORARY_COMPUTER)]


@pytest.mark.parametrize("catalog", [False, True])
def test_key_entries_are_the_keys_without_asking_for_a_password(
    lab: Lab, samba_dc: Directory, asked: list[Asked], catalog: bool
) -> None:
    settings: dict[str, object] = {"global_catalog": [samba_dc.dc.gc_url]} if catalog else {}
    path = config(lab, user=ADMIN, **settings)
    source = open_lab(path)
    warnings: list[str] = []
    try:
        entries = seeded(source.iter_key_entries(warnings.append))
        assert not [a for a in asked if PASSWORD in a.attributes or "*" in a.attributes]
        keys = seeded(source.iter_keys(warnings.append))
        deleted = seeded(source.iter_deleted_keys(warnings.append))
    finally:
        source.close()
    assert warnings == []
    live = [entry for entry in entries if not entry.deleted]
    assert key_ids(iter(live)) == key_ids(iter(keys))
    assert key_ids(e for e in entries if e.deleted) == key_ids(iter(deleted))
    assert len(deleted) == 1
    expected = {str(k.key_id): (k.computer, k.created, k.location, k.deleted) for k in keys}
    expected.update(
        {str(k.key_id): (k.computer, k.created, k.location, k.deleted) for k in deleted}
    )
    assert {str(e.key_id): (e.computer, e.created, e.location, e.deleted) for e in entries} == (
        expected
    )
    every = {k.key_id for c in samba_dc.seeded.computers.values() for k in c.keys}
    assert {str(e.key_id) for e in entries} == every
    if catalog:
        assert {a.port for a in asked if a.base == ""} >= {3269}


def test_the_helpdesk_lists_what_it_sees_and_deleted_objects_are_no_failure(
    lab: Lab, samba_dc: Directory, asked: list[Asked]
) -> None:
    source = open_lab(config(lab))
    warnings: list[str] = []
    try:
        entries = list(source.iter_key_entries(warnings.append))
        keys = list(source.iter_keys(warnings.append))
    finally:
        source.close()
    assert key_ids(iter(entries)) == key_ids(iter(keys))
    assert not [e for e in entries if e.deleted]
    assert not [a for a in asked if PASSWORD in a.attributes and a.base == ""]


@pytest.fixture
def silent_server() -> Iterator[int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def test_with_a_gc_the_key_package_is_read_from_the_owning_dc_only(
    lab: Lab, samba_dc: Directory, asked: list[Asked]
) -> None:
    path = config(lab, user=ADMIN, global_catalog=[samba_dc.dc.gc_url])
    key = samba_dc.keys("SRV001")[0]  # a prefix unique in the forest
    assert key.key_package is not None
    out = lab.tmp_path / "keypackage.bin"
    found = find(path, "--key-id", key.key_id[:8], "--key-package", str(out))
    assert found.code == 0, found.err
    assert out.read_bytes() == key.key_package
    for search in gc_searches(asked):
        assert "msfve-keypackage" not in search.attributes, search
    assert_no_password_from_the_gc(asked)
    (read,) = [a for a in asked if "msfve-keypackage" in a.attributes]
    assert (read.port, read.scope) == (636, "BASE")
    assert key.key_id in read.base
