"""Microsoft Entra ID over Microsoft Graph: bitlockerRecoveryKey resources of devices.

Config (``type = "entra"``):

``tenant_id``, ``client_id``  the directory and the app registration
``auth``               ``"device-code"`` (default), ``"browser"``, ``"client-secret"`` or
                       ``"client-certificate"``
``certificate_file``   PEM with the private key and certificate, for client-certificate
``authority_host``     default ``https://login.microsoftonline.com`` (national clouds differ)
``graph_url``          default ``https://graph.microsoft.com``
``ca_file``            CA bundle for TLS-inspecting proxies (and tests)
``timeout``            seconds per request (default 30)
``batches_in_flight``  $batch requests at once when the Key ID index lists keys by device
                       (default 8, at most 32)

Key values are read only for the keys a lookup returns, because Entra audits every read.
msal, msgraph-sdk and httpx are imported only when a lookup runs (graph.py, signin.py). The
requests are made by listings.py (metadata), graph.py (key values) and intune.py (rotation);
bridge.py runs them from this synchronous class.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ClassVar, Final, TypeVar

from bitkey_dir.core.errors import AuthError, BitkeyError, InputError
from bitkey_dir.core.model import (
    ComputerName,
    KeyEntry,
    KeyId,
    Query,
    RecoveryKey,
    RecoveryPassword,
)
from bitkey_dir.core.rights import Holder
from bitkey_dir.core.rotation import Progress, Rotation
from bitkey_dir.runtime.config import Settings
from bitkey_dir.runtime.credentials import Secret, Wanted
from bitkey_dir.runtime.delegation import WebSignIn
from bitkey_dir.sources.base import (
    AuthStatus,
    Check,
    DeviceKeys,
    DeviceRound,
    Escrow,
    KeyRead,
    TokenStatus,
    Warn,
)
from bitkey_dir.sources.entra import intune, listings, roles
from bitkey_dir.sources.entra.bridge import drive, run_sync
from bitkey_dir.sources.entra.graph import ROLES, Graph, Record, abandon, open_graph
from bitkey_dir.sources.entra.odata import device_filter, timestamp, volume_type
from bitkey_dir.sources.entra.signin import APP_AUTH, SignIn, identifier
from bitkey_dir.sources.entra.tenants import EntraTenants

T = TypeVar("T")
NO_KEY_PACKAGES: Final = (
    "Microsoft Entra ID stores no key packages (it escrows recovery passwords only)"
)


@dataclass
class EntraSource:
    """Keys from Entra ID; signs in on first use and keeps the token for the run."""

    type_name: ClassVar[str] = "entra"

    name: str
    sign_in: SignIn
    timeout: int = 30
    batches_in_flight: int = 8

    @property
    def no_key_packages(self) -> str:
        """Entra ID escrows recovery passwords only: there is no key package to read."""
        return NO_KEY_PACKAGES

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> EntraSource | EntraTenants:
        """One tenant (``tenant_id``), or several (``tenant_ids``) served by one
        multi-tenant app: each tenant is then a source of its own, NAME/TENANT."""
        if "tenant_ids" in settings:
            return EntraTenants.from_settings(name, settings, cls.build)
        return cls.build(name, settings, identifier(settings, "tenant_id"))

    @classmethod
    def build(
        cls, name: str, settings: Settings, tenant_id: str, secret_owner: str | None = None
    ) -> EntraSource:
        in_flight = settings.integer("batches_in_flight", 8, minimum=1, maximum=32)
        sign_in = SignIn.from_settings(name, settings, tenant_id, secret_owner)
        return cls(name=name, sign_in=sign_in, timeout=sign_in.timeout, batches_in_flight=in_flight)

    def describe(self) -> str:
        return f"{self.sign_in.graph_url} tenant {self.sign_in.tenant_id} ({self.sign_in.auth})"

    @property
    def principal(self) -> str:
        """For the access trail: the signed-in user, or the app."""
        return self.sign_in.principal

    def close(self) -> None:
        """Each lookup opens and closes its own HTTP client."""

    # -- signing in once ----------------------------------------------------------------

    @property
    def login_secret(self) -> Wanted | None:
        """The client secret `bitkey-dir login` reads, for client-secret sign-in."""
        return self.sign_in.wanted

    def login(self, secret: Secret | None) -> str:
        """Sign in afresh and keep the tokens (and the client secret) for later runs."""
        from bitkey_dir.runtime import keystore

        principal = self.sign_in.login(secret)
        wanted = self.sign_in.wanted
        if wanted is not None and secret is not None:
            keystore.current().set(wanted.entry, secret.value)
            return f"signed in as {principal}; the client secret and tokens are stored"
        return f"signed in as {principal}; the tokens are stored"

    def logout(self) -> list[str]:
        return self.sign_in.forget()

    def auth_status(self) -> AuthStatus:
        from bitkey_dir.runtime import credentials, keystore
        from bitkey_dir.sources.entra.token_cache import summarize

        cache = self.sign_in.cache_file()
        loaded = cache.load() if cache.exists() else None
        summary = summarize(loaded.serialized) if loaded and loaded.serialized else None
        if summary is not None:
            expires = summary.access_token_expires
            tokens = TokenStatus(
                saved=True,
                accounts=summary.accounts,
                access_token_expires=(
                    datetime.fromtimestamp(expires, UTC) if expires is not None else None
                ),
                refresh_token=summary.refresh_tokens > 0,
                summary=summary.describe(),
            )
        else:
            tokens = TokenStatus(saved=False, problem=loaded.problem if loaded else None)
        wanted = self.sign_in.wanted
        account = (
            summary.accounts[0]
            if summary and summary.accounts
            else f"app {self.sign_in.client_id}"
            if self.sign_in.auth in APP_AUTH
            else None
        )
        return AuthStatus(
            account=account,
            secret="client secret" if wanted else None,
            stored=keystore.current().has(wanted.entry) if wanted else None,
            environment=bool(wanted and credentials.in_environment(wanted)),
            tokens=tokens,
        )

    # -- agents signed in through a browser (the portal) ----------------------------------

    def web_sign_in(self, read_groups: bool = False, rotate: bool = False) -> WebSignIn:
        """Authorization code flows with PKCE for this source's app registration, its
        client secret or certificate authenticating the app (web_signin.py)."""
        from bitkey_dir.sources.entra.web_signin import WebSignIn as Flows

        return Flows(self.sign_in, read_groups=read_groups, rotate=rotate)

    def own_groups(self, warn: Warn) -> list[str]:
        """Object IDs of the signed-in user's groups, nested ones too (transitiveMemberOf)."""
        from bitkey_dir.sources.entra.groups import own_groups

        return own_groups(self.sign_in)

    # -- doctor -------------------------------------------------------------------------

    def diagnose(self, warn: Warn) -> list[Check]:
        """Sign-in, the token's permissions (and roles, for a user) and Graph's answer."""
        from bitkey_dir.sources.entra import diagnosis

        return diagnosis.diagnose(self.sign_in, app_only=self.sign_in.auth in APP_AUTH)

    # -- running the async SDK from synchronous callers ---------------------------------

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        if query.computer is not None:
            device_filter(query.computer)  # bad input is refused before anyone signs in
        self.sign_in.token()  # sign in first, so that a sign-in problem is reported as one
        return self._session(lambda graph: self._find(graph, query, warn))

    def iter_key_entries(self, warn: Warn) -> Iterator[KeyEntry]:
        """Every key's ID, device and date for the Key ID index: listings only, so no key
        is read (nothing is audited) and BitlockerKey.ReadBasic.All is enough."""
        self.sign_in.token()
        yield from self._stream(listings.key_entries)

    def iter_device_keys(
        self, since: str | None, round: DeviceRound, warn: Warn
    ) -> Iterator[DeviceKeys]:
        """Each device's keys, devices listed by devices/delta (Device.Read.All) and their
        keys 20 devices to a $batch, several at once: metadata only, nothing audited."""
        from bitkey_dir.sources.entra import by_device

        self.sign_in.token()
        yield from self._stream(
            lambda graph: by_device.device_keys(graph, since, round, self.batches_in_flight)
        )

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        self.sign_in.token()
        yield from self._stream(lambda graph: self._all_keys(graph, warn))

    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        """Every Windows device with its number of keys and the newest key's date.

        Key metadata only: BitlockerKey.ReadBasic.All and Device.Read.All suffice, and no key
        read is audited.
        """
        self.sign_in.token()
        yield from self._session(lambda graph: listings.escrow(graph, self.name, warn))

    def volume_keys(self, key_id: KeyId, warn: Warn) -> list[RecoveryKey] | None:
        """The key and the other keys of its device's volume of the same type, metadata only
        (no value is read, so nothing is audited); None when Entra no longer has the key."""

        async def listed(graph: Graph) -> list[RecoveryKey] | None:
            found = await graph.key_metadata(str(key_id).lower())
            if not found or not isinstance(found[0].get("deviceId"), str):
                return None
            volume = found[0].get("volumeType")
            return [
                key
                for meta in await listings.list_keys(graph, found[0]["deviceId"])
                if meta.get("volumeType") == volume
                and (key := self._key({**meta, "key": None}, {}, warn)) is not None
            ]

        self.sign_in.token()
        return self._session(listed)

    def iter_key_reads(self, since: datetime, warn: Warn) -> Iterator[KeyRead]:
        """Entra's "Read BitLocker key" audit events since ``since`` (AuditLog.Read.All),
        page after page, newest first, whoever read the key and however."""
        self.sign_in.token()
        yield from self._stream(lambda graph: listings.key_reads(graph, since, self.name))

    def rotate(self, query: Query, warn: Warn) -> list[Rotation]:
        """Ask Intune to rotate the keys of each device answering ``query``. No key value
        is read (nothing is audited as a read): devices come from names or key metadata."""
        if query.computer is not None:
            device_filter(query.computer)
        self.sign_in.token()
        return self._session(lambda graph: intune.rotations(graph, self.name, query))

    def rotation_progress(self, rotation: Rotation, warn: Warn) -> Progress:
        """What Intune says now of a rotation this source asked for (rotate --wait): the
        managed device's action result, and the new keys' IDs once it is done."""
        self.sign_in.token()
        return self._session(lambda graph: intune.progress(graph, rotation))

    def rights_holders(self, scope: str | None, warn: Warn) -> list[Holder]:
        """Who holds a directory role that reads BitLocker keys (`rights show`), from the
        role definitions and their assignments; no key is read."""
        if scope is not None:
            warn("Entra ID has no OUs: the roles of the whole tenant are shown")
        self.sign_in.token()
        tenant = self.sign_in.directory_id() or self.sign_in.tenant_id
        return self._session(lambda graph: roles.holders(graph, self.name, tenant))

    def _session(self, work: Callable[[Graph], Awaitable[T]]) -> T:
        """``work``'s result, in a session with Graph of its own."""

        async def session() -> T:
            async with open_graph(self.sign_in, self.timeout) as graph:
                return await work(graph)

        return run_sync(session())

    def _stream(self, work: Callable[[Graph], AsyncIterator[T]]) -> Iterator[T]:
        """``work``'s items, in a session with Graph kept open while they are asked for."""

        async def items() -> AsyncIterator[T]:
            async with open_graph(self.sign_in, self.timeout) as graph:
                async for item in work(graph):
                    yield item

        return drive(items())

    # -- lookups ------------------------------------------------------------------------

    async def _find(self, graph: Graph, query: Query, warn: Warn) -> list[RecoveryKey]:
        if query.computer is not None:
            return await self._keys_of_computer(graph, query.computer, warn)
        key_id = query.key_id
        if key_id is None:
            raise InputError("a query needs a Key ID or a computer name")
        if key_id.is_full:
            key = await self._read_key(graph, str(key_id).lower(), {}, warn)
            if key is None:
                self._refuse_without_a_role(f"Key ID {key_id}")
                warn(self._not_found_hint(f"Key ID {key_id}"))
            return await self._named(graph, [key] if key is not None else [], warn)
        listed = await listings.list_keys(graph)
        wanted = [meta for meta in listed if key_id.matches(KeyId.parse(meta["id"]))]
        if not wanted:
            self._refuse_without_a_role(f"Key ID {key_id}")
            warn(self._not_found_hint(f"Key ID {key_id}"))
            return []
        return await self._named(graph, await self._read_keys(graph, wanted, {}, warn), warn)

    async def _named(self, graph: Graph, keys: list[RecoveryKey], warn: Warn) -> list[RecoveryKey]:
        """Keys found by ID, with their devices' names: one small query per device, so the
        agent can check the computer with the user. Without the right to read devices the
        keys are still shown, unnamed."""
        device_ids = {key.device_id for key in keys if key.device_id and not key.computer}
        if not device_ids:
            return keys
        try:
            names = await listings.names_of(graph, device_ids)
        except BitkeyError as exc:
            warn(f"the computer names are not shown: {exc.message}")
            return keys
        return [
            replace(key, computer=names.get(key.device_id or "")) if not key.computer else key
            for key in keys
        ]

    def _refuse_without_a_role(self, what: str) -> None:
        """Nothing found for a signed-in user whose token names no directory role that reads
        keys (``wids``, built-in roles only): that is "no right to read", not "not found",
        since Graph lists only the keys of devices they own."""
        from bitkey_dir.sources.entra.diagnosis import KEY_READING_ROLES, role_ids, token_claims

        if self.sign_in.auth in APP_AUTH:
            return
        held = role_ids(token_claims(self.sign_in.token()[0]))
        if held is not None and not set(held) & set(KEY_READING_ROLES):
            raise AuthError(
                f"{self.sign_in.principal} holds none of the built-in Entra roles that read "
                f"BitLocker keys ({ROLES}): nothing found for {what}, and only keys of devices "
                "they own are readable to them (a custom role that reads keys does not show in "
                "the token: with one, the key may not exist)"
            )

    def _not_found_hint(self, what: str) -> str:
        return (
            f"no recovery key with {what} is visible to {self.sign_in.principal}; keys of "
            f"devices outside its reach (without one of the roles {ROLES}, or ownership of "
            "the device) are not listed either"
        )

    async def _keys_of_computer(
        self, graph: Graph, name: ComputerName, warn: Warn
    ) -> list[RecoveryKey]:
        devices = await listings.devices_named(graph, name)
        if not devices:
            warn(f"no device named {name.text} is visible to {self.sign_in.principal}")
            return []
        by_name: dict[str, list[listings.Device]] = {}
        for device in devices:
            by_name.setdefault(device["displayName"].lower(), []).append(device)
        for same in by_name.values():
            if len(same) > 1:
                ids = ", ".join(device["deviceId"] for device in same)
                warn(
                    f"{len(same)} devices are named {same[0]['displayName']} (device IDs "
                    f"{ids}): check the Device ID with the user"
                )
        names = {device["deviceId"]: device["displayName"] for device in devices}
        return await self._keys_of_devices(graph, names, name.text, warn)

    async def _keys_of_devices(
        self, graph: Graph, names: Mapping[str, str], asked: str, warn: Warn
    ) -> list[RecoveryKey]:
        listed: list[Record] = []
        for device_id in names:
            listed += await listings.list_keys(graph, device_id)
        if not listed:
            warn(f"{asked}: no recovery keys escrowed in Entra ID for the matching devices")
            return []
        return await self._read_keys(graph, listed, dict(names), warn)

    async def _read_key(
        self, graph: Graph, key_id: str, names: dict[str, str], warn: Warn
    ) -> RecoveryKey | None:
        """One key with its value: exactly one Graph request."""
        found = await graph.key_value(key_id)
        if found is None:
            return None
        return self._key(found, names, warn)

    async def _read_keys(
        self, graph: Graph, listed: list[Record], names: dict[str, str], warn: Warn
    ) -> list[RecoveryKey]:
        """Values for listed keys: one GET for a single key, else $batch of up to 20."""
        if len(listed) == 1:
            key = await self._read_key(graph, listed[0]["id"], names, warn)
            return [key] if key is not None else []

        async def each() -> AsyncIterator[Record]:
            for meta in listed:
                yield meta

        return [
            key
            async for meta, value in graph.read_ahead(each())
            if (key := self._key({**meta, "key": value}, names, warn))
        ]

    async def _all_keys(self, graph: Graph, warn: Warn) -> AsyncIterator[RecoveryKey]:
        # Device names come from one listing of devices, read while the keys are, and
        # awaited before the first key is handed on.
        pending = asyncio.create_task(listings.device_names(graph))
        names: dict[str, str] | None = None
        try:
            async for meta, value in graph.read_ahead(listings.listed_keys(graph)):
                if names is None:
                    names = await pending
                key = self._key({**meta, "key": value}, names, warn)
                if key is not None:
                    yield key
        finally:
            abandon([pending])

    # -- results ------------------------------------------------------------------------

    def _key(self, record: Record, names: dict[str, str], warn: Warn) -> RecoveryKey | None:
        key_id = KeyId.parse(record["id"])
        password = None
        if record.get("key"):
            try:
                password = RecoveryPassword.parse(str(record["key"]))
            except BitkeyError as exc:
                warn(f"Key ID {key_id}: Entra ID holds a damaged recovery password ({exc})")
                return None
        device_id = record.get("deviceId")
        return RecoveryKey(
            source=self.name,
            key_id=key_id,
            recovery_password=password,
            computer=names.get(device_id) if device_id else None,
            created=timestamp(record.get("createdDateTime")),
            volume_type=volume_type(record.get("volumeType")),
            device_id=device_id,
        )
