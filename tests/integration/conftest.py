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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from tests.integration.test_ad import Lab
    from tests.integration.test_entra import Entra
from examples.lab.samba_dc import (
    RecoveryKey,
    SambaDC,
    SambaDCError,
    SeedResult,
    free_loopback_host,
    tool,
)
from tests.integration.graph_emulator import GraphEmulator
from tests.integration.seed import (
    DOMAIN,
    HELPDESK,
    HOSTNAME,
    REALM,
    SPEC,
    computer_spec,
    newest_first,
)

DEBIAN_PACKAGES = (
    "samba samba-ad-provision samba-dsdb-modules samba-vfs-modules krb5-user libkrb5-dev"
)
PIP_PACKAGES = "ldap3 cryptography gssapi"
TEMPLATE_CACHE_ENV = "BITKEY_DIR_TEST_SAMBA_CACHE"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, where these tests must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the integration tests must run)", pytrace=False)
    pytest.skip(reason)


def _found(command: str) -> bool:
    try:
        tool(command)  # PATH, then /usr/sbin and /usr/bin (samba is in /usr/sbin)
    except SambaDCError:
        return False
    return True


def _require_samba() -> None:
    missing = [cmd for cmd in ("samba", "samba-tool", "samba_spnupdate") if not _found(cmd)]
    if missing:
        unavailable(
            f"{', '.join(missing)} not found: install the Debian packages {DEBIAN_PACKAGES} "
            "(apt-get install --no-install-recommends)"
        )
    modules = [m for m in ("ldap3", "cryptography") if importlib.util.find_spec(m) is None]
    if modules:
        unavailable(f"Python packages missing: .venv/bin/pip install {PIP_PACKAGES}")
    if os.geteuid() != 0:
        unavailable("a Samba AD DC needs root (it binds ports 88, 389 and 636)")


def _worker_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = worker.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


@dataclass(frozen=True)
class Directory:
    """The running DC and what was seeded into it."""

    dc: SambaDC
    seeded: SeedResult

    @property
    def url(self) -> str:
        return self.dc.ldaps_url

    @property
    def ldap_url(self) -> str:
        return self.dc.ldap_url

    @property
    def ca_file(self) -> Path:
        return self.dc.ca_file

    @property
    def base_dn(self) -> str:
        return self.dc.base_dn

    @property
    def kerberos_host(self) -> str:
        return self.dc.fqdn

    def upn(self, user: str) -> str:
        return f"{user}@{self.dc.realm.lower()}"

    def location(self, computer: str) -> str:
        return self.seeded.computers[computer].ou_dn

    def keys(self, computer: str) -> list[RecoveryKey]:
        """A computer's keys (by its original name), newest first."""
        return newest_first(computer_spec(computer).keys)

    def record(self, computer: str, key: RecoveryKey, *, source: str = "lab") -> dict[str, Any]:
        """The JSON record `find` must print for ``key`` of ``computer`` (original name)."""
        seeded = self.seeded.computers[computer]
        return {
            "source": source,
            "computer": seeded.name,
            "key_id": key.key_id,
            "recovery_password": key.password,
            "created": key.created_text,
            "volume_type": None,
            "volume_id": str(key.volume_guid).upper(),
            "device_id": None,
            "location": seeded.ou_dn,
            "deleted": seeded.deleted,
        }


@pytest.fixture(scope="session")
def samba_dc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    """A seeded Samba AD DC for the whole session; stopped at the end."""
    _require_samba()
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
    if not _found("kinit"):
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
    """Writes `[sources.lab]` configs for the DC and runs the CLI with them (test_ad.py)."""
    from tests.integration.test_ad import Lab

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
    """Registers apps, writes `[sources.cloud]` configs and runs the CLI (test_entra.py)."""
    from tests.integration.test_entra import Entra

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
