"""DNS discovery and the Global Catalog plan: SRV answers, dns_servers entries, DNs → domains,
what the GC is asked (never a password), config errors, and DNS failures as one line."""

from __future__ import annotations

import re
import socket
import string
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.errors import ConfigError, InputError, SourceError
from bitkey_dir.core.model import ComputerName, KeyId
from bitkey_dir.runtime.config import Settings
from bitkey_dir.sources.ad import forest, reader
from bitkey_dir.sources.ad.discovery import (
    NameServer,
    SrvRecord,
    dc_srv_name,
    dns_name,
    domain_dn,
    domain_of_dn,
    gc_srv_name,
    order_records,
    server_urls,
)
from bitkey_dir.sources.ad.locate import Locator
from bitkey_dir.sources.ad.search import Entry, SearchRefused
from bitkey_dir.sources.ad.source import ADSource

LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
labels = st.from_regex(LABEL, fullmatch=True)
domains = st.lists(labels, min_size=1, max_size=5).map(".".join).filter(lambda d: len(d) <= 253)
ports = st.integers(min_value=1, max_value=65535)
sixteen_bits = st.integers(min_value=0, max_value=65535)


# ---------------------------------------------------------------------------------- names
@given(domains)
def test_a_domain_and_its_naming_context_round_trip(domain: str) -> None:
    assert dns_name(domain.upper() + ".") == domain
    assert domain_of_dn(f"CN=PC1,OU=Corp,{domain_dn(domain)}") == domain
    recovery = rf"CN=2024-01-01T00:00:00\+00:00{{X}},CN=PC1,{domain_dn(domain)}"
    assert domain_of_dn(recovery) == domain


@given(st.text(max_size=300))
def test_any_text_is_a_dns_name_or_a_value_error(text: str) -> None:
    try:
        name = dns_name(text)
    except ValueError:
        return
    assert all(LABEL.fullmatch(label) for label in name.split("."))
    assert len(name) <= 253


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "a..b",
        "-a.example",
        "a-.example",
        "a b",
        "a_b.example",
        "ä.example",
        "x" * 64 + ".example",
        "corp.example/",
        "corp\\.example",
    ],
)
def test_bad_dns_names(text: str) -> None:
    with pytest.raises(ValueError, match="a DNS name"):
        dns_name(text)


@pytest.mark.parametrize(
    ("dn", "domain"),
    [
        ("CN=x,DC=Corp,DC=Example", "corp.example"),
        ("CN=x,OU=y", None),
        ("", None),
        ("CN=x,DC=a b,DC=example", None),  # not a DNS label
        ("CN=x,DC=a.b,DC=example", None),  # a label with a dot is no label
        ("CN=x,DC=inner,OU=y,DC=example", "example"),  # only the trailing DC= components
        (r"CN=a\,DC=evil,DC=example", "example"),  # escaped: part of the leaf's name
    ],
)
def test_domain_of_dn(dn: str, domain: str | None) -> None:
    assert domain_of_dn(dn) == domain


@given(st.text(max_size=200))
def test_domain_of_any_dn_is_a_dns_name_or_none(dn: str) -> None:
    domain = domain_of_dn(dn)
    assert domain is None or dns_name(domain) == domain


def test_srv_names() -> None:
    assert dc_srv_name("corp.example") == "_ldap._tcp.dc._msdcs.corp.example"
    assert gc_srv_name("corp.example") == "_gc._tcp.corp.example"


# ---------------------------------------------------------------------------------- SRV answers
@given(sixteen_bits, sixteen_bits, ports, domains)
def test_srv_records_parse(priority: int, weight: int, port: int, target: str) -> None:
    record = SrvRecord.parse(f"{priority} {weight} {port} {target.upper()}.")
    assert record == SrvRecord(priority, weight, port, target)
    assert not record.refuses


@given(st.text(max_size=120))
def test_any_srv_text_is_a_record_or_a_value_error(text: str) -> None:
    try:
        record = SrvRecord.parse(text)
    except ValueError:
        return
    assert record.refuses or dns_name(record.target) == record.target
    assert record.refuses or 1 <= record.port <= 65535


