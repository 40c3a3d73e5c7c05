"""The emulated directory: apps, service principals, users, devices, recovery keys, and
what tests inspect."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509

# Microsoft Graph's application ID: a token whose audience is this GUID is for Graph too.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

# Directory role template IDs (Entra "permissions reference"); delegated tokens carry the
# caller's role template IDs in the `wids` claim.
ROLE_TEMPLATE_IDS: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Cloud Device Administrator": "7698a772-787b-4ac8-901f-60d6b08affd2",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Intune Service Administrator": "3a2c62db-5318-420d-8d74-23affee5d9d5",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
}
# bitlockerrecoverykey-get / bitlocker-list-recoverykeys: a delegated caller must own the
# device or hold one of these roles (older versions of the page also list Global
# Administrator, which holds every permission anyway).
BITLOCKER_ROLES = frozenset(ROLE_TEMPLATE_IDS)

# Graph permission names the emulator knows, canonical case (scopes are case-insensitive).
BITLOCKER_READ = "BitlockerKey.Read.All"
BITLOCKER_READ_BASIC = "BitlockerKey.ReadBasic.All"
MANAGED_DEVICES_READ = "DeviceManagementManagedDevices.Read.All"
MANAGED_DEVICES_WRITE = "DeviceManagementManagedDevices.ReadWrite.All"
AUDIT_LOG_READ = "AuditLog.Read.All"
KNOWN_PERMISSIONS = (
    BITLOCKER_READ,
    BITLOCKER_READ_BASIC,
    MANAGED_DEVICES_READ,
    MANAGED_DEVICES_WRITE,
    AUDIT_LOG_READ,
    "Device.Read.All",
    "Device.ReadWrite.All",
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "User.Read",
    "User.Read.All",
    "Policy.Read.All",
    "Policy.ReadWrite.Authorization",
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
)
# rotateBitLockerKeys: a delegated caller also needs an Intune role that allows remote
# actions; the emulator takes these two directory roles for it (Intune RBAC is not modelled).
INTUNE_ROLES = frozenset({"Intune Service Administrator", "Global Administrator"})
# directoryAudit-list: a delegated caller needs a role that may read audit logs; of the roles
# the page lists, those the emulator knows.
AUDIT_ROLES = frozenset(
    {"Global Administrator", "Security Administrator", "Security Reader", "Global Reader"}
)
DEVICE_READERS = frozenset(
    {"Device.Read.All", "Device.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
VOLUME_TYPES = ("operatingSystemVolume", "fixedDataVolume", "removableDataVolume")


def canonical_permission(name: str) -> str | None:
    for known in KNOWN_PERMISSIONS:
        if known.lower() == name.lower():
            return known
    return None


def generate_recovery_password(randbelow: Any = secrets.randbelow) -> str:
    """A valid 48-digit BitLocker recovery password: 8 groups of 11 * k, k < 65536.

    `randbelow` may be a seeded generator's method (e.g. ``random.Random(1).randrange``)
    for reproducible keys.
    """
    return "-".join(f"{11 * randbelow(65536):06d}" for _ in range(8))


_PASSWORD = re.compile(r"^\d{6}(-\d{6}){7}$")


def is_valid_recovery_password(password: str) -> bool:
    if not _PASSWORD.match(password):
        return False
    return all(int(group) % 11 == 0 and int(group) < 11 * 65536 for group in password.split("-"))


def _guid() -> str:
    return str(uuid.uuid4())


@dataclass
class App:
    """An app registration, and its service principal in the tenant it is registered in.

    `delegated_scopes`, `app_roles` and `object_id` are those of the home tenant's service
    principal (the same set objects: changing them changes what that tenant grants). A
    multi-tenant app (signInAudience AzureADMultipleOrgs) gets a service principal of its own
    in every other tenant that consents to it (`Tenant.consent`); its client ID, secrets and
    certificates are the registration's, so they work in each of those tenants.
    """

    client_id: str
    display_name: str
    public_client: bool
    secrets: list[str] = field(default_factory=list)
    certificates: list[x509.Certificate] = field(default_factory=list)
    delegated_scopes: set[str] = field(default_factory=set)  # admin-consented Graph scopes
    app_roles: set[str] = field(default_factory=set)  # Graph application permissions
    object_id: str = field(default_factory=_guid)
    tenant_id: str = ""  # the tenant the app is registered in
    multi_tenant: bool = False
    # Web platform redirect URIs: /authorize sends codes only to one of these, exactly.
    redirect_uris: list[str] = field(default_factory=list)
    # The manifest's groupMembershipClaims ("SecurityGroup", "All", ...): None puts no
    # `groups` claim in ID tokens, as Entra's default.
    group_membership_claims: str | None = None

    @property
    def confidential(self) -> bool:
        return bool(self.secrets or self.certificates)

    @property
    def sign_in_audience(self) -> str:
        return "AzureADMultipleOrgs" if self.multi_tenant else "AzureADMyOrg"


@dataclass
class ServicePrincipal:
    """An app's enterprise application in one tenant, with what that tenant consented to."""

    app: App
    tenant_id: str
    delegated_scopes: set[str] = field(default_factory=set)
    app_roles: set[str] = field(default_factory=set)
    object_id: str = field(default_factory=_guid)


