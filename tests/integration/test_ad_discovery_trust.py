"""Servers found through DNS are trusted with a bind only inside the domain being discovered,
and hostile DNS cannot stall a lookup: a DNS server on 127.0.0.1 that answers what each test
says (the ``dns_servers`` seam), the Samba DC whose certificate is valid for its own name,
and ports that accept connections and never answer."""

from __future__ import annotations

import time
from pathlib import Path

import certifi
import pytest

from tests.command_line import Outcome, invoke_with
from tests.fake_dns import FakeDns, SilentServers
from tests.integration.fixtures import Directory, Lab, ad_checks
from tests.integration.seed import DNS_DOMAIN

pytestmark = pytest.mark.integration

OTHER = "other.test"  # a domain whose DNS names the lab DC, which lies outside it


def find(config: Path, *args: str) -> Outcome:
    return invoke_with(config, "find", *args, "-s", "lab", "-f", "json", **ad_checks())


def dc_records(samba_dc: Directory, srv: str, port: int) -> dict[tuple[str, str], list[str]]:
    fqdn = samba_dc.kerberos_host
    return {(srv, "SRV"): [f"0 100 {port} {fqdn}."], (fqdn, "A"): [samba_dc.dc.host]}


def test_a_dc_outside_the_domain_is_not_bound_to_unless_allowed(
    lab: Lab, samba_dc: Directory
) -> None:
    key = samba_dc.keys("WS001")[0]
    records = dc_records(samba_dc, f"_ldap._tcp.dc._msdcs.{OTHER}", 389)
    with FakeDns(records) as dns:
        settings: dict[str, object] = {
            "servers": None,
            "domain": OTHER,
            "base_dn": samba_dc.base_dn,
            "dns_servers": [dns.address],
        }
        refused = find(lab.config(**settings), "-k", key.key_id)
        assert refused.code == 4, refused.err
        assert f"every SRV record names a host outside {OTHER} ({samba_dc.kerberos_host})" in (
            refused.err
        )
        assert "discovery_allowed" in refused.err
        allowed = lab.config(**settings, discovery_allowed=[samba_dc.kerberos_host])
        found = find(allowed, "-k", key.key_id)
        assert found.code == 0, found.err
        assert found.keys == [samba_dc.record("WS001", key)]


def test_a_global_catalog_outside_the_forest_is_not_bound_to_unless_allowed(
    lab: Lab, samba_dc: Directory
) -> None:
    key = samba_dc.keys("WS001")[0]
    with FakeDns(dc_records(samba_dc, f"_gc._tcp.{OTHER}", 3268)) as dns:
        settings: dict[str, object] = {
            "global_catalog": True,
            "forest": OTHER,
            "dns_servers": [dns.address],
        }
        refused = find(lab.config(**settings), "-k", key.key_id)
        assert refused.code == 4, refused.err
        assert f"outside {OTHER}" in refused.err
        allowed = lab.config(**settings, discovery_allowed=[DNS_DOMAIN])
        found = find(allowed, "-k", key.key_id)
        assert found.code == 0, found.err
        assert found.key_ids == [key.key_id]


@pytest.mark.timeout(90)
def test_dns_naming_many_servers_that_never_answer_ends_within_the_bound(lab: Lab) -> None:
    targets = [f"dc{n}.corp.example" for n in range(64)]
    with SilentServers(8) as silent:
        records: dict[tuple[str, str], list[str]] = {
            ("_ldap._tcp.dc._msdcs.corp.example", "SRV"): [
                f"0 100 {silent.port} {target}." for target in targets
            ],
        }
        for target in targets:
            records[(target, "A")] = silent.addresses
        with FakeDns(records) as dns:
            config = lab.config(
                servers=None,
                domain="corp.example",
                dns_servers=[dns.address],
                discovery_scheme="ldap",  # StartTLS on the SRV record's port
                ca_file=certifi.where(),
                timeout=1,
            )
            started = time.monotonic()
            found = find(config, "-k", "063EA4E1")
            took = time.monotonic() - started
    assert found.code == 4, found.err
    assert found.status == "failed"
    assert "not tried" in found.err
    # DNS (one time-out for the SRV record, one for the addresses) and two time-outs of
    # connection attempts: 4 s, where 64 targets x 8 addresses x 1 s were 8 minutes.
    assert took < 7, took
