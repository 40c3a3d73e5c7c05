"""An HTTPS emulator of Microsoft Graph v1.0 and the Microsoft identity platform, for tests.

One tenant, served in a thread on 127.0.0.1 at a free port, with its own test CA::

    with GraphEmulator(tmp_path / "graph") as graph:
        app = graph.add_app(delegated_scopes=["BitlockerKey.Read.All", "Device.Read.All"])
        agent = graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
        pc = graph.add_device("PC-01")
        key = graph.add_recovery_key(pc)
        ...  # point msal at graph.authority, msgraph at graph.graph_v1, trust graph.ca_file
        flow = graph.wait_for_device_code()
        graph.approve_device_code(flow, agent)
        assert graph.count(r"/recoveryKeys/", method="GET") == 1
        assert [read.key_id for read in graph.key_reads] == [key.id]

Served: OpenID discovery, JWKS, devicecode and token (device code, client credentials with a
secret or a certificate assertion, refresh token) under /{tenant}/; under /v1.0: devices,
informationProtection/bitlocker/recoveryKeys (list and by id) and $batch. See the module
docstrings of _identity and _graph for the contract and where each behaviour comes from.
"""

from ._crypto import ClientCertificate, make_client_certificate
from ._emulator import GraphEmulator
from ._generated import GeneratedKeys
from ._model import (
    BITLOCKER_ROLES,
    GRAPH_APP_ID,
    ROLE_TEMPLATE_IDS,
    App,
    Device,
    DeviceCode,
    Fault,
    KeyRead,
    RecoveryKey,
    RequestRecord,
    ServicePrincipal,
    User,
    generate_recovery_password,
    is_valid_recovery_password,
)
from ._odata import quote as odata_quote
from ._tenant import Tenant

__all__ = [
    "BITLOCKER_ROLES",
    "GRAPH_APP_ID",
    "ROLE_TEMPLATE_IDS",
    "App",
    "ClientCertificate",
    "Device",
    "DeviceCode",
    "Fault",
    "GeneratedKeys",
    "GraphEmulator",
    "KeyRead",
    "RecoveryKey",
    "RequestRecord",
    "ServicePrincipal",
    "Tenant",
    "User",
    "generate_recovery_password",
    "is_valid_recovery_password",
    "make_client_certificate",
    "odata_quote",
]
