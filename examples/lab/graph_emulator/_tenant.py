"""One Entra tenant of the emulator: its directory, consents, audit log and settings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from cryptography import x509

from ._crypto import ClientCertificate
from ._generated import GeneratedKeys
from ._model import (
    ROLE_TEMPLATE_IDS,
    VOLUME_TYPES,
    App,
    AuditEvent,
    Device,
    Fault,
    Group,
    KeyRead,
    ManagedDevice,
    RecoveryKey,
    RequestRecord,
    Rotation,
    ServicePrincipal,
    User,
    canonical_permission,
    generate_recovery_password,
)

if TYPE_CHECKING:
    from ._emulator import GraphEmulator, RetryAfter

_HEX_PREFIX = re.compile(r"^[0-9a-fA-F]{1,8}(-[0-9a-fA-F]{0,4}){0,4}$")


class Tenant:
    """A directory with its own ID and domains, served under /{tenant ID or domain}/ by the
    identity platform and, for Graph, to access tokens whose `tid` is its ID.

    Get one from `GraphEmulator.add_tenant()` (or `GraphEmulator.home`, the tenant the
    emulator starts with). Settings left at None (`recovery_keys_page_size`,
    `devices_page_size`, `managed_devices_page_size`, `audit_page_size`, `latency`) follow
    the emulator's. `rotation_delay`: seconds of emulator clock between an accepted
    rotateBitLockerKeys and the device escrowing its new keys (0: at once);
    `rotation_replaces_keys`: whether the rotated old keys are then deleted.
    """

    def __init__(self, emulator: GraphEmulator, tenant_id: str, domain: str) -> None:
        self.emulator = emulator
        self.tenant_id = tenant_id
        self.domains = [domain]
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}  # security groups, by object ID
        self.devices: list[Device] = []
        self.recovery_keys: dict[str, RecoveryKey] = {}  # explicit keys, by lower-case ID
        self.generated: list[GeneratedKeys] = []  # generated blocks, in the order added
        self.service_principals: dict[str, ServicePrincipal] = {}  # by lower-case client ID
        self.key_reads: list[KeyRead] = []  # this tenant's audit log of password reads
        self.managed_devices: list[ManagedDevice] = []  # Intune, in enrolment order
        self.rotations: list[Rotation] = []  # accepted rotateBitLockerKeys calls
        self.audit_events: list[AuditEvent] = []  # directoryAudits, in the order logged
        self.rotation_delay: float = 0.0
        # True: a rotation also deletes the rotated volumes' old keys from Entra, logging
        # "Delete BitLocker key" for each (what published runbooks watch for after a
        # rotation); False (default): the old keys stay beside the new ones.
        self.rotation_replaces_keys = False
        # authorizationPolicy.defaultUserRolePermissions.allowedToReadBitlockerKeysForOwnedDevice
        # (_policies): true by default in Entra, as here.
        self.owners_read_bitlocker_keys = True
        # Custom directory roles (_roles): role ID → (display name, allowed resource actions),
        # and the user IDs each is assigned to, at directory scope.
        self.custom_roles: dict[str, tuple[str, list[str]]] = {}
        self.custom_role_members: dict[str, set[str]] = {}
        self._pending_escrows: list[Rotation] = []
        # The devices/delta change log (_delta): (sequence number, object ID) per change.
        self.device_change_seq = 0
        self._device_changes: list[tuple[int, str]] = []
        self._recovery_keys_page_size: int | None = None
        self._managed_devices_page_size: int | None = None
        self._audit_page_size: int | None = None
        self._devices_page_size: int | None = None
        self._latency: float | None = None

    def __repr__(self) -> str:
        return f"Tenant({self.domain!r}, tenant_id={self.tenant_id!r})"

    # -- names and addresses ----------------------------------------------------------------

    @property
    def domain(self) -> str:
        """The initial domain, e.g. contoso.onmicrosoft.com."""
        return self.domains[0]

    def is_named(self, name: str) -> bool:
        """True for this tenant's ID or one of its domains (case ignored)."""
        lowered = name.lower()
        return lowered == self.tenant_id.lower() or lowered in (d.lower() for d in self.domains)

    @property
    def authority(self) -> str:
        """What MSAL's `authority` must be to sign in to this tenant."""
        return f"{self.emulator.base_url}/{self.tenant_id}"

    @property
    def access_token_issuer(self) -> str:
        """`iss` of v1.0 access tokens (Graph's), as https://sts.windows.net/{tid}/ is."""
        return f"{self.emulator.base_url}/{self.tenant_id}/"

    @property
    def issuer(self) -> str:
        """`iss` of v2.0 tokens (ID tokens) and of the OpenID metadata."""
        return f"{self.emulator.base_url}/{self.tenant_id}/v2.0"

    # -- settings ---------------------------------------------------------------------------

    @property
    def recovery_keys_page_size(self) -> int:
        size = self._recovery_keys_page_size
        return self.emulator.recovery_keys_page_size if size is None else size

    @recovery_keys_page_size.setter
    def recovery_keys_page_size(self, value: int | None) -> None:
        self._recovery_keys_page_size = value

    @property
    def devices_page_size(self) -> int:
        size = self._devices_page_size
        return self.emulator.devices_page_size if size is None else size

    @devices_page_size.setter
    def devices_page_size(self, value: int | None) -> None:
        self._devices_page_size = value

    @property
    def managed_devices_page_size(self) -> int:
        size = self._managed_devices_page_size
        return self.emulator.managed_devices_page_size if size is None else size

    @managed_devices_page_size.setter
    def managed_devices_page_size(self, value: int | None) -> None:
        self._managed_devices_page_size = value

    @property
    def audit_page_size(self) -> int:
        """directoryAudits per page when the request has no $top."""
        size = self._audit_page_size
        return self.emulator.audit_page_size if size is None else size

    @audit_page_size.setter
    def audit_page_size(self, value: int | None) -> None:
        self._audit_page_size = value

    @property
    def latency(self) -> float:
        """Seconds added to every HTTP request for this tenant (by token `tid` on Graph,
        by path on the identity platform)."""
        return self.emulator.latency if self._latency is None else self._latency

    @latency.setter
    def latency(self, value: float | None) -> None:
        self._latency = value

    # -- apps and consent -------------------------------------------------------------------

    def add_app(
        self,
        display_name: str = "bitkey-dir",
        *,
        client_id: str | None = None,
        public_client: bool = True,
        secret: str | None = None,
        certificate: x509.Certificate | ClientCertificate | None = None,
        delegated_scopes: Iterable[str] = (),
        app_roles: Iterable[str] = (),
        multi_tenant: bool = False,
        redirect_uris: Iterable[str] = (),
        group_membership_claims: str | None = None,
    ) -> App:
        """Register an app in this tenant, with its service principal here; `delegated_scopes`
        / `app_roles` are admin-consented Graph permissions (e.g. "BitlockerKey.Read.All").
        A `multi_tenant` app can be consented to in other tenants with `consent`.
        `redirect_uris`: its web redirect URIs (authorization code flow);
        `group_membership_claims` ("SecurityGroup"): ID tokens carry a `groups` claim."""
        if isinstance(certificate, ClientCertificate):
            certificate = certificate.certificate
        app = App(
            client_id=client_id or str(uuid.uuid4()),
            display_name=display_name,
            public_client=public_client,
            secrets=[secret] if secret else [],
            certificates=[certificate] if certificate is not None else [],
            delegated_scopes={permission(p) for p in delegated_scopes},
            app_roles={permission(p) for p in app_roles},
            tenant_id=self.tenant_id,
            multi_tenant=multi_tenant,
            redirect_uris=list(redirect_uris),
            group_membership_claims=group_membership_claims,
        )
        emulator = self.emulator
        with emulator.lock:
            if app.client_id.lower() in emulator.apps:
                raise ValueError(f"an app with client ID {app.client_id} is registered already")
            emulator.apps[app.client_id.lower()] = app
            # The home service principal shares the registration's permission sets.
            self.service_principals[app.client_id.lower()] = ServicePrincipal(
                app=app,
                tenant_id=self.tenant_id,
                delegated_scopes=app.delegated_scopes,
                app_roles=app.app_roles,
                object_id=app.object_id,
            )
        return app

    def consent(
        self, app: App, *, app_roles: Iterable[str] = (), delegated_scopes: Iterable[str] = ()
    ) -> ServicePrincipal:
        """An administrator of this tenant consents to `app`: its service principal is created
        here (once) and granted these Graph permissions, on top of any granted before."""
        if app.tenant_id != self.tenant_id and not app.multi_tenant:
            raise ValueError(
                f"{app.display_name!r} is a single-tenant app of {app.tenant_id}: only "
                "multi-tenant apps (add_app(multi_tenant=True)) can be used in other tenants"
            )
        roles = {permission(p) for p in app_roles}
        scopes = {permission(p) for p in delegated_scopes}
        with self.emulator.lock:
            principal = self.service_principals.get(app.client_id.lower())
            if principal is None:
                principal = ServicePrincipal(app=app, tenant_id=self.tenant_id)
                self.service_principals[app.client_id.lower()] = principal
            principal.app_roles.update(roles)
            principal.delegated_scopes.update(scopes)
        return principal

    def remove_consent(self, app: App) -> None:
        """Delete `app`'s service principal here (Enterprise applications > Delete): its
        tokens for this tenant stop being issued (AADSTS700016)."""
        with self.emulator.lock:
            self.service_principals.pop(app.client_id.lower(), None)

    def service_principal(self, app: App | str) -> ServicePrincipal | None:
        client_id = app.client_id if isinstance(app, App) else app
        return self.service_principals.get(client_id.lower())

    # -- directory --------------------------------------------------------------------------

    def add_user(
        self,
        user_principal_name: str,
        *,
        display_name: str | None = None,
        roles: Iterable[str] = (),
        user_id: str | None = None,
        password: str | None = None,
    ) -> User:
        """Add a user; `roles` are directory role names such as "Helpdesk Administrator";
        `password` lets them sign in on the /authorize page."""
        role_set = set(roles)
        unknown = role_set - set(ROLE_TEMPLATE_IDS)
        if unknown:
            raise ValueError(
                f"unknown directory roles {sorted(unknown)}; known: {ROLE_TEMPLATE_IDS}"
            )
        user = User(
            id=user_id or str(uuid.uuid4()),
            user_principal_name=user_principal_name,
            display_name=display_name or user_principal_name.split("@", maxsplit=1)[0],
            roles=role_set,
            tenant_id=self.tenant_id,
            password=password,
        )
        with self.emulator.lock:
            self.users[user.id] = user
        return user

    def add_group(
        self,
        display_name: str,
        members: Iterable[User | Group] = (),
        *,
        group_id: str | None = None,
    ) -> Group:
        """A security group of users and groups (nested groups count for their members)."""
        group = Group(group_id or str(uuid.uuid4()), display_name, {m.id for m in members})
        with self.emulator.lock:
            self.groups[group.id] = group
        return group

    def user_named(self, name: str) -> User | None:
        """The user whose UPN is `name` (case ignored)."""
        wanted = name.strip().lower()
        return next(
            (u for u in list(self.users.values()) if u.user_principal_name.lower() == wanted),
            None,
        )

    def transitive_groups(self, user: User) -> list[Group]:
        """The groups `user` is in, directly or through nested groups, in the order added."""
        with self.emulator.lock:
            within = {user.id}
            grew = True
            while grew:
                before = len(within)
                within |= {g.id for g in self.groups.values() if g.members & within}
                grew = len(within) != before
            return [g for g in self.groups.values() if g.id in within]

    def add_custom_role(
        self, display_name: str, actions: Iterable[str], members: Iterable[User] = ()
    ) -> str:
        """Add a custom directory role allowing ``actions`` (e.g.
        microsoft.directory/bitlockerKeys/key/read), assigned to ``members``; its ID."""
        role_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tenant_id}/roles/{display_name}"))
        self.custom_roles[role_id] = (display_name, list(actions))
        self.custom_role_members[role_id] = {user.id for user in members}
        return role_id

    def add_device(
        self,
        display_name: str,
        *,
        device_id: str | None = None,
        object_id: str | None = None,
        operating_system: str | None = "Windows",
        owners: Iterable[User] = (),
    ) -> Device:
        """Add a device object. Display names need not be unique, as in Entra ID."""
        device = Device(
            id=object_id or str(uuid.uuid4()),
            device_id=device_id or str(uuid.uuid4()),
            display_name=display_name,
            operating_system=operating_system,
            registered_owners={user.id for user in owners},
        )
        with self.emulator.lock:
            self.devices.append(device)
            self._device_changed(device.id)
        return device

    def rename_device(self, device: Device, display_name: str) -> None:
        """Change a device's display name (a change devices/delta reports)."""
        with self.emulator.lock:
            device.display_name = display_name
            self._device_changed(device.id)

    def remove_device(self, device: Device) -> None:
        """Delete a device object; its recovery keys stay (orphans, as tests need them)."""
        with self.emulator.lock:
            self.devices.remove(device)
            self._device_changed(device.id)

    def _device_changed(self, object_id: str) -> None:
        self.device_change_seq += 1
        self._device_changes.append((self.device_change_seq, object_id))

    def device_changes_since(self, seq: int) -> list[Device | str]:
        """Each device changed after ``seq`` once, as it is now; a deleted one by its ID."""
        with self.emulator.lock:
            changed = list(dict.fromkeys(oid for n, oid in self._device_changes if n > seq))
            return [self.find_device(oid) or oid for oid in changed]

    def add_recovery_key(
        self,
        device: Device | str,
        *,
        key: str | None = None,
        key_id: str | None = None,
        id_prefix: str | None = None,
        created: dt.datetime | None = None,
        volume_type: str = "operatingSystemVolume",
    ) -> RecoveryKey:
        """Escrow a recovery key for `device` (a Device or a deviceId); the password is
        generated when not given. `id_prefix` (e.g. another key's ID[:8]): a random ID that
        starts with it, for Key ID prefix collisions."""
        if volume_type not in (*VOLUME_TYPES, "unknownFutureValue", "1"):
            raise ValueError(f"volume_type must be one of {VOLUME_TYPES}")
        if key_id is not None and id_prefix is not None:
            raise ValueError("give key_id or id_prefix, not both")
        if id_prefix is not None:
            if not _HEX_PREFIX.match(id_prefix):
                raise ValueError(f"id_prefix {id_prefix!r} is not the start of a GUID")
            random_id = str(uuid.uuid4())
            key_id = id_prefix.lower() + random_id[len(id_prefix) :]
        recovery_key = RecoveryKey(
            id=key_id or str(uuid.uuid4()),
            device_id=device.device_id if isinstance(device, Device) else device,
            key=key or generate_recovery_password(),
            created=created or self.emulator.now_datetime().replace(microsecond=0),
            volume_type=volume_type,
        )
        with self.emulator.lock:
            self.recovery_keys[recovery_key.id.lower()] = recovery_key
        return recovery_key

    def add_generated_keys(
        self, count: int, *, seed: int = 0, keys_per_device: int = 1, name_prefix: str = "GEN"
    ) -> GeneratedKeys:
        """Add `count` keys on ceil(count / keys_per_device) Windows devices named
        f"{name_prefix}-000000"..., all derived from (seed, index) when a request needs them
        (see _generated). Same seed, same IDs: give each block of a tenant its own seed, and
        tenants that must not share IDs different seeds."""
        block = GeneratedKeys(
            count, seed=seed, keys_per_device=keys_per_device, name_prefix=name_prefix
        )
        with self.emulator.lock:
            if any(other.seed == seed for other in self.generated):
                raise ValueError(f"this tenant has a generated block with seed {seed} already")
            self.generated.append(block)
        return block

    # -- Intune -----------------------------------------------------------------------------

    def add_managed_device(
        self,
        device: Device | str,
        *,
        rotation_policy: bool = True,
        managed_device_id: str | None = None,
        user_principal_name: str | None = None,
    ) -> ManagedDevice:
        """Enrol `device` (a Device or a deviceId of this tenant) in Intune. With
        `rotation_policy` the device rotates its recovery passwords when asked
        (rotateBitLockerKeys); without it the action is accepted and nothing happens."""
        found = self.device_by_device_id(device if isinstance(device, str) else device.device_id)
        if found is None:
            raise ValueError(f"no device with deviceId {device!r} in {self!r}")
        managed = ManagedDevice(
            id=managed_device_id or str(uuid.uuid4()),
            device=found,
            rotation_policy=rotation_policy,
            user_principal_name=user_principal_name,
            enrolled=self.emulator.now_datetime().replace(microsecond=0),
        )
        with self.emulator.lock:
            if self.find_managed_device(managed.id) is not None:
                raise ValueError(f"managed device {managed.id} exists already")
            self.managed_devices.append(managed)
        return managed

    def find_managed_device(self, managed_device_id: str) -> ManagedDevice | None:
        lowered = managed_device_id.lower()
        return next((m for m in self.managed_devices if m.id.lower() == lowered), None)

    def device_by_device_id(self, device_id: str) -> Device | None:
        """An explicit or generated device by deviceId (case ignored)."""
        lowered = device_id.lower()
        for device in self.devices:
            if device.device_id.lower() == lowered:
                return device
        for block in self.generated:
            index = block.device_index(device_id)
            if index is not None:
                return block.device(index)
        return None

    def record_rotation(self, rotation: Rotation) -> None:
        """Graph accepted a rotation: log it, and schedule the escrow when it will happen."""
        with self.emulator.lock:
            self.rotations.append(rotation)
            if rotation.escrow_due is not None:
                self._pending_escrows.append(rotation)
        self.escrow_due_rotations()

    def escrow_now(self, rotation: Rotation) -> list[RecoveryKey]:
        """The device of `rotation` escrows its new keys now (a scripted rotation is done)."""
        with self.emulator.lock:
            self._pending_escrows.append(
                dataclasses.replace(rotation, escrow_due=self.emulator.now_datetime())
            )
        return self.escrow_due_rotations()

    def escrow_due_rotations(self) -> list[RecoveryKey]:
        """Escrow the new keys of rotations whose delay has passed on the emulator's clock:
        one new key per volume type the device has explicit keys for (operating system
        and fixed data volumes; removable drives are not rotated), an OS volume key when
        it has none. Runs before every Graph request; tests may call it too."""
        now = self.emulator.now_datetime()
        escrowed = []
        with self.emulator.lock:
            due = [r for r in self._pending_escrows if r.escrow_due and r.escrow_due <= now]
            for rotation in due:
                self._pending_escrows.remove(rotation)
                lowered = rotation.device_id.lower()
                volumes = {
                    key.volume_type
                    for key in self.recovery_keys.values()
                    if key.device_id.lower() == lowered and key.volume_type != "removableDataVolume"
                }
                replaced = [
                    key
                    for key in self.recovery_keys.values()
                    if key.device_id.lower() == lowered and key.volume_type in volumes
                ]
                for volume in sorted(volumes or {"operatingSystemVolume"}):
                    escrowed.append(
                        self.add_recovery_key(
                            rotation.device_id, volume_type=volume, created=rotation.escrow_due
                        )
                    )
                if self.rotation_replaces_keys:
                    for key in replaced:
                        self.delete_recovery_key(key, time=rotation.escrow_due)
        return escrowed

    def delete_recovery_key(self, key: RecoveryKey, *, time: dt.datetime | None = None) -> None:
        """Remove an explicit key from Entra and log "Delete BitLocker key", whose
        targetResources[0].displayName is the key ID (as the reference notes say)."""
        with self.emulator.lock:
            self.recovery_keys.pop(key.id.lower(), None)
            self.audit_events.append(
                AuditEvent(
                    activity_display_name="Delete BitLocker key",
                    activity_date_time=time or self.emulator.now_datetime(),
                    operation_type="Delete",
                    target_resources=[
                        {
                            "id": key.id,
                            "displayName": key.id,
                            "type": "Other",
                            "userPrincipalName": None,
                            "groupType": None,
                            "modifiedProperties": [],
                        }
                    ],
                )
            )

    # -- directory audit log ----------------------------------------------------------------

    def add_audit_event(
        self,
        activity: str = "Read BitLocker key",
        *,
        time: dt.datetime | None = None,
        user: User | None = None,
        app: App | None = None,
        key: RecoveryKey | None = None,
        device: Device | None = None,
        category: str = "KeyManagement",
        result: str = "success",
        operation_type: str = "Read",
        additional_details: list[dict[str, str]] | None = None,
        target_resources: list[dict[str, Any]] | None = None,
    ) -> AuditEvent:
        """Log a directory audit event made elsewhere (the portal, another script): by
        `user` (delegated) or `app` (app-only), about `key` (its device is the target and the
        detail sentence names both), at `time` (default: now on the emulator's clock)."""
        if device is None and key is not None:
            device = self.device_by_device_id(key.device_id)
        details = additional_details
        if details is None:
            details = [key_detail(key.id, device, key.device_id)] if key is not None else []
        event = AuditEvent(
            activity_display_name=activity,
            activity_date_time=time or self.emulator.now_datetime(),
            category=category,
            result=result,
            operation_type=operation_type,
            initiated_by=self.initiator(user=user, app_id=app.client_id if app else None),
            target_resources=target_resources
            if target_resources is not None
            else ([device_target(device)] if device is not None else []),
            additional_details=details,
        )
        with self.emulator.lock:
            self.audit_events.append(event)
        return event

    def initiator(self, *, user: User | None, app_id: str | None) -> dict[str, Any]:
        """initiatedBy: the user for delegated calls, else the app and its service principal
        in this tenant."""
        if user is not None:
            return {
                "user": {
                    "id": user.id,
                    "displayName": user.display_name,
                    "userPrincipalName": user.user_principal_name,
                    "ipAddress": "127.0.0.1",
                    "userType": "Member",
                    "homeTenantId": self.tenant_id,
                    "homeTenantName": None,
                }
            }
        if app_id is None:
            return {}
        principal = self.service_principal(app_id)
        return {
            "app": {
                "appId": app_id,
                "displayName": principal.app.display_name if principal else None,
                "servicePrincipalId": principal.object_id if principal else None,
                "servicePrincipalName": None,
            }
        }

    # -- what tests and benchmarks inspect --------------------------------------------------

    @property
    def generated_key_count(self) -> int:
        return sum(block.count for block in self.generated)

    @property
    def key_count(self) -> int:
        """Explicit and generated recovery keys."""
        return len(self.recovery_keys) + self.generated_key_count

    @property
    def device_count(self) -> int:
        return len(self.devices) + sum(block.device_count for block in self.generated)

    def _generated_at(self, index: int) -> tuple[GeneratedKeys, int]:
        if index >= 0:
            for block in self.generated:
                if index < block.count:
                    return block, index
                index -= block.count
        raise IndexError(f"generated key index out of range 0..{self.generated_key_count - 1}")

    def generated_key_id(self, index: int) -> str:
        """The ID of generated key `index`, counting across blocks in the order added."""
        block, local = self._generated_at(index)
        return block.key_id(local)

    def generated_key_prefix(self, index: int) -> str:
        """The first 8 hex digits of generated key `index`'s ID."""
        block, local = self._generated_at(index)
        return block.key_prefix(local)

    def generated_key(self, index: int) -> RecoveryKey:
        """Generated key `index`, password included (built on each call)."""
        block, local = self._generated_at(index)
        return block.recovery_key(local)

    def key_ids(self) -> Iterator[str]:
        """Every key ID, in the order the list endpoint returns them, without passwords."""
        yield from (key.id for key in list(self.recovery_keys.values()))
        for block in list(self.generated):
            yield from block.key_ids()

    def key_id_prefixes(self) -> Iterator[str]:
        """The first 8 hex digits of every key ID, in the order of `key_ids`."""
        yield from (key.id[:8].lower() for key in list(self.recovery_keys.values()))
        for block in list(self.generated):
            yield from (f"{value:08x}" for value in block.prefixes())

    def keys_with_prefix(self, prefix: str) -> list[str]:
        """IDs of this tenant's keys that start with `prefix` (case ignored): explicit keys,
        then generated ones through a 4-bytes-a-key table built on first use."""
        lowered = prefix.lower()
        found = [
            key.id for key in self.recovery_keys.values() if key.id.lower().startswith(lowered)
        ]
        for block in self.generated:
            found += [block.key_id(i) for i in block.indexes_with_prefix(lowered)]
        return found

    def find_recovery_key(self, key_id: str) -> RecoveryKey | None:
        """An explicit or generated key by ID (case ignored)."""
        key = self.recovery_keys.get(key_id.lower())
        if key is not None:
            return key
        for block in self.generated:
            index = block.key_index(key_id)
            if index is not None:
                return block.recovery_key(index)
        return None

    def find_device(self, object_id: str) -> Device | None:
        """An explicit or generated device by directory object ID (case ignored)."""
        for device in self.devices:
            if device.id.lower() == object_id.lower():
                return device
        for block in self.generated:
            index = block.device_index_by_object_id(object_id)
            if index is not None:
                return block.device(index)
        return None

    # -- tokens, faults and counters for this tenant ----------------------------------------

    def mint_access_token(
        self,
        app: App,
        *,
        user: User | None = None,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        lifetime: float | None = None,
        audience: str | None = None,
    ) -> str:
        """An access token for Graph issued by this tenant (`tid`, `iss`): see
        GraphEmulator.mint_access_token."""
        return self.emulator.mint_access_token(
            app,
            user=user,
            scopes=scopes,
            roles=roles,
            lifetime=lifetime,
            audience=audience,
            tenant=self,
        )

    def add_fault(
        self,
        path: str,
        *,
        status: int = 429,
        times: int = 1,
        method: str | None = None,
        retry_after: RetryAfter | None = None,
        in_batch: bool | None = None,
    ) -> Fault:
        """GraphEmulator.add_fault for requests to this tenant only."""
        return self.emulator.add_fault(
            path,
            status=status,
            times=times,
            method=method,
            retry_after=retry_after,
            in_batch=in_batch,
            tenant=self,
        )

    @property
    def requests(self) -> list[RequestRecord]:
        return [r for r in self.emulator.requests if r.tenant_id == self.tenant_id]

    def count(
        self, path: str | None = None, *, method: str | None = None, via_batch: bool | None = None
    ) -> int:
        """GraphEmulator.count for requests to this tenant only."""
        return self.emulator.count(path, method=method, via_batch=via_batch, tenant=self)


def key_detail(key_id: str, device: Device | None, device_id: str) -> dict[str, str]:
    """additionalDetails[0] of a "Read BitLocker key" event. Published Log Analytics queries
    parse its value with `* "key ID: '" id "'. Backed up from device: '" name "'" *`; the
    words before "key ID" are the emulator's own."""
    name = device.display_name if device is not None else device_id
    return {
        "key": "AdditionalInfo",
        "value": f"BitLocker key ID: '{key_id}'. Backed up from device: '{name}'",
    }


def device_target(device: Device) -> dict[str, Any]:
    """targetResources entry for a device."""
    return {
        "id": device.id,
        "displayName": device.display_name,
        "type": "Device",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": [],
    }


def permission(name: str) -> str:
    canonical = canonical_permission(name)
    if canonical is None:
        raise ValueError(f"unknown Graph permission {name!r}")
    return canonical
