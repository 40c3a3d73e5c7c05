"""An HTTPS emulator of Microsoft Graph (v1.0, some beta) and the Microsoft identity platform,
for the tests, the benchmarks and the Entra lab (examples/lab/entra.py).

Served in a thread on 127.0.0.1 at a free port (or at `port=`, as the lab does), with its
own test CA. It starts with one tenant, its home tenant, whose directory the emulator's own
methods fill::

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

More tenants, and an app registered once that works in each tenant that consents to it::

    fabrikam = graph.add_tenant("fabrikam.onmicrosoft.com")    # -> Tenant
    daemon = graph.add_app(public_client=False, secret="s", multi_tenant=True,
                           app_roles=["BitlockerKey.Read.All"])    # consented at home
    fabrikam.consent(daemon, app_roles=["BitlockerKey.Read.All", "Device.Read.All"])
    ...  # msal with authority=fabrikam.authority: a token whose tid is fabrikam's
    fabrikam.add_recovery_key(fabrikam.add_device("PC-01"))  # seen by fabrikam's tokens only

A Tenant has the directory methods (add_app, add_user, add_device, add_recovery_key, consent,
remove_consent, add_managed_device, add_audit_event), its state (users, devices,
recovery_keys, service_principals, key_reads, managed_devices, rotations, audit_events), its
addresses (authority, access_token_issuer, issuer), settings that default to the emulator's
(recovery_keys_page_size, devices_page_size, managed_devices_page_size, audit_page_size,
latency; rotation_delay is the tenant's own), and add_fault / count /
requests / mint_access_token for itself alone. The identity platform serves every tenant under
/{tenant ID or domain}/ (and /common, /organizations); Graph serves the tenant named by the
access token's `tid`. A client of a tenant where the app has no service principal gets
AADSTS700016, as from Entra.

Large tenants, derived from (seed, index) when a request needs them (see _generated)::

    block = fabrikam.add_generated_keys(100_000, seed=2, keys_per_device=2)  # GeneratedKeys
    fabrikam.generated_key_id(12_345)        # an ID, without building the other 99,999
    block.password(12_345), block.device_id(block.device_of(12_345))
    fabrikam.key_ids()                       # every key ID in list order, no passwords
    graph.keys_sharing_prefix(key_id)        # (tenant, id) pairs with the same 8 hex digits
    fabrikam.add_recovery_key(pc, id_prefix=key_id[:8])  # a key that collides on purpose

Generated keys and devices are listed (paged, $filter, $select), read by ID (audited in
key_reads) and batched like explicit ones; listings return explicit items first.

Intune managed devices, the beta rotateBitLockerKeys action, and the directory audit log::

    managed = fabrikam.add_managed_device(pc, rotation_policy=True)   # -> ManagedDevice
    # GET /v1.0 (or /beta)/deviceManagement/managedDevices?$filter=azureADDeviceId eq '...'
    # POST /beta/deviceManagement/managedDevices/{managed.id}/rotateBitLockerKeys -> 204
    fabrikam.rotations            # [Rotation]: who asked, when, for which managed device
    fabrikam.rotation_delay = 60  # new keys escrowed 60 s of emulator clock later (0: at once)
    graph.advance_clock(61)       # the device's next key listing shows its new keys
    fabrikam.rotation_replaces_keys = True  # ... and no longer the old ones (Delete events)
    fabrikam.audit_events         # [AuditEvent]: every key read served logs "Read BitLocker key"
    fabrikam.add_audit_event("Read BitLocker key", user=agent, key=key, time=when)  # elsewhere
    fabrikam.audit_page_size = 5  # GET /v1.0/auditLogs/directoryAudits pages (newest first)

A managed device added with rotation_policy=False answers the action with 204 too (Graph only
queues it) and never escrows anything. How the action went is in the managed device's
`deviceActionResults` (GET /beta/deviceManagement/managedDevices/{id}); a test scripts it::

    managed.rotation_script = RotationScript(pending_reads=2, outcome="done")  # or "failed"
    # (error_code=...), "notSupported": "pending" for 2 reads by id, then the outcome

The tenant's authorization policy (GET /v1.0/policies/authorizationPolicy, Policy.Read.All)
says whether device owners may read their keys: `fabrikam.owners_read_bitlocker_keys = False`
(True by default, as in Entra; None leaves the property out). Throttle the audit log like
any endpoint: `add_fault(r"/auditLogs/directoryAudits", status=429, retry_after=5)`.

Device changes, for GET /v1.0/devices/delta (see _delta), and throttling of a client that
sends too much at once::

    fabrikam.rename_device(pc, "PC-02"); fabrikam.remove_device(pc)  # in the next delta
    graph.max_in_flight = 4       # a 5th Graph request at once: 429, Retry-After below
    graph.in_flight_retry_after = "1"; graph.throttled  # how many were turned away

Served: OpenID discovery, JWKS, devicecode and token (device code, client credentials with a
secret or a certificate assertion, refresh token) under /{tenant}/; under /v1.0 (and /beta):
devices, devices/delta, informationProtection/bitlocker/recoveryKeys (list and by id), $batch,
deviceManagement/managedDevices (list and by id, with deviceActionResults under /beta),
auditLogs/directoryAudits (list and by id), policies/authorizationPolicy;
under /beta only: deviceManagement/managedDevices/{id}/rotateBitLockerKeys. Permissions the
emulator knows: BitlockerKey.Read.All, BitlockerKey.ReadBasic.All, Device.Read(Write).All,
Directory.Read(Write).All, User.Read(.All), DeviceManagementManagedDevices.Read.All,
DeviceManagementManagedDevices.ReadWrite.All, AuditLog.Read.All, Policy.Read.All and
Policy.ReadWrite.Authorization. See the module docstrings of _identity, _graph, _intune,
_audit and _policies for the contract and where each behaviour comes from.
"""

from ._crypto import ClientCertificate, make_client_certificate
from ._emulator import GraphEmulator
from ._generated import GeneratedKeys
from ._intune import RotationScript
from ._model import (
    AUDIT_ROLES,
    BITLOCKER_ROLES,
    GRAPH_APP_ID,
    INTUNE_ROLES,
    ROLE_TEMPLATE_IDS,
    App,
    AuditEvent,
    Device,
    DeviceCode,
    Fault,
    KeyRead,
    ManagedDevice,
    RecoveryKey,
    RequestRecord,
    Rotation,
    ServicePrincipal,
    User,
    generate_recovery_password,
    is_valid_recovery_password,
)
from ._odata import quote as odata_quote
from ._tenant import Tenant

__all__ = [
    "AUDIT_ROLES",
    "BITLOCKER_ROLES",
    "GRAPH_APP_ID",
    "INTUNE_ROLES",
    "ROLE_TEMPLATE_IDS",
    "App",
    "AuditEvent",
    "ClientCertificate",
    "Device",
    "DeviceCode",
    "Fault",
    "GeneratedKeys",
    "GraphEmulator",
    "KeyRead",
    "ManagedDevice",
    "RecoveryKey",
    "RequestRecord",
    "Rotation",
    "RotationScript",
    "ServicePrincipal",
    "Tenant",
    "User",
    "generate_recovery_password",
    "is_valid_recovery_password",
    "make_client_certificate",
    "odata_quote",
]