@pytest.mark.parametrize(
    "text",
    [
        "0 100 389",
        "0 100 0 dc1.corp.example.",  # port 0
        "0 100 70000 dc1.corp.example.",
        "70000 100 389 dc1.corp.example.",
        "0 -1 389 dc1.corp.example.",
        r"0 100 389 dc1\032evil.corp.example.",  # an escaped space in the name
        "0 100 389 dc1_x.corp.example.",
        "0 100 389 " + "a" * 64 + ".example.",
        "0 100 389 dc1.corp.example. extra",
        "0 100 ३८९ dc1.corp.example.",  # digits, but not ASCII ones
    ],
)
def test_untrusted_srv_answers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="SRV"):
        SrvRecord.parse(text)


def test_a_dot_target_means_no_service() -> None:
    assert SrvRecord.parse("0 0 0 .").refuses
    assert order_records([SrvRecord.parse("0 0 0 .")]) == []


records = st.builds(SrvRecord, sixteen_bits, sixteen_bits, ports, domains)


@given(st.lists(records, max_size=30), st.randoms(use_true_random=False))
def test_rfc_2782_order(found: list[SrvRecord], random: Any) -> None:
    ordered = order_records(found, random.randrange)
    unique = {(r.target, r.port): r for r in reversed(found)}
    assert sorted(ordered, key=str) == sorted(unique.values(), key=str) or len(unique) > 64
    priorities = [record.priority for record in ordered]
    assert priorities == sorted(priorities)


def test_weights_decide_within_a_priority() -> None:
    light, heavy = SrvRecord(0, 1, 389, "light.example"), SrvRecord(0, 99, 389, "heavy.example")
    backup = SrvRecord(10, 100, 389, "backup.example")
    # pick(n) = n - 1: the running sum reaches it only at the heaviest end.
    assert order_records([backup, light, heavy], lambda n: n - 1) == [heavy, light, backup]
    # pick(n) = 0: the first record (zero weights first) whatever the weights.
    zero = SrvRecord(0, 0, 389, "zero.example")
    assert order_records([heavy, zero], lambda n: 0) == [zero, heavy]


def test_server_urls_use_ldaps_ports_or_the_records_port_for_starttls() -> None:
    dc = [SrvRecord(0, 100, 389, "dc1.corp.example")]
    gc = [SrvRecord(0, 100, 3268, "gc1.corp.example")]
    assert [s.url for s in server_urls(dc, "dc", "ldaps")] == ["ldaps://dc1.corp.example:636"]
    assert [s.url for s in server_urls(gc, "gc", "ldaps")] == ["ldaps://gc1.corp.example:3269"]
    (starttls,) = server_urls(gc, "gc", "ldap")
    assert (starttls.url, starttls.port, starttls.ldaps) == (
        "ldap://gc1.corp.example:3268",
        3268,
        False,
    )
    both = server_urls(dc, "dc", "ldaps", {"dc1.corp.example": ["10.0.0.1", "10.0.0.2"]})
    assert [(s.host, s.connect_to) for s in both] == [
        ("dc1.corp.example", "10.0.0.1"),
        ("dc1.corp.example", "10.0.0.2"),
    ]
    assert server_urls(dc, "dc", "ldaps", {}) == ()


# ---------------------------------------------------------------------------------- dns_servers
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.53", NameServer("127.0.0.53", 53)),
        ("127.0.0.1:5353", NameServer("127.0.0.1", 5353)),
        (" 10.0.0.1 ", NameServer("10.0.0.1", 53)),
        ("::1", NameServer("::1", 53)),
        ("[fd00::53]:5353", NameServer("fd00::53", 5353)),
    ],
)
def test_dns_server_entries(text: str, expected: NameServer) -> None:
    assert NameServer.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dns.corp.example",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:x",
        "[127.0.0.1]:53",
        "[::1",
        "[::1]x",
        "[::1]:",
        "1.2.3",
        "127.0.0.1:53:53",
        "::1:99999x",
    ],
)
def test_bad_dns_server_entries(text: str) -> None:
    with pytest.raises(ValueError, match="an IP address"):
        NameServer.parse(text)