@dataclass
class User:
    id: str
    user_principal_name: str
    display_name: str
    roles: set[str] = field(default_factory=set)  # directory role names (ROLE_TEMPLATE_IDS)
    tenant_id: str = ""
    # For the /authorize sign-in page only; None: the user cannot sign in there.
    password: str | None = field(default=None, repr=False)

    @property
    def role_template_ids(self) -> list[str]:
        return [ROLE_TEMPLATE_IDS[role] for role in sorted(self.roles)]


@dataclass
class Device:
    """A device object: `id` is the directory object ID, `device_id` the ID keys refer to."""

    id: str
    device_id: str
    display_name: str
    operating_system: str | None = "Windows"
    operating_system_version: str | None = "10.0.22631.4460"
    account_enabled: bool = True
    trust_type: str | None = "AzureAd"
    registered_owners: set[str] = field(default_factory=set)  # user object IDs

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deletedDateTime": None,
            "accountEnabled": self.account_enabled,
            "deviceId": self.device_id,
            "displayName": self.display_name,
            "operatingSystem": self.operating_system,
            "operatingSystemVersion": self.operating_system_version,
            "trustType": self.trust_type,
        }


@dataclass
class RecoveryKey:
    id: str
    device_id: str
    key: str
    created: dt.datetime
    volume_type: str = "operatingSystemVolume"

    def metadata(self) -> dict[str, Any]:
        return {
            "id": self.id,
            # Graph's own format: seven fractional digits and Z.
            "createdDateTime": f"{self.created.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S.%f}0Z",
            "volumeType": self.volume_type,
            "deviceId": self.device_id,
        }


@dataclass(frozen=True)
class KeyRead:
    """One audited read of a recovery password (Entra audit log, KeyManagement category)."""

    key_id: str
    device_id: str
    app_id: str
    user_id: str | None
    user_principal_name: str | None
    time: dt.datetime
    request_id: str
    tenant_id: str = ""


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the emulator answered (a $batch item is recorded as well)."""

    method: str
    path: str
    query: str
    status: int
    time: float
    via_batch: bool
    request_id: str
    headers: dict[str, str]
    grant_type: str | None = None  # token endpoint requests only
    tenant_id: str | None = None  # the tenant the request was for, when it names a known one


@dataclass
class Fault:
    """Answer `times` matching requests with `status` (and Retry-After) instead of serving."""

    path: re.Pattern[str]
    method: str | None
    status: int
    times: int
    retry_after: str | None
    in_batch: bool | None
    served: int = 0
    tenant_id: str | None = None  # None: requests for any tenant

    def matches(
        self, method: str, path: str, via_batch: bool, tenant_id: str | None = None
    ) -> bool:
        if self.served >= self.times:
            return False
        if self.tenant_id is not None and self.tenant_id != tenant_id:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.in_batch is not None and self.in_batch != via_batch:
            return False
        return self.path.search(path) is not None


DeviceCodeState = Literal["pending", "approved", "declined", "expired", "redeemed"]


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    issued_at: float
    expires_at: float
    interval: int
    state: DeviceCodeState = "pending"
    user: User | None = None
    polls: int = 0
    tenant_id: str | None = None  # None: asked at /common or /organizations


@dataclass
class RefreshGrant:
    client_id: str
    user_id: str
    issued_at: float
    expires_at: float
    revoked: bool = False
    tenant_id: str = ""


def graph_datetime(value: dt.datetime) -> str:
    """Graph's DateTimeOffset format: UTC, seven fractional digits and Z."""
    return f"{value.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S.%f}0Z"


