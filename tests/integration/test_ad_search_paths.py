"""Every way an AD search can run gives the same answers against the Samba DC.

A simple bind's read-only connection is bitkey-dir's own (sources/ad/simple_bind.py), and
its replies are decoded by the wire decoder (sources/ad/wire.py). ldap3's connection (for
Kerberos, or for writing) uses the same decoder through a few of ldap3's internals; where
those are missing, or ldap3 is a release the decoder was not checked against, the same
searches run through ldap3's own paged search. Each scenario runs once each way, and the
outputs must be identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bitkey_dir.core.errors import SourceError
from bitkey_dir.runtime.config import load_config
from bitkey_dir.sources.ad import search, wire
from bitkey_dir.sources.ad.connection import Connector
from bitkey_dir.sources.ad.simple_bind import SimpleBindConnection
from bitkey_dir.sources.ad.source import ADSource
from bitkey_dir.sources.registry import open_sources
from tests.command_line import Outcome, invoke_with
from tests.integration.fixtures import ADMIN, Directory, Lab, ad_checks

pytestmark = pytest.mark.integration


class Paths:
    """Runs a scenario on the own connection, then on ldap3's with the wire decoder, then
    with ldap3's paged search, counting which one served each search."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.calls = {"wire": 0, "ldap3": 0, "own": 0}
        real_wire, real_ldap3 = wire.search, search._ldap3_search

        def wire_search(*args: Any, **kwargs: Any) -> Iterator[Any]:
            self.calls["wire"] += 1
            self.calls["own"] += isinstance(args[0], SimpleBindConnection)
            return real_wire(*args, **kwargs)

        def ldap3_search(*args: Any, **kwargs: Any) -> Iterator[Any]:
            self.calls["ldap3"] += 1
            return real_ldap3(*args, **kwargs)

        monkeypatch.setattr(wire, "search", wire_search)
        monkeypatch.setattr(search, "_ldap3_search", ldap3_search)

    def both(self, scenario: Callable[[], Any]) -> tuple[Any, Any]:
        """The scenario's outcome on the own connection, and with ldap3's paged search (on
        ldap3's connection with the wire decoder it must be the first)."""
        self.calls.update(wire=0, ldap3=0, own=0)
        by_own = scenario()
        assert self.calls["own"] == self.calls["wire"] > 0
        assert self.calls["ldap3"] == 0
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Connector, "uses_ldap3", property(lambda connector: True))
            self.calls.update(wire=0, ldap3=0, own=0)
            by_wire = scenario()
            assert self.calls["wire"] > 0
            assert self.calls["ldap3"] == self.calls["own"] == 0
            patch.setattr(search, "wire_usable", lambda connection: False)
            self.calls.update(wire=0, ldap3=0)
            by_ldap3 = scenario()
        assert self.calls["ldap3"] > 0
        assert self.calls["wire"] == 0
        assert by_own == by_wire
        return by_own, by_ldap3


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Paths:
    return Paths(monkeypatch)


def answer(outcome: Outcome) -> tuple[int, str, str]:
    return outcome.code, outcome.out, outcome.err


@pytest.mark.parametrize(
    ("user", "args"),
    [
        ("helpdesk", ("--key-id", "FULL")),
        ("helpdesk", ("--key-id", "PREFIX")),
        ("helpdesk", ("--computer", "WS0*")),
        ("plain", ("--computer", "WS0*")),  # objects seen, passwords not readable
        (ADMIN, ("--computer", "LT00*", "--include-deleted")),
        ("helpdesk", ("--computer", "LT00*", "--include-deleted")),  # no Deleted Objects
        (ADMIN, ("--computer", "NOKEY01")),
        ("helpdesk", ("--computer", "NO-SUCH-PC")),
    ],
)
def test_lookups_are_the_same_either_way(
    lab: Lab, samba_dc: Directory, paths: Paths, user: str, args: tuple[str, ...]
) -> None:
    key = samba_dc.keys("WS001")[0]
    given = tuple(
        key.key_id if a == "FULL" else key.key_id[:8] if a == "PREFIX" else a for a in args
    )
    by_wire, by_ldap3 = paths.both(lambda: answer(lab.find(*given, user=user, page_size=2)))
    assert by_wire == by_ldap3
    assert by_wire[0] in (0, 1, 3)