@given(st.text(alphabet=string.printable, max_size=60))
def test_any_dns_server_entry_parses_or_is_a_value_error(text: str) -> None:
    try:
        server = NameServer.parse(text)
    except ValueError:
        return
    assert 1 <= server.port <= 65535
    assert (
        NameServer.parse(
            f"[{server.address}]:{server.port}"
            if ":" in server.address
            else f"{server.address}:{server.port}"
        )
        == server
    )


# ---------------------------------------------------------------------------------- the GC plan
key_ids = st.one_of(
    st.uuids().map(lambda u: KeyId.parse(str(u))),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=8, max_size=31).map(KeyId.parse),
)
computer_names = st.text(min_size=1, max_size=40).filter(
    lambda t: t.strip().strip("*").strip() and not any(ord(c) < 32 or ord(c) == 127 for c in t)
)


def _filter_attributes(search_filter: str) -> set[str]:
    """The attributes a filter tests; a value (a computer named KEYPACKAGE) is not one."""
    return {name.lower() for name in re.findall(r"\(([A-Za-z0-9;-]+)[~<>:]?=", search_filter)}


def _never_a_password(search: forest.Search) -> None:
    assert not search.reads_confidential
    assert all(a.lower() not in forest.CONFIDENTIAL and a != "*" for a in search.attributes)
    tested = _filter_attributes(search.filter)
    assert not {"msfve-recoverypassword", "msfve-keypackage"} & tested


def test_the_filter_check_tells_attributes_from_values() -> None:
    assert _filter_attributes("(&(objectCategory=computer)(cn=KEYPACKAGE))") == {
        "objectcategory",
        "cn",
    }
    assert "msfve-keypackage" in _filter_attributes("(msFVE-KeyPackage=*)")


@given(key_ids)
def test_a_key_id_is_located_without_asking_for_its_password(key_id: KeyId) -> None:
    search = forest.locate_key_id(key_id)
    _never_a_password(search)
    assert (search.base, search.scope) == (forest.FOREST, "SUBTREE")
    assert "msFVE-RecoveryGuid" in search.attributes


@given(computer_names, domains)
def test_computers_are_located_without_asking_for_passwords(text: str, domain: str) -> None:
    try:
        name = ComputerName.parse(text)
    except Exception:
        return
    _never_a_password(forest.locate_computers(name))
    children = forest.locate_children(f"CN=PC,{domain_dn(domain)}")
    _never_a_password(children)
    assert children.scope == "LEVEL"


def test_listing_and_partitions_ask_for_no_password() -> None:
    _never_a_password(forest.list_keys())
    _never_a_password(forest.list_keys("DC=corp,DC=example"))
    _never_a_password(forest.domain_partitions("CN=Configuration,DC=corp,DC=example"))


@pytest.mark.parametrize(
    "attributes",
    [("msFVE-RecoveryPassword",), ("MSFVE-RECOVERYPASSWORD",), ("*",), ("cn", "msFVE-KeyPackage")],
)
def test_a_catalog_search_that_asks_for_a_password_is_refused(attributes: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="Global Catalog"):
        forest.for_catalog(forest.Search("", "(objectClass=*)", attributes))


def test_the_password_is_read_from_the_owning_dc_one_object_at_a_time() -> None:
    dn = r"CN=2024-01-01T00:00:00\+00:00{X},CN=PC1,DC=child,DC=corp,DC=example"
    search = forest.read_key(dn)
    assert (search.base, search.scope) == (dn, "BASE")
    assert forest.PASSWORD in search.attributes


def test_routes() -> None:
    from bitkey_dir.sources.ad.servers import ServerUrl

    configured = {"child.corp.example": (ServerUrl.parse("ldaps://dc9.child.corp.example"),)}
    assert forest.route("child.corp.example", configured, "corp.example").way == "configured"
    assert forest.route("corp.example", configured, "corp.example").way == "own"
    assert forest.route("other.example", configured, "corp.example").way == "dns"
    assert forest.route("corp.example", {}, None).way == "dns"
    groups = forest.by_domain(["CN=a,DC=x,DC=example", "CN=b", "CN=c,DC=X,DC=example"])
    assert groups == {"x.example": ["CN=a,DC=x,DC=example", "CN=c,DC=X,DC=example"], None: ["CN=b"]}


# ---------------------------------------------------------------------------------- config
BASE = {"type": "ad", "user": "agent@corp.example"}