@dataclass
class ManagedDevice:
    """An Intune managed device: `id` is the managed device ID, `azure_ad_device_id` the
    Entra deviceId of the device object it is joined as (what recovery keys refer to).
    `rotation_policy`: the device has client-driven recovery password rotation enabled and
    saves keys to Entra ID, so rotateBitLockerKeys makes it escrow new keys."""

    id: str
    device: Device
    rotation_policy: bool = True
    user_principal_name: str | None = None
    enrolled: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    serial_number: str = field(default_factory=lambda: secrets.token_hex(6).upper())
    # rotateBitLockerKeys' outcome as a test scripts it (_intune.RotationScript), and the
    # device action results Intune shows for it (_intune.ActionResult).
    rotation_script: Any = None
    action_results: list[Any] = field(default_factory=list)

    @property
    def azure_ad_device_id(self) -> str:
        return self.device.device_id

    def to_graph(self) -> dict[str, Any]:
        enrolled = graph_datetime(self.enrolled)
        return {
            "@odata.type": "#microsoft.graph.managedDevice",
            "id": self.id,
            "userId": None,
            "deviceName": self.device.display_name,
            "managedDeviceOwnerType": "company",
            "enrolledDateTime": enrolled,
            "lastSyncDateTime": enrolled,
            "operatingSystem": self.device.operating_system,
            "complianceState": "compliant",
            "managementAgent": "mdm",
            "osVersion": self.device.operating_system_version,
            "azureADRegistered": True,
            "deviceEnrollmentType": "windowsAzureADJoin",
            "azureADDeviceId": self.device.device_id,
            "deviceRegistrationState": "registered",
            "isEncrypted": True,
            "userPrincipalName": self.user_principal_name,
            "model": "Emulated PC",
            "manufacturer": "Emulator",
            "serialNumber": self.serial_number,
            "userDisplayName": None,
            "managedDeviceName": f"{self.device.display_name}_Windows",
        }


@dataclass(frozen=True)
class Rotation:
    """One rotateBitLockerKeys call that Intune accepted (204)."""

    managed_device_id: str
    device_id: str  # the Entra deviceId of the managed device
    app_id: str
    user_id: str | None
    user_principal_name: str | None
    time: dt.datetime
    request_id: str
    tenant_id: str = ""
    escrow_due: dt.datetime | None = None  # None: the device has no rotation policy


@dataclass
class AuditEvent:
    """One Entra directory audit event (directoryAudit), as GET /auditLogs/directoryAudits
    returns it. `initiated_by` is {"user": {...}} or {"app": {...}}."""

    activity_display_name: str
    activity_date_time: dt.datetime
    category: str = "KeyManagement"
    result: str = "success"
    result_reason: str = ""
    logged_by_service: str = "Core Directory"
    operation_type: str = "Read"
    initiated_by: dict[str, Any] = field(default_factory=dict)
    target_resources: list[dict[str, Any]] = field(default_factory=list)
    additional_details: list[dict[str, str]] = field(default_factory=list)
    id: str = field(default_factory=_guid)
    correlation_id: str = field(default_factory=_guid)

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "correlationId": self.correlation_id,
            "result": self.result,
            "resultReason": self.result_reason,
            "activityDisplayName": self.activity_display_name,
            "activityDateTime": graph_datetime(self.activity_date_time),
            "loggedByService": self.logged_by_service,
            "operationType": self.operation_type,
            "initiatedBy": {
                "user": self.initiated_by.get("user"),
                "app": self.initiated_by.get("app"),
            },
            "targetResources": list(self.target_resources),
            "additionalDetails": list(self.additional_details),
        }


@dataclass
class Group:
    """A security group; `members` holds user and group object IDs (nesting counts for
    transitiveMemberOf and the `groups` claim)."""

    id: str
    display_name: str
    members: set[str] = field(default_factory=set)
    security_enabled: bool = True


@dataclass
class AuthCode:
    """An authorization code /authorize issued: single use, short-lived, bound to the app,
    the redirect URI and the PKCE challenge it was asked with."""

    code: str
    client_id: str
    redirect_uri: str
    user: User
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    redeemed: bool = False