def test_an_export_with_deleted_computers_is_the_same_either_way(
    lab: Lab, paths: Paths, tmp_path: Path
) -> None:
    config = lab.config(user=ADMIN, page_size=3)
    files = iter([tmp_path / "own.json", tmp_path / "wire.json", tmp_path / "ldap3.json"])

    def export() -> list[dict[str, Any]]:
        out = next(files)
        done = invoke_with(
            config, "export", "-s", "lab", "-o", str(out), "--include-deleted", **ad_checks()
        )
        assert done.code == 0, done.err
        keys: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))["keys"]
        return keys

    by_wire, by_ldap3 = paths.both(export)
    assert by_wire == by_ldap3
    assert any(key["deleted"] for key in by_wire)


def test_an_audit_is_the_same_either_way(lab: Lab, paths: Paths) -> None:
    config = lab.config(user="plain", page_size=4)

    def audit() -> dict[str, Any]:
        done = invoke_with(config, "audit", "-s", "lab", "-f", "json", **ad_checks())
        assert done.code == 0, done.err
        return done.document

    by_wire, by_ldap3 = paths.both(audit)
    assert by_wire == by_ldap3


def test_a_base_that_does_not_exist_is_a_failure_either_way(lab: Lab, paths: Paths) -> None:
    def elsewhere() -> tuple[int, str, str]:
        return answer(lab.find("-c", "WS001", user=ADMIN, base_dn="DC=elsewhere,DC=invalid"))

    by_wire, by_ldap3 = paths.both(elsewhere)
    assert by_wire == by_ldap3
    assert by_wire[0] == 4  # noSuchObject is no empty directory: "not found" would be a lie


def test_a_refused_search_is_a_source_failure_either_way(
    lab: Lab, samba_dc: Directory, paths: Paths
) -> None:
    # An unknown control marked critical: the DC must refuse the search (RFC 4511 4.1.11).
    unknown = ("1.3.6.1.4.1.99999.42", True, None)
    (source,) = open_sources(load_config(lab.config(user=ADMIN)), ["lab"])
    assert isinstance(source, ADSource)

    def refused() -> tuple[str, list[str]]:
        try:
            return refused_on(source.connector.connect(lambda message: None))
        finally:
            source.connector.close()  # the next way opens a connection of its own

    def refused_on(connection: Any) -> tuple[str, list[str]]:
        found = search.paged_search(
            connection,
            samba_dc.base_dn,
            "(objectClass=computer)",
            ["cn"],
            page_size=5,
            timeout=5,
            controls=[unknown],
        )
        with pytest.raises(SourceError) as failed:
            list(found)
        # The connection is still good for the next search.
        again = search.paged_search(
            connection, samba_dc.base_dn, "(cn=WS001)", ["cn"], page_size=5, timeout=5
        )
        return failed.value.message, [entry.text("cn") or "" for entry in again]

    try:
        by_wire, by_ldap3 = paths.both(refused)
    finally:
        source.close()
    assert by_wire == by_ldap3
    message, names = by_wire
    assert message.startswith(f"search under {samba_dc.base_dn} failed: ")
    assert names == ["WS001"]


def test_the_checked_ldap3_release_is_the_one_installed() -> None:
    # pyproject.toml pins ldap3 to the releases the wire decoder was checked against; were
    # another installed, every search would silently take the slower path.
    import ldap3

    release = tuple(int(part) for part in ldap3.__version__.split(".")[:2])
    assert release in search.CHECKED_LDAP3