# Any regular file will do while building: ca_file is read only when a connection is made.
CA_FILE = f'ca_file = "{Path(__file__).resolve()}"\n'


def build(text: str) -> ADSource:
    table = tomllib.loads(text)["sources"]["corp"]
    return ADSource.from_settings("corp", Settings(table, "config.toml: sources.corp", Path()))


def test_a_domain_alone_is_enough_and_nothing_is_asked_while_building() -> None:
    source = build(
        '[sources.corp]\ntype = "ad"\nuser = "a@corp.example"\ndomain = "Corp.Example"\n'
        'dns_servers = ["127.0.0.1:9", "[::1]:9"]\nglobal_catalog = true\n'
        + CA_FILE
        + '[sources.corp.domains."child.corp.example"]\nservers = ["ldaps://dc1.child.corp.example"]\n'
    )
    assert source.domain == "corp.example"
    assert source.base_dn == "DC=corp,DC=example"
    assert source.connector.servers == ()
    assert source.global_catalog is not None
    assert source.global_catalog.servers == ()
    assert [s.url for s in source.domain_servers["child.corp.example"]] == [
        "ldaps://dc1.child.corp.example"
    ]
    assert source.locator.dns_servers == (NameServer("127.0.0.1", 9), NameServer("::1", 9))
    assert "DCs of corp.example from DNS" in source.describe()
    assert "Global Catalogs from DNS" in source.describe()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('type = "ad"\nuser = "u@x"\n', "sources.corp.servers"),
        ('type = "ad"\nuser = "u@x"\ndomain = "corp example"\n', "sources.corp.domain"),
        (
            'type = "ad"\nuser = "u@x"\ndomain = "x.example"\ndns_servers = ["dns.x.example"]\n',
            "sources.corp.dns_servers",
        ),
        (
            'type = "ad"\nuser = "u@x"\ndomain = "x.example"\ndiscovery_scheme = "ldapz"\n',
            "sources.corp.discovery_scheme",
        ),
        (
            'type = "ad"\nuser = "u@x"\nservers = ["ldaps://dc1"]\nglobal_catalog = true\n',
            "sources.corp.global_catalog",
        ),
        (
            'type = "ad"\nuser = "u@x"\nservers = ["ldaps://dc1"]\nglobal_catalog = 3269\n',
            "sources.corp.global_catalog",
        ),
        (
            'type = "ad"\nuser = "u@x"\nservers = ["ldaps://dc1"]\nglobal_catalog = ["gc:3269"]\n',
            "sources.corp.global_catalog",
        ),
        (
            'type = "ad"\nuser = "u@x"\nservers = ["ldaps://dc1"]\nforest = "-x"\n',
            "sources.corp.forest",
        ),
        (
            'type = "ad"\nuser = "u@x"\nservers = ["ldaps://dc1"]\ndomains = 1\n',
            "sources.corp.domains",
        ),
        (
            'type = "ad"\nuser = "u@x"\nservers = ["ldaps://dc1"]\n[sources.corp.domains."a b"]\n'
            'servers = ["ldaps://dc2"]\n',
            "sources.corp.domains",
        ),
        (
            'type = "ad"\nuser = "u@x"\nservers = ["ldaps://dc1"]\n[sources.corp.domains."a.b"]\n',
            'sources.corp.domains."a.b".servers',
        ),
        (
            'type = "ad"\nuser = "u@x"\nservers = ["ldaps://dc1"]\n[sources.corp.domains."a.b"]\n'
            'servers = ["http://dc2"]\n',
            'sources.corp.domains."a.b".servers',
        ),
        (
            'type = "ad"\nuser = "u@x"\nservers = ["ldaps://dc1"]\n[sources.corp.domains."a.b"]\n'
            'servers = ["ldaps://dc2"]\nsever = 1\n',
            'sources.corp.domains."a.b"',
        ),
    ],
)
def test_config_errors_are_one_line_naming_the_key(text: str, names: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build("[sources.corp]\n" + text)
    message = raised.value.message
    assert "\n" not in message
    assert f"config.toml: {names}" in message


# ---------------------------------------------------------------------------------- DNS failures
@pytest.fixture
def silent_dns() -> Iterator[int]:
    """A UDP port on 127.0.0.1 that takes DNS questions and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.mark.timeout(30)
def test_a_dns_server_that_never_answers_is_one_line_naming_the_srv_name(silent_dns: int) -> None:
    locator = Locator((NameServer("127.0.0.1", silent_dns),), timeout=1)
    with pytest.raises(SourceError) as raised:
        locator.servers("dc", "corp.example", "ldaps")
    message = raised.value.message
    assert "_ldap._tcp.dc._msdcs.corp.example" in message
    assert "no answer within 1 s" in message
    assert "\n" not in message


# ---------------------------------------------------------------------------------- listing
class FakeSearches:
    """Stands in for the directory: records every search, refuses Deleted Objects."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def __call__(
        self,
        connection: object,
        base: str,
        search_filter: str,
        attributes: Any,
        scope: str = "SUBTREE",
        controls: Any = (),
        **paging: Any,
    ) -> Iterator[Entry]:
        self.asked.append((base, tuple(attributes)))
        if base.startswith("CN=Deleted Objects"):
            raise SearchRefused(f"search under {base} failed: insufficientAccessRights")
        dn = (
            r"CN=2024-01-01T00:00:00\+00:00{063EA4E1-220C-4293-BA01-4754620A96E7},"
            "CN=PC1,OU=Corp,DC=corp,DC=example"
        )
        guid = KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7").uuid.bytes_le
        yield Entry(dn, {"msfve-recoveryguid": [guid]})


