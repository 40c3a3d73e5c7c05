"""GraphEmulator: the server, its state, and the Python API tests drive it with."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509

from ._crypto import ClientCertificate, shared_pki, sign_jwt
from ._generated import GeneratedKeys
from ._graph import Graph, GraphError
from ._http import HttpsServer, Request, Response
from ._identity import Identity, OAuthError
from ._model import (
    App,
    AuditEvent,
    AuthCode,
    Device,
    DeviceCode,
    Fault,
    Group,
    KeyRead,
    ManagedDevice,
    RecoveryKey,
    RefreshGrant,
    RequestRecord,
    Rotation,
    User,
)
from ._tenant import Tenant

RetryAfter = int | float | str | dt.datetime | dt.timedelta


class GraphEmulator:
    """Microsoft Graph (v1.0, and beta for Intune) and the identity platform over HTTPS on
    loopback.

    It starts with one tenant, `home`, whose directory methods and state it also offers
    itself (`add_user`, `add_device`, `recovery_keys`, `key_reads`, `tenant_id`, ...), so a
    single-tenant test never names a tenant; `add_tenant` adds more. Use it as a context
    manager (or `start()` / `stop()`); `base_url`, `ca_file` and `authority` are valid once
    started. Every public method is thread-safe.
    """

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        tenant_id: str | None = None,
        tenant_domain: str = "contoso.onmicrosoft.com",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.host = host
        self.requested_port = port  # 0: a free one, chosen by the system at start()
        self.pki = shared_pki()
        self.lock = threading.RLock()
        self.device_code_issued = threading.Condition(self.lock)

        # Settings tests may change at any time.
        self.access_token_lifetime = 3599  # seconds, what Entra's token responses show
        self.refresh_token_lifetime = 90 * 24 * 3600
        self.device_code_lifetime = 900  # v2-oauth2-device-code: 15 minutes
        self.device_code_interval = 5
        self.clock_skew = 300  # Graph accepts tokens up to 5 minutes past `exp`
        # Defaults for every tenant; a Tenant may override each (Tenant.latency, ...).
        self.latency = 0.0  # seconds added to every HTTP request (not to $batch items)
        self.recovery_keys_page_size = 20  # undocumented on Graph; small pages exercise paging
        self.devices_page_size = 100  # Graph's default page size for directory objects
        self.managed_devices_page_size = 1000  # undocumented for Intune lists
        self.audit_page_size = 100  # undocumented for directoryAudits
        # Graph throttles a client that sends too much at once: with max_in_flight set, a
        # Graph request arriving while that many are being served is answered 429 with
        # Retry-After: in_flight_retry_after (seconds). throttled counts those answers.
        self.max_in_flight: int | None = None
        self.in_flight_retry_after = "1"
        self.throttled = 0
        self._in_flight = 0

        # State.
        self.tenants: dict[str, Tenant] = {}  # by lower-case tenant ID
        self.apps: dict[str, App] = {}  # every app registration, by lower-case client ID
        self.device_codes: dict[str, DeviceCode] = {}
        self.auth_codes: dict[str, AuthCode] = {}  # authorization codes, by code
        self.authorize_requests: dict[str, dict[str, str]] = {}  # sign-in pages shown, by id
        self.auth_code_lifetime = 600  # "codes are short lived, about 10 minutes"
        self.groups_claim_limit = 200  # JWT ID tokens: more groups is the overage claim
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.faults: list[Fault] = []
        self.errors: list[str] = []  # tracebacks of emulator bugs (answered with 500)
        self._requests: list[RequestRecord] = []
        self._clock_offset = 0.0

        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="graph-emulator-"))
        self._server: HttpsServer | None = None
        self.home = self.add_tenant(tenant_domain, tenant_id=tenant_id)
        self.identity = Identity(self)
        self.graph = Graph(self)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> GraphEmulator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "ca.pem").write_bytes(self.pki.ca_cert_pem)
        (self.workdir / "server.pem").write_bytes(self.pki.server_cert_pem)
        key_file = self.workdir / "server-key.pem"
        key_file.write_bytes(self.pki.server_key_pem)
        key_file.chmod(0o600)
        self._server = HttpsServer(
            str(self.workdir / "server.pem"),
            str(key_file),
            self._serve,
            self.host,
            self.requested_port,
        )
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return self._server.port

    @property
    def base_url(self) -> str:
        """Both the Graph host and the login host: https://127.0.0.1:PORT."""
        return f"https://{self.host}:{self.port}"

    @property
    def graph_url(self) -> str:
        """The Graph resource: scopes are f"{graph_url}/.default" or f"{graph_url}/<perm>"."""
        return self.base_url

    @property
    def graph_v1(self) -> str:
        """What `adapter.base_url` must be set to."""
        return f"{self.base_url}/v1.0"

    @property
    def authority(self) -> str:
        """The home tenant's authority; `Tenant.authority` for the others."""
        return self.home.authority

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.pem"

    @property
    def access_token_issuer(self) -> str:
        return self.home.access_token_issuer

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only the emulator's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # -- clock ------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self._clock_offset

    def now_datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), dt.UTC)

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock (token, refresh token and device code expiry) forward."""
        with self.lock:
            self._clock_offset += seconds

    # -- tenants ----------------------------------------------------------------------------

    def add_tenant(
        self, domain: str = "fabrikam.onmicrosoft.com", tenant_id: str | None = None
    ) -> Tenant:
        """Another tenant, served under /{tenant_id}/ and /{domain}/ by the identity
        platform, and by Graph to access tokens it issued (their `tid`)."""
        tenant = Tenant(self, tenant_id or str(uuid.uuid4()), domain)
        with self.lock:
            for other in self.tenants.values():
                if other.is_named(tenant.tenant_id) or other.is_named(domain):
                    raise ValueError(f"{other!r} already has that tenant ID or domain")
            self.tenants[tenant.tenant_id.lower()] = tenant
        return tenant

    def tenant(self, name: str) -> Tenant:
        """A tenant by ID or domain (case ignored)."""
        found = self.find_tenant(name)
        if found is None:
            raise KeyError(f"no tenant {name!r}")
        return found

    def find_tenant(self, name: str) -> Tenant | None:
        found = self.tenants.get(name.lower())
        if found is not None:
            return found
        return next((t for t in list(self.tenants.values()) if t.is_named(name)), None)

    def keys_sharing_prefix(self, key_id: str, digits: int = 8) -> list[tuple[Tenant, str]]:
        """Every key, in every tenant, whose ID starts with the first `digits` characters of
        `key_id` (case ignored), `key_id` itself included when it exists."""
        prefix = key_id[:digits]
        return [
            (tenant, found)
            for tenant in list(self.tenants.values())
            for found in tenant.keys_with_prefix(prefix)
        ]

    # -- the home tenant --------------------------------------------------------------------

    @property
    def tenant_id(self) -> str:
        return self.home.tenant_id

    @property
    def tenant_domains(self) -> list[str]:
        return self.home.domains

    @property
    def users(self) -> dict[str, User]:
        return self.home.users

    @property
    def devices(self) -> list[Device]:
        return self.home.devices

    @property
    def recovery_keys(self) -> dict[str, RecoveryKey]:
        """The home tenant's explicit keys (generated ones: `home.generated`)."""
        return self.home.recovery_keys

    @property
    def key_reads(self) -> list[KeyRead]:
        """The home tenant's audit log of password reads (`all_key_reads`: every tenant's)."""
        return self.home.key_reads

    @property
    def all_key_reads(self) -> list[KeyRead]:
        with self.lock:
            reads = [read for t in self.tenants.values() for read in t.key_reads]
        return sorted(reads, key=lambda read: read.time)

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
        """Register an app in the home tenant (see Tenant.add_app); `delegated_scopes` /
        `app_roles` are admin-consented Graph permissions (e.g. "BitlockerKey.Read.All")."""
        return self.home.add_app(
            display_name,
            client_id=client_id,
            public_client=public_client,
            secret=secret,
            certificate=certificate,
            delegated_scopes=delegated_scopes,
            app_roles=app_roles,
            multi_tenant=multi_tenant,
            redirect_uris=redirect_uris,
            group_membership_claims=group_membership_claims,
        )

    def add_user(
        self,
        user_principal_name: str,
        *,
        display_name: str | None = None,
        roles: Iterable[str] = (),
        user_id: str | None = None,
        password: str | None = None,
    ) -> User:
        """Add a user to the home tenant; `roles` are directory role names such as
        "Helpdesk Administrator"; `password` lets them sign in on the /authorize page."""
        return self.home.add_user(
            user_principal_name,
            display_name=display_name,
            roles=roles,
            user_id=user_id,
            password=password,
        )

    def add_group(
        self,
        display_name: str,
        members: Iterable[User | Group] = (),
        *,
        group_id: str | None = None,
    ) -> Group:
        """A security group in the home tenant (see Tenant.add_group)."""
        return self.home.add_group(display_name, members, group_id=group_id)

    def add_custom_role(
        self, display_name: str, actions: Iterable[str], members: Iterable[User] = ()
    ) -> str:
        """Add a custom directory role to the home tenant, assigned to ``members``."""
        return self.home.add_custom_role(display_name, actions, members)

    def add_device(
        self,
        display_name: str,
        *,
        device_id: str | None = None,
        object_id: str | None = None,
        operating_system: str | None = "Windows",
        owners: Iterable[User] = (),
    ) -> Device:
        """Add a device object to the home tenant. Display names need not be unique."""
        return self.home.add_device(
            display_name,
            device_id=device_id,
            object_id=object_id,
            operating_system=operating_system,
            owners=owners,
        )

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
        """Escrow a recovery key in the home tenant (see Tenant.add_recovery_key)."""
        return self.home.add_recovery_key(
            device,
            key=key,
            key_id=key_id,
            id_prefix=id_prefix,
            created=created,
            volume_type=volume_type,
        )

    def add_generated_keys(
        self, count: int, *, seed: int = 0, keys_per_device: int = 1, name_prefix: str = "GEN"
    ) -> GeneratedKeys:
        """Generated keys in the home tenant (see Tenant.add_generated_keys)."""
        return self.home.add_generated_keys(
            count, seed=seed, keys_per_device=keys_per_device, name_prefix=name_prefix
        )

    def generated_key_id(self, index: int) -> str:
        return self.home.generated_key_id(index)

    def add_managed_device(
        self,
        device: Device | str,
        *,
        rotation_policy: bool = True,
        managed_device_id: str | None = None,
        user_principal_name: str | None = None,
    ) -> ManagedDevice:
        """Enrol a home-tenant device in Intune (see Tenant.add_managed_device)."""
        return self.home.add_managed_device(
            device,
            rotation_policy=rotation_policy,
            managed_device_id=managed_device_id,
            user_principal_name=user_principal_name,
        )

    @property
    def managed_devices(self) -> list[ManagedDevice]:
        return self.home.managed_devices

    @property
    def rotations(self) -> list[Rotation]:
        """The home tenant's accepted rotateBitLockerKeys calls."""
        return self.home.rotations

    @property
    def rotation_delay(self) -> float:
        """The home tenant's delay between a rotation and its new keys (Tenant.rotation_delay)."""
        return self.home.rotation_delay

    @rotation_delay.setter
    def rotation_delay(self, value: float) -> None:
        self.home.rotation_delay = value

    @property
    def audit_events(self) -> list[AuditEvent]:
        """The home tenant's directory audit log (GET /auditLogs/directoryAudits)."""
        return self.home.audit_events

    def add_audit_event(self, activity: str = "Read BitLocker key", **kwargs: Any) -> AuditEvent:
        """Log an event in the home tenant's audit log (see Tenant.add_audit_event)."""
        return self.home.add_audit_event(activity, **kwargs)

    # -- device code flow -------------------------------------------------------------------

    def wait_for_device_code(self, timeout: float = 10.0) -> DeviceCode:
        """The newest pending device code, waiting for a client to ask for one."""
        deadline = time.monotonic() + timeout
        with self.device_code_issued:
            while True:
                pending = [f for f in self.device_codes.values() if f.state == "pending"]
                if pending:
                    return max(pending, key=lambda f: f.issued_at)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no device code was requested")
                self.device_code_issued.wait(remaining)

    def _flow(self, user_code: str | DeviceCode) -> DeviceCode:
        code = user_code.user_code if isinstance(user_code, DeviceCode) else user_code
        for flow in self.device_codes.values():
            if flow.user_code == code:
                return flow
        raise KeyError(f"no device code with user code {code!r}")

    def approve_device_code(self, user_code: str | DeviceCode, user: User) -> None:
        """The user signs in at the verification page and enters the code."""
        with self.lock:
            flow = self._flow(user_code)
            if flow.state != "pending":
                raise ValueError(f"device code is {flow.state}, not pending")
            if flow.tenant_id is not None and user.tenant_id != flow.tenant_id:
                # Entra stops such a user on the sign-in page (AADSTS50020); no token follows.
                raise ValueError(
                    f"{user.user_principal_name} is not in tenant {flow.tenant_id}, where the "
                    "code was asked for"
                )
            flow.state, flow.user = "approved", user

    def decline_device_code(self, user_code: str | DeviceCode) -> None:
        with self.lock:
            self._flow(user_code).state = "declined"

    def expire_device_code(self, user_code: str | DeviceCode) -> None:
        with self.lock:
            self._flow(user_code).state = "expired"

    # -- tokens -----------------------------------------------------------------------------

    def mint_access_token(
        self,
        app: App,
        *,
        user: User | None = None,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        lifetime: float | None = None,
        audience: str | None = None,
        tenant: Tenant | None = None,
    ) -> str:
        """An access token as the token endpoint issues it (v1.0 format, like Graph's):
        delegated when `user` is given (claim `scp`), app-only otherwise (claim `roles`).
        Issued by `tenant`, else by the user's tenant, else by the home tenant: `tid` and
        `iss` name it, and an app-only token's `oid` is the app's service principal there."""
        if tenant is None:
            tenant = self.find_tenant(user.tenant_id) if user and user.tenant_id else None
        tenant = tenant or self.home
        principal = tenant.service_principal(app)
        now = int(self.now())
        life = self.access_token_lifetime if lifetime is None else lifetime
        claims: dict[str, Any] = {
            "aud": audience or self.graph_url,
            "iss": tenant.access_token_issuer,
            "iat": now,
            "nbf": now,
            "exp": int(now + life),
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "0" if app.public_client and not app.confidential else "1",
            "idp": tenant.access_token_issuer,
            "tid": tenant.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if user is not None:
            claims.update(
                idtyp="user",
                oid=user.id,
                sub=user.id,
                upn=user.user_principal_name,
                unique_name=user.user_principal_name,
                name=user.display_name,
                scp=" ".join(scopes),
                wids=user.role_template_ids,
            )
        else:
            object_id = principal.object_id if principal is not None else app.object_id
            claims.update(idtyp="app", oid=object_id, sub=object_id, roles=list(roles))
        kid = self.pki.signing_kid
        return sign_jwt(claims, self.pki.signing_key, {"kid": kid, "x5t": kid})

    def mint_id_token(
        self, app: App, user: User, tenant: Tenant | None = None, nonce: str | None = None
    ) -> str:
        """An ID token (v2.0); `groups` when the app's manifest asks for group claims, or the
        overage claim instead when the user is in more groups than a JWT may carry."""
        tenant = tenant or self.find_tenant(user.tenant_id or self.tenant_id) or self.home
        now = int(self.now())
        claims: dict[str, Any] = {
            "aud": app.client_id,
            "iss": tenant.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.display_name,
            "oid": user.id,
            "preferred_username": user.user_principal_name,
            "sub": uuid.uuid5(uuid.NAMESPACE_URL, f"{user.id}/{app.client_id}").hex,
            "tid": tenant.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if app.group_membership_claims:
            groups = [g.id for g in tenant.transitive_groups(user) if g.security_enabled]
            if len(groups) > self.groups_claim_limit:
                # "Group overage claim": the app reads the groups from Graph instead.
                claims["_claim_names"] = {"groups": "src1"}
                claims["_claim_sources"] = {
                    "src1": {
                        "endpoint": f"https://graph.windows.net/{tenant.tenant_id}/users/"
                        f"{user.id}/getMemberObjects"
                    }
                }
            else:
                claims["groups"] = groups
        kid = self.pki.signing_kid
        return sign_jwt(claims, self.pki.signing_key, {"kid": kid})

    def revoke_refresh_tokens(self, user: User) -> None:
        """What "Revoke sessions" does in the portal: every refresh token of `user` dies."""
        with self.lock:
            for grant in self.refresh_grants.values():
                if grant.user_id == user.id:
                    grant.revoked = True

    # -- faults and observation -------------------------------------------------------------

    def add_fault(
        self,
        path: str,
        *,
        status: int = 429,
        times: int = 1,
        method: str | None = None,
        retry_after: RetryAfter | None = None,
        in_batch: bool | None = None,
        tenant: Tenant | str | None = None,
    ) -> Fault:
        """Answer the next `times` requests whose path matches the regex `path` with
        `status`. `retry_after`: seconds (int or float, sent as given, e.g. 2.128), a
        datetime or timedelta (sent as an HTTP date), or a raw header string. `in_batch`:
        True for $batch items only, False for top-level requests only, None for both.
        `tenant` (a Tenant, ID or domain): only requests for that tenant, None for any."""
        fault = Fault(
            path=re.compile(path),
            method=method.upper() if method else None,
            status=status,
            times=times,
            retry_after=None if retry_after is None else _retry_after_header(retry_after, self),
            in_batch=in_batch,
            tenant_id=None if tenant is None else self._tenant_of(tenant).tenant_id,
        )
        with self.lock:
            self.faults.append(fault)
        return fault

    @property
    def requests(self) -> list[RequestRecord]:
        with self.lock:
            return list(self._requests)

    def count(
        self,
        path: str | None = None,
        *,
        method: str | None = None,
        via_batch: bool | None = None,
        tenant: Tenant | str | None = None,
    ) -> int:
        """How many requests matched: `path` is a regex searched in the URL path; `tenant`
        (a Tenant, ID or domain) counts only requests for that tenant."""
        pattern = re.compile(path) if path is not None else None
        tenant_id = None if tenant is None else self._tenant_of(tenant).tenant_id
        return sum(
            1
            for record in self.requests
            if (pattern is None or pattern.search(record.path))
            and (method is None or record.method == method.upper())
            and (via_batch is None or record.via_batch == via_batch)
            and (tenant_id is None or record.tenant_id == tenant_id)
        )

    def _tenant_of(self, tenant: Tenant | str) -> Tenant:
        return tenant if isinstance(tenant, Tenant) else self.tenant(tenant)

    def clear_requests(self) -> None:
        with self.lock:
            self._requests.clear()

    # -- dispatch ---------------------------------------------------------------------------

    def _serve(self, request: Request) -> Response:
        with self.lock:
            self._in_flight += 1
            crowded = (
                self.max_in_flight is not None
                and self._in_flight > self.max_in_flight
                and is_graph_path(request.path)
            )
        try:
            tenant = self.request_tenant(request)
            latency = self.latency if tenant is None else tenant.latency
            if latency:
                time.sleep(latency)
            if crowded:
                return self._crowded(request, tenant)
            return self._dispatch(request, tenant)
        except Exception:
            with self.lock:
                self.errors.append(traceback.format_exc())
            return Response(500, b"graph emulator bug; see GraphEmulator.errors")
        finally:
            with self.lock:
                self._in_flight -= 1

    def _crowded(self, request: Request, tenant: Tenant | None) -> Response:
        """Too many requests at once: the throttling guidance's 429, recorded."""
        fault = Fault(
            path=re.compile(""),
            method=None,
            status=429,
            times=1,
            retry_after=self.in_flight_retry_after,
            in_batch=None,
        )
        response = self._fault_response(fault, request)
        with self.lock:
            self.throttled += 1
            self._requests.append(
                RequestRecord(
                    method=request.method,
                    path=request.path,
                    query=request.query,
                    status=429,
                    time=time.time(),
                    via_batch=False,
                    request_id=response.headers.get("request-id", ""),
                    headers=dict(request.headers),
                    tenant_id=tenant.tenant_id if tenant is not None else None,
                )
            )
        return response

    def request_tenant(self, request: Request) -> Tenant | None:
        """The tenant a request is for: on Graph the `tid` of its access token (not yet
        validated), on the identity platform the tenant its path names (None for /common,
        /organizations and unknown tenants)."""
        if is_graph_path(request.path):
            return self.graph.token_tenant(request)
        return self.identity.path_tenant(request)

    def dispatch(self, request: Request) -> Response:
        """Answer one request (top-level or a $batch item), apply faults, record it."""
        return self._dispatch(request, self.request_tenant(request))

    def _dispatch(self, request: Request, tenant: Tenant | None) -> Response:
        path = request.path
        tenant_id = tenant.tenant_id if tenant is not None else None
        with self.lock:
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.matches(request.method, path, request.via_batch, tenant_id)
                ),
                None,
            )
            if fault is not None:
                fault.served += 1
                response = self._fault_response(fault, request)
            elif is_graph_path(path):
                if tenant is not None:
                    tenant.escrow_due_rotations()
                response = self.graph.handle(request)
            else:
                response = self.identity.handle(request) or Response(
                    404, b"Not Found", {"Content-Type": "text/plain"}
                )
            self._requests.append(
                RequestRecord(
                    method=request.method,
                    path=path,
                    query=request.query,
                    status=response.status,
                    time=time.time(),
                    via_batch=request.via_batch,
                    request_id=response.headers.get("request-id", ""),
                    headers=dict(request.headers),
                    grant_type=request.form().get("grant_type")
                    if path.endswith("/oauth2/v2.0/token")
                    else None,
                    tenant_id=tenant_id,
                )
            )
        return response

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if is_graph_path(request.path):
            code, message = {
                429: ("TooManyRequests", "Please retry again later."),
                503: (
                    "serviceNotAvailable",
                    "The service is temporarily unavailable. Please retry after some time.",
                ),
                504: ("UnknownError", "The request timed out."),
            }.get(fault.status, ("generalException", "An unspecified error has occurred."))
            request_id = str(uuid.uuid4())
            # The throttling guidance's sample 429 also has code/status/message inside.
            inner = (
                {"code": "429", "message": "Please retry after", "status": "429"}
                if fault.status == 429
                else None
            )
            response = self.graph.error_response(
                GraphError(fault.status, code, message, headers, inner),
                request_id,
                request.headers.get("client-request-id") or request_id,
            )
            response.headers["request-id"] = request_id
            response.headers["client-request-id"] = (
                request.headers.get("client-request-id") or request_id
            )
            return response
        error = OAuthError(
            "temporarily_unavailable",
            90055 if fault.status == 429 else 90006,
            "The service is temporarily unavailable. Retry the request.",
            status=fault.status,
        )
        response = self.identity.error_response(request, error)
        response.headers.update(headers)
        return response


def is_graph_path(path: str) -> bool:
    """Graph serves v1.0 and beta; every other path is the identity platform's."""
    return path.startswith(("/v1.0/", "/beta/"))


def _retry_after_header(value: RetryAfter, emulator: GraphEmulator) -> str:
    if isinstance(value, dt.timedelta):
        value = emulator.now_datetime() + value
    if isinstance(value, dt.datetime):
        return email.utils.format_datetime(value.astimezone(dt.UTC), usegmt=True)
    return str(value)
