"""What DNS may make bitkey-dir do: SRV answers are checked against the domain being
discovered, and a DNS server that names many servers or stalls costs a bounded time. Against
a DNS server on 127.0.0.1 that answers what each test says (the ``dns_servers`` seam)."""

from __future__ import annotations

import time

import pytest

from bitkey_dir.core.errors import SourceError
from bitkey_dir.sources.ad.discovery import MAX_SERVERS, NameServer
from bitkey_dir.sources.ad.locate import Locator
from tests.fake_dns import FakeDns

SRV = "_ldap._tcp.dc._msdcs.corp.example"


def locator(dns: FakeDns, allowed: tuple[str, ...] = (), timeout: int = 2) -> Locator:
    host, _, port = dns.address.partition(":")
    return Locator((NameServer(host, int(port)),), timeout, allowed)


def test_targets_outside_the_domain_are_skipped() -> None:
    records = {
        (SRV, "SRV"): ["0 100 389 dc1.corp.example.", "0 100 389 dc1.evilcorp.example."],
        ("dc1.corp.example", "A"): ["10.0.0.1"],
        ("dc1.evilcorp.example", "A"): ["10.6.6.6"],
    }
    with FakeDns(records) as dns:
        found = locator(dns).servers("dc", "corp.example", "ldaps")
    assert [s.host for s in found] == ["dc1.corp.example"]


@pytest.mark.parametrize("target", ["corp.example.evil.example", "xcorp.example", "example"])
def test_a_domain_whose_targets_all_lie_outside_fails_naming_them(target: str) -> None:
    records = {(SRV, "SRV"): [f"0 100 389 {target}."], (target, "A"): ["10.6.6.6"]}
    with FakeDns(records) as dns:
        with pytest.raises(SourceError) as raised:
            locator(dns).servers("dc", "corp.example", "ldaps")
        assert (target, "A") not in dns.asked  # not even looked up
    assert f"every SRV record names a host outside corp.example ({target})" in raised.value.message
    assert raised.value.hint is not None
    assert "discovery_allowed" in raised.value.hint


def test_discovery_allowed_trusts_a_host_or_a_domain() -> None:
    records = {
        (SRV, "SRV"): ["0 100 389 gc1.partner.example.", "10 100 389 DC2.CORP.EXAMPLE."],
        ("gc1.partner.example", "A"): ["10.0.0.7"],
        ("dc2.corp.example", "A"): ["10.0.0.2"],
    }
    with FakeDns(records) as dns:
        found = locator(dns, ("partner.example",)).servers("dc", "corp.example", "ldaps")
    assert [(s.host, s.connect_to) for s in found] == [
        ("gc1.partner.example", "10.0.0.7"),
        ("dc2.corp.example", "10.0.0.2"),
    ]


def test_global_catalogs_must_lie_in_the_forest() -> None:
    records = {
        ("_gc._tcp.corp.example", "SRV"): [
            "0 100 3268 gc1.child.corp.example.",
            "0 100 3268 gc.elsewhere.example.",
        ],
        ("gc1.child.corp.example", "A"): ["10.0.0.3"],
        ("gc.elsewhere.example", "A"): ["10.6.6.6"],
    }
    with FakeDns(records) as dns:
        found = locator(dns).servers("gc", "corp.example", "ldaps")
    assert [s.url for s in found] == ["ldaps://gc1.child.corp.example:3269"]


def test_many_targets_give_at_most_max_servers() -> None:
    targets = [f"dc{n}.corp.example" for n in range(64)]
    records: dict[tuple[str, str], list[str]] = {(SRV, "SRV"): [f"0 100 389 {t}." for t in targets]}
    for target in targets:
        records[(target, "A")] = [f"10.0.{n}.1" for n in range(8)]
    with FakeDns(records) as dns:
        found = locator(dns).servers("dc", "corp.example", "ldap")
        asked = [name for name, kind in dns.asked if kind == "A"]
    assert len(found) == MAX_SERVERS
    assert len(asked) <= MAX_SERVERS  # addresses of the targets tried, not of all 64


@pytest.mark.timeout(30)
def test_a_dns_server_that_never_gives_addresses_costs_one_timeout() -> None:
    targets = [f"dc{n}.corp.example" for n in range(64)]
    records = {(SRV, "SRV"): [f"0 100 389 {t}." for t in targets]}
    with FakeDns(records, silent={"A", "AAAA"}) as dns:
        started = time.monotonic()
        with pytest.raises(SourceError, match="no address for") as raised:
            locator(dns, timeout=1).servers("dc", "corp.example", "ldap")
        took = time.monotonic() - started
    assert took < 3, took
    assert len(raised.value.message) < 300  # a few names, not 64
