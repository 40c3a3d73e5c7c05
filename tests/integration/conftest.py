"""A real Active Directory for the integration tests: a Samba AD DC on a loopback address.

The fixture installs nothing. It provisions a domain once per test run (about 5 s; the
template is shared by pytest-xdist workers), starts Samba bound to 127.0.0.(40 + worker) with
its own test CA, and seeds the data in seed.py. Without Samba the tests are skipped, except
under CI=true, where a missing prerequisite fails them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.lab.graph_emulator import GraphEmulator
from examples.lab.samba_dc import SambaDC, free_loopback_host
from tests.integration.fixtures import (
    DEBIAN_PACKAGES,
    PIP_PACKAGES,
    Directory,
    Entra,
    Lab,
    found_tool,
    require_samba,
    unavailable,
)
from tests.integration.seed import DOMAIN, HELPDESK, HOSTNAME, REALM, SPEC

TEMPLATE_CACHE_ENV = "BITKEY_DIR_TEST_SAMBA_CACHE"


def _worker_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = worker.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


@pytest.fixture(scope="session")
def samba_dc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    """A seeded Samba AD DC for the whole session; stopped at the end."""
    require_samba()
    worker = _worker_number()
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    cache = Path(os.environ.get(TEMPLATE_CACHE_ENV) or shared / "samba-templates")
    host = free_loopback_host(
        [f"127.0.0.{40 + worker}", *(f"127.0.0.{100 + 10 * worker + i}" for i in range(10))]
    )
    dc = SambaDC.start(
        tmp_path_factory.mktemp("samba-dc") / "dc",
        host=host,
        realm=REALM,
        domain=DOMAIN,
        hostname=HOSTNAME,
        template_cache=cache,
    )
    try:
        yield Directory(dc, dc.seed(SPEC))
    finally:
        dc.stop()


@pytest.fixture(scope="session")
def helpdesk_ccache(samba_dc: Directory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Kerberos ticket cache holding the helpdesk user's TGT (MIT kinit against Samba)."""
    if not found_tool("kinit"):
        unavailable(f"kinit not found: install the Debian package krb5-user ({DEBIAN_PACKAGES})")
    if importlib.util.find_spec("gssapi") is None:
        unavailable(
            f"the Python package gssapi is missing: .venv/bin/pip install {PIP_PACKAGES} "
            "(it builds against libkrb5-dev)"
        )
    ccache = tmp_path_factory.mktemp("krb5") / "helpdesk.ccache"
    samba_dc.dc.kinit(HELPDESK.name, HELPDESK.password, ccache)
    return ccache


@pytest.fixture
def lab(samba_dc: Directory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """Writes `[sources.lab]` configs for the DC and runs `find` with them."""
    return Lab(samba_dc, tmp_path, monkeypatch)


@pytest.fixture
def fresh_kiota_registries() -> Iterator[None]:
    """Each test starts like a new `bitkey-dir` process: kiota's global registries empty.

    They are process-wide singletons; a GraphServiceClient built earlier in the same process
    (test_graph_emulator.py builds several) fills them, which would hide what a CLI run sees.
    """
    from kiota_abstractions.serialization import (
        ParseNodeFactoryRegistry,
        SerializationWriterFactoryRegistry,
    )

    tables: list[dict[str, Any]] = [
        ParseNodeFactoryRegistry.CONTENT_TYPE_ASSOCIATED_FACTORIES,
        SerializationWriterFactoryRegistry.CONTENT_TYPE_ASSOCIATED_FACTORIES,
    ]
    saved = [dict(table) for table in tables]
    for table in tables:
        table.clear()
    yield
    for table, entries in zip(tables, saved, strict=True):
        table.clear()
        table.update(entries)


@pytest.fixture
def entra(
    graph: GraphEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_kiota_registries: None,
) -> Entra:
    """Registers apps, writes `[sources.cloud]` configs and runs `find` with them."""
    return Entra(graph, tmp_path, monkeypatch)


@pytest.fixture
def graph(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GraphEmulator]:
    """The HTTPS Graph and identity-platform emulator, on 127.0.0.1 with its own CA."""
    # A proxy from the environment must not catch loopback traffic.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with GraphEmulator(tmp_path_factory.mktemp("graph")) as emulator:
        emulator.device_code_interval = 1
        emulator.device_code_lifetime = 30  # a missed approval fails in seconds, not minutes
        yield emulator
    assert emulator.errors == []
