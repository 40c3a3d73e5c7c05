"""The Microsoft identity platform (v2.0 endpoints) for the emulator's tenants.

Sources: "OpenID Connect on the Microsoft identity platform", "OAuth 2.0 device authorization
grant", "client credentials flow", "certificate credentials" and "AADSTS error codes" pages
(learn.microsoft.com/entra/identity-platform), and MSAL for Python 1.39 (what it sends and
reads). Error bodies follow the documented format: `error`, `error_description` (AADSTS
code, then Trace ID / Correlation ID / Timestamp lines), `error_codes`, `timestamp`,
`trace_id`, `correlation_id`, `error_uri`. Invalid client credentials answer 401, every
other OAuth error 400, as Entra does.

Only what MSAL needs with ``instance_discovery=False`` is served: OpenID discovery, JWKS,
devicecode and token. ``/common/discovery/instance`` is deliberately absent (404), so a
client that still asks for it shows up in the request log.

Tenants: every endpoint is served under /{tenant ID or domain}/ for each tenant, and under
/common/ and /organizations/. An app is found in a tenant when it has a service principal
there (it is registered there, or it is multi-tenant and the tenant consented to it);
otherwise a client authenticating in that tenant gets AADSTS700016 (unauthorized_client,
"Application with identifier ... was not found in the directory ..."), as documented in
"AADSTS error codes". A multi-tenant app may start a device code flow in a tenant that has not
consented; the token is then refused with AADSTS65001 (consent_required), which is where a
user without the right to consent ends. On /common and /organizations the tenant is the
signed-in user's (device code, refresh token); a single-tenant app is refused there with
AADSTS50194, and client credentials, which name no user, with AADSTS50059.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._crypto import JwtError, jwk_for, thumbprints, unverified_parts, verify_signature
from ._http import Request, Response, json_response
from ._model import (
    GRAPH_APP_ID,
    OIDC_SCOPES,
    App,
    DeviceCode,
    RefreshGrant,
    User,
    canonical_permission,
)

if TYPE_CHECKING:
    from ._emulator import GraphEmulator
    from ._tenant import Tenant

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_ROUTE = re.compile(
    r"^/(?P<tenant>[^/]+)/(?:"
    r"(?P<discovery>v2\.0/\.well-known/openid-configuration)"
    r"|(?P<keys>discovery/v2\.0/keys)"
    r"|(?P<devicecode>oauth2/v2\.0/devicecode)"
    r"|(?P<authorize>oauth2/v2\.0/authorize)"
    r"|(?P<token>oauth2/v2\.0/token))$"
)
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class OAuthError(Exception):
    def __init__(
        self, error: str, code: int, description: str, status: int = 400, **extra: Any
    ) -> None:
        super().__init__(description)
        self.error = error
        self.code = code
        self.description = description
        self.status = status
        self.extra = extra


@dataclass(frozen=True)
class ScopeRequest:
    """A parsed `scope` parameter: one resource, its permission names, and OIDC scopes."""

    resource: str | None  # as the client spelled it ("https://host:port"); None: bare names
    names: tuple[str, ...]  # canonical Graph permission names, or (".default",)
    oidc: frozenset[str]

    @property
    def is_default(self) -> bool:
        return self.names == (".default",)


def b64url_json(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode("ascii")


class Identity:
    def __init__(self, emulator: GraphEmulator) -> None:
        from ._authorize import Authorize

        self.emu = emulator
        self.authorize = Authorize(self)

    # -- routing --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        match = _ROUTE.match(request.path)
        if match is None or match.group("authorize"):
            # The authorization endpoint answers browsers with pages, not JSON errors.
            return self.authorize.handle(request, match.group("tenant")) if match else None
        segment = match.group("tenant")
        try:
            tenant = self._tenant(segment)
            if match.group("discovery") and request.method == "GET":
                return json_response(200, self.openid_configuration(segment, tenant))
            if match.group("keys") and request.method == "GET":
                return json_response(200, self.jwks())
            if match.group("devicecode") and request.method == "POST":
                return self.devicecode(request, tenant)
            if match.group("token") and request.method == "POST":
                return self.token(request, tenant)
            raise OAuthError(
                "invalid_request",
                900561,
                f"The endpoint only accepts POST, OPTIONS requests. Received a "
                f"{request.method} request.",
            )
        except OAuthError as error:
            return self.error_response(request, error)

    def path_tenant(self, request: Request) -> Tenant | None:
        """The tenant the path names, None for /common, /organizations or an unknown one."""
        match = _ROUTE.match(request.path)
        return self.emu.find_tenant(match.group("tenant")) if match else None

    def _tenant(self, segment: str) -> Tenant | None:
        """The tenant `segment` names; None for the /common and /organizations aliases."""
        tenant = self.emu.find_tenant(segment)
        if tenant is None and segment.lower() not in ("organizations", "common"):
            raise OAuthError(
                "invalid_tenant",
                90002,
                f"Tenant '{segment}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud.",
            )
        return tenant

    def error_response(self, request: Request, error: OAuthError) -> Response:
        now = self.emu.now_datetime()
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        body = {
            "error": error.error,
            "error_description": (
                f"AADSTS{error.code}: {error.description} Trace ID: {trace_id} "
                f"Correlation ID: {correlation_id} Timestamp: {stamp}"
            ),
            "error_codes": [error.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.emu.base_url}/error?code={error.code}",
            **error.extra,
        }
        return json_response(error.status, body)

    # -- discovery ------------------------------------------------------------------------

    def issuer(self, tenant: Tenant | None = None) -> str:
        return (tenant or self.emu.home).issuer

    def openid_configuration(self, requested: str, tenant: Tenant | None) -> dict[str, Any]:
        base = self.emu.base_url
        # Tenant-specific metadata names the tenant GUID in every endpoint (MSAL takes the
        # tenant for its cache from token_endpoint); /common and /organizations keep their
        # alias and publish a "{tenantid}" issuer template, as Entra does.
        segment = requested if tenant is None else tenant.tenant_id
        issuer = f"{base}/{{tenantid}}/v2.0" if tenant is None else tenant.issuer
        return {
            "token_endpoint": f"{base}/{segment}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/{segment}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{segment}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{segment}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{segment}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "email",
            ],
            "kerberos_endpoint": f"{base}/{segment}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "emulator.invalid",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": base.removeprefix("https://"),
            "rbac_url": "https://pas.windows.net",
        }

    def jwks(self) -> dict[str, Any]:
        pki = self.emu.pki
        return {"keys": [jwk_for(pki.signing_cert, pki.signing_kid)]}

    # -- scopes -----------------------------------------------------------------------------

    def graph_resources(self) -> set[str]:
        base = self.emu.base_url
        return {base.lower(), f"{base}/".lower(), GRAPH_APP_ID}

    def parse_scope(self, scope: str, tenant: Tenant | None = None) -> ScopeRequest:
        resources: set[str] = set()
        spelled: str | None = None
        names: list[str] = []
        oidc: set[str] = set()
        for item in scope.split():
            if item.lower() in OIDC_SCOPES:
                oidc.add(item.lower())
                continue
            if "/" in item:
                resource, _, name = item.rpartition("/")
            else:  # a bare permission name means Microsoft Graph
                resource, name = GRAPH_APP_ID, item
            if resource.lower() not in self.graph_resources():
                raise OAuthError(
                    "invalid_resource",
                    500011,
                    f"The resource principal named {resource} was not found in the tenant "
                    f"named {(tenant or self.emu.home).domain}. This can happen if the application "
                    "has not been installed by the administrator of the tenant or consented "
                    "to by any user in the tenant. You might have sent your authentication "
                    "request to the wrong tenant.",
                )
            resources.add(resource.lower().rstrip("/"))
            if "/" in item:
                spelled = spelled or resource
            canonical = ".default" if name == ".default" else canonical_permission(name)
            if canonical is None:
                raise OAuthError(
                    "invalid_scope",
                    70011,
                    f"The provided value for the input parameter 'scope' is not valid. The "
                    f"scope '{item}' does not exist.",
                )
            names.append(canonical)
        if len(resources) > 1:
            raise OAuthError(
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it "
                "contains more than one resource. Scope " + scope + " is not valid.",
            )
        if ".default" in names and len(names) > 1:
            raise OAuthError(
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope "
                f"{scope} is not valid. static scope limit exceeded.",
            )
        return ScopeRequest(spelled, tuple(dict.fromkeys(names)), frozenset(oidc))

    # -- device code --------------------------------------------------------------------------

    def devicecode(self, request: Request, tenant: Tenant | None) -> Response:
        form = request.form()
        app = self._app(form.get("client_id"), tenant, consent_at_sign_in=True)
        scope = form.get("scope", "")
        if not scope.strip():
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        self.parse_scope(scope, tenant)
        if not app.public_client:
            # What Entra answers when "Allow public client flows" is off for the app.
            raise OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
                status=401,
            )
        emu = self.emu
        now = emu.now()
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        flow = DeviceCode(
            device_code=secrets.token_urlsafe(48),
            user_code=user_code,
            client_id=app.client_id,
            scope=scope,
            issued_at=now,
            expires_at=now + emu.device_code_lifetime,
            interval=emu.device_code_interval,
            tenant_id=tenant.tenant_id if tenant is not None else None,
        )
        emu.device_codes[flow.device_code] = flow
        emu.device_code_issued.notify_all()
        verification_uri = f"{emu.base_url}/devicelogin"
        return json_response(
            200,
            {
                "user_code": user_code,
                "device_code": flow.device_code,
                "verification_uri": verification_uri,
                "expires_in": emu.device_code_lifetime,
                "interval": flow.interval,
                "message": (
                    f"To sign in, use a web browser to open the page {verification_uri} and "
                    f"enter the code {user_code} to authenticate."
                ),
            },
        )

    # -- token ------------------------------------------------------------------------------

    def token(self, request: Request, tenant: Tenant | None) -> Response:
        form = request.form()
        grant_type = form.get("grant_type", "")
        if grant_type == DEVICE_CODE_GRANT:
            return self._device_code_grant(request, form, tenant)
        if grant_type == "client_credentials":
            return self._client_credentials_grant(request, form, tenant)
        if grant_type == "refresh_token":
            return self._refresh_token_grant(request, form, tenant)
        if grant_type == "authorization_code":
            return self.authorize.redeem(request, form, tenant)
        if not grant_type:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        raise OAuthError(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )

    def _app(
        self, client_id: str | None, tenant: Tenant | None, *, consent_at_sign_in: bool
    ) -> App:
        """The app `client_id` names, as the tenant sees it. `consent_at_sign_in`: a user
        signs in next (device code, refresh token), so a multi-tenant app that the tenant has
        not consented to yet is let through to the consent check at token issuance."""
        if not client_id:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        app = self.emu.apps.get(client_id.lower())
        if app is not None and tenant is None:
            if not app.multi_tenant:
                raise OAuthError(
                    "invalid_request",
                    50194,
                    f"Application '{app.client_id}'({app.display_name}) is not configured as a "
                    "multi-tenant application. Usage of the /common endpoint is not supported "
                    "for such applications created after '10/15/2018'. Use a tenant-specific "
                    "endpoint or configure the application to be multi-tenant.",
                )
            return app
        if app is not None and tenant is not None:
            if tenant.service_principal(app) is not None:
                return app
            if consent_at_sign_in and app.multi_tenant:
                return app
        directory = tenant.domain if tenant is not None else "common"
        raise OAuthError(
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{directory}'. This can happen if the application has not been installed by "
            "the administrator of the tenant or consented to by any user in the tenant. You "
            "may have sent your authentication request to the wrong tenant.",
        )

    def _authenticate_client(
        self,
        request: Request,
        form: dict[str, str],
        tenant: Tenant | None,
        *,
        required: bool,
    ) -> App:
        client_id = form.get("client_id")
        basic = request.headers.get("authorization", "")
        secret = form.get("client_secret")
        if basic.lower().startswith("basic "):
            decoded = base64.b64decode(basic[6:]).decode("utf-8", "replace")
            client_id, _, secret = decoded.partition(":")
        app = self._app(client_id, tenant, consent_at_sign_in=not required)
        assertion = form.get("client_assertion")
        if app.public_client and not app.confidential and (secret or assertion):
            raise OAuthError(
                "invalid_request",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should "
                "be presented.",
            )
        if assertion is not None:
            if form.get("client_assertion_type") != JWT_BEARER:
                raise OAuthError(
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: "
                    "'client_assertion_type'.",
                )
            self._verify_assertion(app, assertion, request, tenant)
        elif secret is not None:
            if not any(secrets.compare_digest(secret, known) for known in app.secrets):
                raise OAuthError(
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID, for a "
                    f"secret added to app '{app.client_id}'.",
                    status=401,
                )
        elif required or (app.confidential and not app.public_client):
            raise OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
                status=401,
            )
        return app

    def _verify_assertion(
        self, app: App, assertion: str, request: Request, tenant: Tenant | None
    ) -> None:
        try:
            header, claims, signing_input, signature = unverified_parts(assertion)
        except JwtError as exc:
            raise OAuthError(
                "invalid_client", 50027, f"JWT token is invalid or malformed. {exc}", status=401
            ) from exc
        # MSAL (1.39) keeps base64 padding on x5t / x5t#S256, which RFC 7515 leaves out;
        # Entra accepts both spellings.
        sent_s256 = str(header.get("x5t#S256", "")).rstrip("=")
        sent_sha1 = str(header.get("x5t", "")).rstrip("=")
        certificate = None
        for cert in app.certificates:
            x5t, x5t_s256 = thumbprints(cert)
            if sent_s256 == x5t_s256 or sent_sha1 == x5t:
                certificate = cert
        if certificate is None:
            raise OAuthError(
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Thumbprint of "
                f"key used by client: '{header.get('x5t#S256') or header.get('x5t')}']",
                status=401,
            )
        try:
            verify_signature(
                str(header.get("alg")), certificate.public_key(), signing_input, signature
            )
        except JwtError as exc:
            raise OAuthError(
                "invalid_client",
                700027,
                "Client assertion failed signature validation.",
                status=401,
            ) from exc
        now = self.emu.now()
        token_endpoint = f"{self.emu.base_url}{request.path}"
        audiences = {token_endpoint.lower(), self.issuer(tenant).lower()}
        if str(claims.get("aud", "")).lower() not in audiences:
            raise OAuthError(
                "invalid_client",
                700212,
                f"No matching federated identity record found for presented assertion "
                f"audience '{claims.get('aud')}'.",
                status=401,
            )
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise OAuthError(
                "invalid_client",
                700023,
                "Client assertion audience, issuer or subject does not match the client.",
                status=401,
            )
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now:
            raise OAuthError(
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
                status=401,
            )

    def _device_code_grant(
        self, request: Request, form: dict[str, str], tenant: Tenant | None
    ) -> Response:
        app = self._authenticate_client(request, form, tenant, required=False)
        flow = self.emu.device_codes.get(form.get("device_code", ""))
        if (
            flow is None
            or flow.client_id.lower() != app.client_id.lower()
            or (tenant is not None and flow.tenant_id not in (None, tenant.tenant_id))
        ):
            raise OAuthError(
                "bad_verification_code",
                70018,
                "The provided value for the input parameter 'device_code' is not valid.",
            )
        flow.polls += 1
        if flow.state == "pending" and self.emu.now() >= flow.expires_at:
            flow.state = "expired"
        if flow.state == "pending":
            raise OAuthError(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        if flow.state == "declined":
            raise OAuthError(
                "authorization_declined",
                70000,  # not in the documented list; the RFC 8628 error is what clients read
                "The end user denied the authorization request.",
            )
        if flow.state in ("expired", "redeemed") or flow.user is None:
            raise OAuthError(
                "expired_token",
                70019,
                "Verification code expired. Have the user retry the sign-in.",
            )
        flow.state = "redeemed"
        return self._delegated_tokens(app, flow.user, flow.scope, form)

    def _client_credentials_grant(
        self, request: Request, form: dict[str, str], tenant: Tenant | None
    ) -> Response:
        if tenant is None:
            raise OAuthError(
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or implied by "
                "any provided credentials.",
            )
        app = self._authenticate_client(request, form, tenant, required=True)
        principal = tenant.service_principal(app)  # there: _app let only consented apps by
        scopes = self.parse_scope(form.get("scope", ""), tenant)
        if not scopes.is_default or scopes.oidc:
            raise OAuthError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope', '')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        lifetime = self.emu.access_token_lifetime
        token = self.emu.mint_access_token(
            app,
            roles=sorted(principal.app_roles if principal else ()),
            lifetime=lifetime,
            tenant=tenant,
        )
        return json_response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            },
        )

    def _refresh_token_grant(
        self, request: Request, form: dict[str, str], tenant: Tenant | None
    ) -> Response:
        app = self._authenticate_client(request, form, tenant, required=False)
        token = form.get("refresh_token", "")
        grant = self.emu.refresh_grants.get(token)
        if (
            grant is None
            or grant.client_id.lower() != app.client_id.lower()
            or (tenant is not None and grant.tenant_id != tenant.tenant_id)
        ):
            raise OAuthError(
                "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if grant.revoked:
            raise OAuthError(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token "
                "is needed. The user might have changed or reset their password.",
                suberror="bad_token",
            )
        if self.emu.now() >= grant.expires_at:
            raise OAuthError(
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. The token was issued on "
                f"{dt.datetime.fromtimestamp(grant.issued_at, dt.UTC).isoformat()} and was "
                "inactive for too long.",
                suberror="bad_token",
            )
        user = self.emu.tenant(grant.tenant_id).users[grant.user_id]
        scope = form.get("scope") or "openid profile offline_access"
        return self._delegated_tokens(app, user, scope, form)

    # -- issuing ------------------------------------------------------------------------------

    def _delegated_tokens(
        self, app: App, user: User, scope: str, form: dict[str, str], nonce: str | None = None
    ) -> Response:
        """Tokens for `user` in the user's tenant, with what that tenant consented to."""
        emu = self.emu
        tenant = emu.tenant(user.tenant_id)
        request = self.parse_scope(scope, tenant)
        principal = tenant.service_principal(app)
        consented = principal.delegated_scopes if principal is not None else set()
        if request.is_default and principal is not None:
            granted = sorted(consented)
        else:
            missing = [name for name in request.names if name not in consented]
            if missing or principal is None:
                raise OAuthError(
                    "invalid_grant",
                    65001,
                    f"The user or administrator has not consented to use the application with "
                    f"ID '{app.client_id}' named '{app.display_name}'. Send an interactive "
                    "authorization request for this user and resource.",
                    suberror="consent_required",
                )
            granted = list(request.names)
        lifetime = emu.access_token_lifetime
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(
                # Scopes come back spelled as asked: with the resource URI, or bare.
                [f"{request.resource}/{name}" if request.resource else name for name in granted]
                + sorted(request.oidc - {"offline_access"})
            ),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": emu.mint_access_token(
                app, user=user, scopes=granted, lifetime=lifetime, tenant=tenant
            ),
        }
        if "offline_access" in request.oidc:
            refresh_token = "1.emu." + secrets.token_urlsafe(64)
            now = emu.now()
            emu.refresh_grants[refresh_token] = RefreshGrant(
                client_id=app.client_id,
                user_id=user.id,
                issued_at=now,
                expires_at=now + emu.refresh_token_lifetime,
                tenant_id=tenant.tenant_id,
            )
            body["refresh_token"] = refresh_token
        if "openid" in request.oidc:
            body["id_token"] = emu.mint_id_token(app, user, tenant, nonce)
        if form.get("client_info") == "1":
            body["client_info"] = b64url_json({"uid": user.id, "utid": tenant.tenant_id})
        return json_response(200, body)
