"""One Entra source over several tenants (`tenant_ids`), against the Graph emulator.

A multi-tenant app is registered once and consented in each tenant; each tenant is then a
source of its own, `cloud/TENANT`, with its own token cache. The tests check what a
managed-service provider relies on: a key is found in whichever tenant holds it, a tenant
that refuses the app does not hide the others' answers, 8 digits shared by keys in two
tenants are reported as ambiguous, and the index narrows a lookup to the one tenant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from examples.lab.graph_emulator import App, GraphEmulator
from tests.command_line import Outcome, invoke_with, trail_entries
from tests.integration.fixtures import FULL, KEY_GET, KEY_LIST, SECRET, SOURCE, Entra

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]


class Estate:
    def __init__(self, entra: Entra, graph: GraphEmulator) -> None:
        self.entra = entra
        self.graph = graph
        self.app: App = graph.add_app(
            "bitkey-dir msp", public_client=False, secret=SECRET, app_roles=FULL, multi_tenant=True
        )
        entra.client_id = self.app.client_id
        entra.monkeypatch.setenv("BITKEY_DIR_CLIENT_SECRET", SECRET)
        self.fabrikam = graph.add_tenant("fabrikam.onmicrosoft.com")
        self.northwind = graph.add_tenant("northwind.onmicrosoft.com")
        for tenant in (self.fabrikam, self.northwind):
            tenant.consent(self.app, app_roles=list(FULL))
        self.home_key = graph.add_recovery_key(graph.add_device("CONTOSO-01"))
        self.fabrikam_key = self.fabrikam.add_recovery_key(self.fabrikam.add_device("FAB-01"))
        self.northwind_key = self.northwind.add_recovery_key(self.northwind.add_device("NW-01"))
        self.tenants = [graph.tenant_id, "fabrikam.onmicrosoft.com", "northwind.onmicrosoft.com"]

    def name(self, tenant: str) -> str:
        return f"{SOURCE}/{tenant}"

    def settings(self) -> dict[str, Any]:
        return {"tenant_id": None, "tenant_ids": self.tenants}

    def find(self, *args: str) -> Outcome:
        return self.entra.find(*args, **self.settings())

    def config(self) -> Path:
        """The one `cloud` source over the three tenants."""
        return self.entra.config(**self.settings())

    def find_in(self, tenant: str, *args: str) -> Outcome:
        return invoke_with(
            self.config(),
            "find",
            *args,
            "--source",
            self.name(tenant),
            "-f",
            "json",
            **self.entra.checks,
        )

    def statuses(self, outcome: Outcome) -> dict[str, str]:
        return {row["name"]: row["status"] for row in outcome.document["sources"]}


@pytest.fixture
def estate(entra: Entra, graph: GraphEmulator) -> Estate:
    return Estate(entra, graph)


def test_a_key_is_found_in_the_tenant_that_holds_it(estate: Estate) -> None:
    outcome = estate.find("--key-id", estate.fabrikam_key.id[:8])
    assert outcome.code == 0, outcome.err
    (key,) = outcome.keys
    assert key["key_id"] == estate.fabrikam_key.id.upper()
    assert key["recovery_password"] == estate.fabrikam_key.key
    assert key["computer"] == "FAB-01"
    assert key["source"] == estate.name("fabrikam.onmicrosoft.com")
    assert estate.statuses(outcome) == {estate.name(t): "ok" for t in estate.tenants}
    # The other tenants' keys were never read.
    assert [read.key_id for read in estate.fabrikam.key_reads] == [estate.fabrikam_key.id]
    assert estate.northwind.key_reads == []
    assert estate.graph.key_reads == []


def test_a_tenant_that_refuses_the_app_hides_no_other_answer(estate: Estate) -> None:
    estate.northwind.remove_consent(estate.app)
    found = estate.find("--key-id", estate.fabrikam_key.id[:8])
    assert found.code == 0, found.err
    assert [key["key_id"] for key in found.keys] == [estate.fabrikam_key.id.upper()]
    statuses = estate.statuses(found)
    assert statuses[estate.name("northwind.onmicrosoft.com")] == "denied"
    assert statuses[estate.name("fabrikam.onmicrosoft.com")] == "ok"
    assert "northwind.onmicrosoft.com" in found.err
    # Nothing found anywhere, and one tenant could not be asked: not "not found".
    missing = estate.find("--key-id", "0BADC0DE")
    assert missing.code == 3
    assert missing.keys == []


def test_the_same_8_digits_in_two_tenants_are_ambiguous(estate: Estate) -> None:
    twin = estate.northwind.add_recovery_key(
        estate.northwind.add_device("NW-02"), id_prefix=estate.fabrikam_key.id[:8]
    )
    for use_index in (False, True):
        if use_index:
            assert invoke_with(estate.config(), "index", "refresh", **estate.entra.checks).code == 0
        outcome = estate.find("--key-id", estate.fabrikam_key.id[:8])
        assert outcome.code == 0, outcome.err
        assert outcome.document["ambiguous"] is True
        assert sorted(outcome.key_ids) == sorted([estate.fabrikam_key.id.upper(), twin.id.upper()])
        assert {key["source"] for key in outcome.keys} == {
            estate.name("fabrikam.onmicrosoft.com"),
            estate.name("northwind.onmicrosoft.com"),
        }


def test_the_index_narrows_a_lookup_to_one_tenant(estate: Estate) -> None:
    refreshed = invoke_with(
        estate.config(), "index", "refresh", "-f", "json", **estate.entra.checks
    )
    assert refreshed.code == 0, refreshed.err
    assert sorted(done["source"] for done in refreshed.document["refreshed"]) == sorted(
        estate.name(t) for t in estate.tenants
    )
    status = invoke_with(estate.config(), "index", "status", "--json", **estate.entra.checks)
    assert {row["source"] for row in status.document["sources"]} == {
        estate.name(t) for t in estate.tenants
    }
    estate.graph.clear_requests()
    outcome = estate.find("--key-id", estate.northwind_key.id[:8])
    assert outcome.code == 0, outcome.err
    assert outcome.key_ids == [estate.northwind_key.id.upper()]
    assert estate.northwind.count(KEY_GET, method="GET") == 1
    assert estate.northwind.count(KEY_LIST, method="GET") == 0
    # The other tenants were not asked: no token, no listing. (A tenant listed by domain
    # has its ID looked up in the public OpenID metadata, which needs no sign-in.)
    assert asked(estate.fabrikam) == []
    assert asked(estate.graph.home) == []


def asked(tenant: Any) -> list[str]:
    """The requests made to ``tenant`` but for its OpenID metadata."""
    return [r.path for r in tenant.requests if not r.path.endswith("/openid-configuration")]


def test_a_key_escrowed_in_another_tenant_after_the_refresh_is_never_hidden_silently(
    estate: Estate,
) -> None:
    assert invoke_with(estate.config(), "index", "refresh", **estate.entra.checks).code == 0
    twin = estate.northwind.add_recovery_key(
        estate.northwind.add_device("NW-02"), id_prefix=estate.fabrikam_key.id[:8]
    )
    outcome = estate.find("--key-id", estate.fabrikam_key.id[:8])
    assert outcome.code == 0, outcome.err
    assert outcome.key_ids == [estate.fabrikam_key.id.upper()]  # northwind was not listed
    assert outcome.document["ambiguous"] is None  # and so it cannot say "not ambiguous"
    assert outcome.document["complete"] is False
    assert sorted(outcome.document["index"]["unconfirmed"]) == sorted(
        estate.name(t) for t in estate.tenants
    )
    assert "escrowed since then is not included" in outcome.err
    assert twin.key not in outcome.out


def test_one_full_key_id_in_two_tenants_reveals_nothing(estate: Estate) -> None:
    copy = estate.northwind.add_recovery_key(
        estate.northwind.add_device("NW-EVIL"), key_id=estate.fabrikam_key.id
    )
    assert invoke_with(estate.config(), "index", "refresh", **estate.entra.checks).code == 0
    for key_id in (estate.fabrikam_key.id, estate.fabrikam_key.id[:8]):
        for index in ((), ("--no-index",)):
            outcome = estate.find("--key-id", key_id, "--reason", "INC-3", *index)
            assert outcome.code == 5, (key_id, index, outcome.err)
            assert outcome.out == ""
            assert "FAB-01 (cloud/fabrikam.onmicrosoft.com)" in outcome.err
            assert "NW-EVIL (cloud/northwind.onmicrosoft.com)" in outcome.err
            for secret in (estate.fabrikam_key.key, copy.key):
                assert secret not in outcome.out + outcome.err
    refusals = [entry for entry in trail_entries() if entry.get("action") == "refuse"]
    assert len(refusals) == 4
    assert {entry["key_id"] for entry in refusals} == {estate.fabrikam_key.id.upper()}
    assert not [entry for entry in trail_entries() if entry.get("action") is None]


def test_one_tenant_can_be_named(estate: Estate) -> None:
    outcome = estate.find_in("northwind.onmicrosoft.com", "--computer", "NW-01")
    assert outcome.code == 0, outcome.err
    assert outcome.key_ids == [estate.northwind_key.id.upper()]
    assert list(estate.statuses(outcome)) == [estate.name("northwind.onmicrosoft.com")]
    unknown = estate.find_in("nowhere.onmicrosoft.com", "--computer", "NW-01")
    assert unknown.code == 2
    assert "its parts" in unknown.err


def test_audit_and_export_cover_every_tenant(estate: Estate, tmp_path: Path) -> None:
    audit = invoke_with(estate.config(), "audit", "--format", "json", **estate.entra.checks)
    assert audit.code == 0, audit.err
    computers = {row["computer"] for row in audit.document["computers"]}
    assert {"CONTOSO-01", "FAB-01", "NW-01"} <= computers
    out = tmp_path / "all.json"
    export = invoke_with(
        estate.config(),
        "export",
        "-s",
        SOURCE,
        "-o",
        str(out),
        "--reason",
        "DR drill",
        **estate.entra.checks,
    )
    assert export.code == 0, export.err
    exported = json.loads(out.read_text(encoding="utf-8"))
    ids = {key["key_id"] for key in exported["keys"]}
    assert {
        estate.home_key.id.upper(),
        estate.fabrikam_key.id.upper(),
        estate.northwind_key.id.upper(),
    } <= ids
    # An export must be whole: a tenant that refuses fails it, and nothing is written.
    estate.fabrikam.remove_consent(estate.app)
    partial = tmp_path / "partial.json"
    failed = invoke_with(
        estate.config(),
        "export",
        "-s",
        SOURCE,
        "-o",
        str(partial),
        "--reason",
        "DR drill",
        **estate.entra.checks,
    )
    assert failed.code == 3
    assert not partial.exists()


def test_tenant_ids_are_checked(estate: Estate) -> None:
    for value, expected in (
        ([], "tenant_ids: expected a list of 1 to"),
        (["fabrikam.onmicrosoft.com", "FABRIKAM.onmicrosoft.com"], "each tenant once"),
        (["bad tenant"], "a tenant ID (a GUID) or domain name"),
    ):
        config = estate.entra.config(tenant_id=None, tenant_ids=value)
        outcome = invoke_with(config, "sources", **estate.entra.checks)
        assert outcome.code == 2, value
        assert expected in outcome.err, outcome.err
    both = estate.entra.config(tenant_ids=["fabrikam.onmicrosoft.com"])
    outcome = invoke_with(both, "sources", **estate.entra.checks)
    assert outcome.code == 2
    assert "tenant_id or tenant_ids, not both" in outcome.err


def test_a_tenant_listed_by_id_and_by_domain_is_read_once(estate: Estate, tmp_path: Path) -> None:
    fabrikam_id = estate.fabrikam.tenant_id
    estate.fabrikam.domains.append("fabrikam.example")  # a custom domain of the same tenant
    estate.tenants = [
        estate.graph.tenant_id,
        "fabrikam.onmicrosoft.com",
        fabrikam_id.upper(),
        "fabrikam.example",
        estate.graph.home.domain,
    ]
    outcome = estate.find("--computer", "FAB-01")
    assert outcome.code == 0, outcome.err
    (key,) = outcome.keys
    assert key["source"] == estate.name("fabrikam.onmicrosoft.com")
    assert [read.key_id for read in estate.fabrikam.key_reads] == [estate.fabrikam_key.id]
    assert list(estate.statuses(outcome)) == [
        estate.name(estate.graph.tenant_id),
        estate.name("fabrikam.onmicrosoft.com"),
    ]
    for duplicate, first in (
        (fabrikam_id.upper(), "fabrikam.onmicrosoft.com"),
        ("fabrikam.example", "fabrikam.onmicrosoft.com"),
        (estate.graph.home.domain, estate.graph.tenant_id),
    ):
        assert f"({first} and {duplicate}): it is read once" in outcome.err
    # Whole, as an export reads it: each key once.
    out = tmp_path / "all.json"
    export = invoke_with(
        estate.config(), "export", "-s", SOURCE, "-o", str(out), **estate.entra.checks
    )
    assert export.code == 0, export.err
    ids = [k["key_id"] for k in json.loads(out.read_text(encoding="utf-8"))["keys"]]
    assert sorted(ids) == sorted(set(ids))