def test_listing_without_rights_on_deleted_objects_warns_and_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = build(
        '[sources.corp]\ntype = "ad"\nuser = "a@corp.example"\ndomain = "corp.example"\n' + CA_FILE
    )
    searches = FakeSearches()
    source._connect = lambda warn: object()  # type: ignore[method-assign]
    monkeypatch.setattr(reader, "paged_search", searches)
    warnings: list[str] = []
    entries = list(source.iter_key_entries(warnings.append))
    assert [str(e.key_id) for e in entries] == ["063EA4E1-220C-4293-BA01-4754620A96E7"]
    assert (entries[0].computer, entries[0].location) == ("PC1", "OU=Corp,DC=corp,DC=example")
    assert len(warnings) == 1
    assert "deleted computers are not listed" in warnings[0]
    assert all(forest.PASSWORD not in attributes for _, attributes in searches.asked)


@pytest.mark.parametrize(
    "text",
    [
        'domain = "corp.example"\n',
        'servers = ["ldaps://dc1.corp.example"]\ndomain = "corp.example"\nglobal_catalog = true\n',
    ],
)
def test_servers_found_through_dns_need_the_domains_own_ca(text: str) -> None:
    with pytest.raises(ConfigError, match=r"sources\.corp\.ca_file: expected the CA bundle"):
        build('[sources.corp]\ntype = "ad"\nuser = "a@corp.example"\n' + text)
    built = build('[sources.corp]\ntype = "ad"\nuser = "a@corp.example"\n' + text + CA_FILE)
    assert built.connector.ca_file is not None


def test_discovery_allowed_names_hosts_and_domains_to_trust() -> None:
    source = build(
        '[sources.corp]\ntype = "ad"\nuser = "a@corp.example"\ndomain = "corp.example"\n'
        + CA_FILE
        + 'discovery_allowed = ["GC1.Partner.Example.", "emea.example"]\n'
    )
    assert source.locator.allowed == ("gc1.partner.example", "emea.example")
    with pytest.raises(ConfigError, match="discovery_allowed"):
        build(
            '[sources.corp]\ntype = "ad"\nuser = "a@corp.example"\ndomain = "corp.example"\n'
            + CA_FILE
            + 'discovery_allowed = ["not a name"]\n'
        )


def test_another_domains_dcs_are_found_through_dns_only_with_a_ca_file() -> None:
    source = build(
        '[sources.corp]\ntype = "ad"\nuser = "a@corp.example"\ndomain = "corp.example"\n'
        'servers = ["ldaps://dc1.corp.example"]\nglobal_catalog = ["ldaps://gc1.corp.example"]\n'
    )
    with pytest.raises(InputError, match=r"the DCs of child\.corp\.example would be found"):
        source._domain_connection("child.corp.example", lambda message: None)
