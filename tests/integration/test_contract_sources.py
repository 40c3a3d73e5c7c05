"""The Active Directory and Entra ID sources keep the source contract (bitkey_dir.testing),
against the Samba DC and the Graph emulator."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bitkey_dir.core.model import KeyId, KeyPackage, RecoveryKey, RecoveryPassword
from bitkey_dir.testing import SourceContract
from examples.lab.graph_emulator import GraphEmulator
from tests.integration.fixtures import SECRET, Directory
from tests.integration.seed import DOMAIN, PLAIN, SPEC, WORKSTATIONS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]
# Reading keys, and what rotate (Intune) and iter_key_reads (the audit log) need.
ROLES = (
    "BitlockerKey.Read.All",
    "Device.Read.All",
    "DeviceManagementManagedDevices.ReadWrite.All",
    "AuditLog.Read.All",
    "RoleManagement.Read.Directory",  # rights show: who holds a role that reads keys
)


def expected(
    key_id: str,
    password: str,
    computer: str,
    *,
    deleted: bool = False,
    key_package: bytes | None = None,
) -> RecoveryKey:
    return RecoveryKey(
        SourceContract.name,
        KeyId.parse(key_id),
        RecoveryPassword.parse(password),
        computer=computer,
        deleted=deleted,
        key_package=KeyPackage(key_package) if key_package else None,
    )


class TestADSource(SourceContract):
    directory: Directory

    @pytest.fixture(autouse=True)
    def _as_domain_admin(self, samba_dc: Directory, monkeypatch: pytest.MonkeyPatch) -> None:
        self.directory = samba_dc
        monkeypatch.setenv("BITKEY_DIR_PASSWORD", samba_dc.dc.admin_password)

    def table(self, servers: list[str]) -> dict[str, object]:
        return {
            "type": "ad",
            "servers": servers,
            "ca_file": str(self.directory.ca_file),
            "user": self.directory.dc.admin_principal,
            "timeout": 5,
            "page_size": 7,
        }

    def settings(self) -> dict[str, object]:
        return self.table([self.directory.url])

    def failing_settings(self) -> dict[str, object]:
        return self.table(["ldaps://127.0.0.1:9"])  # the discard port: nobody listens

    def secrets(self) -> Sequence[str]:
        return [self.directory.dc.admin_password]

    def rights_scope(self) -> str:
        return self.directory.dc.dn(WORKSTATIONS)

    def rights_principal(self) -> str:
        return f"{DOMAIN}\\{PLAIN.name}"

    def expected_keys(self) -> Sequence[RecoveryKey]:
        live = self.directory.keys("WS001")[0]
        (gone,) = [spec for spec in SPEC.computers if spec.delete]
        deleted = gone.keys[0]
        return [
            expected(
                live.key_id,
                live.password,
                self.directory.seeded.computers["WS001"].name,
                key_package=live.key_package,
            ),
            expected(deleted.key_id, deleted.password, gone.name, deleted=True),
        ]


class TestEntraSource(SourceContract):
    graph: GraphEmulator
    keys: list[RecoveryKey]

    @pytest.fixture(autouse=True)
    def _tenant(self, graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
        self.graph = graph
        app = graph.add_app(
            "bitkey-dir daemon",
            public_client=False,
            secret=SECRET,
            app_roles=ROLES,
        )
        self.client_id = app.client_id
        monkeypatch.setenv("BITKEY_DIR_CLIENT_SECRET", SECRET)
        self.keys = []
        for name in ("PC-0042", "PC-0043", "LAPTOP-7"):
            device = graph.add_device(name)
            for _ in range(2):
                made = graph.add_recovery_key(device)
                self.keys.append(expected(made.id, made.key, name))
            if name == "PC-0042":  # the key rotate is asked about: Intune manages it
                graph.add_managed_device(device)

    def table(self, url: str) -> dict[str, object]:
        return {
            "type": "entra",
            "tenant_id": self.graph.tenant_id,
            "client_id": self.client_id,
            "auth": "client-secret",
            "authority_host": url,
            "graph_url": self.graph.graph_url,
            "ca_file": str(self.graph.ca_file),
            "timeout": 5,
        }

    def settings(self) -> dict[str, object]:
        return self.table(self.graph.base_url)

    def failing_settings(self) -> dict[str, object]:
        return self.table("https://127.0.0.1:9")

    def secrets(self) -> Sequence[str]:
        return [SECRET]

    def expected_keys(self) -> Sequence[RecoveryKey]:
        return self.keys


class TestEntraTenants(TestEntraSource):
    """One source over two tenants (``tenant_ids``): the whole source, and its parts."""

    @pytest.fixture(autouse=True)
    def _tenant(self, graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
        self.graph = graph
        app = graph.add_app(
            "bitkey-dir msp", public_client=False, secret=SECRET, app_roles=ROLES, multi_tenant=True
        )
        self.client_id = app.client_id
        monkeypatch.setenv("BITKEY_DIR_CLIENT_SECRET", SECRET)
        fabrikam = graph.add_tenant("fabrikam.onmicrosoft.com")
        fabrikam.consent(app, app_roles=list(ROLES))
        self.tenants = [graph.tenant_id, "fabrikam.onmicrosoft.com"]
        self.keys = []
        for directory, name in ((graph, "PC-0042"), (fabrikam, "FAB-01")):
            device = directory.add_device(name)
            for _ in range(2):
                made = directory.add_recovery_key(device)
                self.keys.append(expected(made.id, made.key, name))

    def table(self, url: str) -> dict[str, object]:
        table = super().table(url)
        del table["tenant_id"]
        return {**table, "tenant_ids": self.tenants}
