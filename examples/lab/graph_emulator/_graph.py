"""Microsoft Graph v1.0: devices, BitLocker recovery keys and JSON batching; the routes to
Intune managed devices (_intune) and the directory audit log (_audit).

Graph serves /beta as well as /v1.0: the same resources, plus the beta-only
rotateBitLockerKeys action; `@odata.context` and `@odata.nextLink` name the request's version.

Sources, by behaviour:
- error envelope, request-id / client-request-id headers: "Microsoft Graph error responses
  and resource types" (learn.microsoft.com/graph/errors).
- 401 InvalidAuthenticationToken messages ("Access token is empty.", "Lifetime validation
  failed, the token is expired.") and the WWW-Authenticate header: real Graph responses
  quoted in issues (e.g. Microsoft365DSC#4427, microsoftgraph/python-sample-auth#10).
- BitLocker: bitlocker-list-recoverykeys and bitlockerrecoverykey-get (v1.0). `key` only
  with `$select=key` alone (microsoft-graph-explorer-v4#3491: with `$select=key` the
  service returns every property plus `key`; with `key,id,...` it drops `key`). The missing
  User-Agent answer (400 invalid_request, "... Parameter (User-Agent) is required but
  missing from headers") and the permission answer (403 authorization_error, "Failed to
  authorize, token doesn't have the required permissions.") are the BitLocker service's
  own, quoted in microsoft-graph-docs-contrib#2505 and ugurkocde/DeviceOffboardingManager#24.
  The docs require User-Agent for the BitLocker endpoints; the emulator requires it on
  every Graph request, which is the stricter contract clients should meet.
- Devices: 403 Authorization_RequestDenied "Insufficient privileges to complete the
  operation." and 400 "Invalid page size specified" are the directory's answers; paging by
  absolute `@odata.nextLink` with `$skiptoken` ("Paging Microsoft Graph data").
- $batch: json-batching (at most 20 requests, relative URLs, ids unique, responses in any
  order, dependsOn -> 424). An absolute item URL fails that item with 400 "Resource not
  found for the segment 'https:'." (msgraph-sdk-python#1015).
- 429 body: the sample in "Microsoft Graph throttling guidance".
Where no source gives the exact words (unknown recovery key id, too many batch requests,
unsupported BitLocker query options), the message is the emulator's own and says so here.

Tenants: a request is served from the directory of the tenant whose ID is its access token's
`tid` (the token's `iss` must be that tenant's issuer), so a token from one tenant never sees
another tenant's devices or keys. Lists page over a tenant's explicit items, then its
generated blocks (see _generated); `$skiptoken` carries a position in that sequence and a
fingerprint of the query it belongs to.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as urlquote

from . import _audit, _delta, _groups, _intune, _policies, _roles
from ._crypto import JwtError, unverified_parts, verify_signature
from ._generated import Chain, DeviceSegment, GeneratedKeys, KeySegment, ListSegment
from ._http import Request, Response, json_response
from ._model import (
    BITLOCKER_READ,
    BITLOCKER_READ_BASIC,
    BITLOCKER_ROLES,
    DEVICE_READERS,
    GRAPH_APP_ID,
    AuditEvent,
    Device,
    KeyRead,
    RecoveryKey,
    User,
)
from ._odata import Clause, FilterSyntaxError, UnsupportedFilter, parse_filter
from ._tenant import device_target, key_detail

if TYPE_CHECKING:
    from ._emulator import GraphEmulator
    from ._tenant import Tenant

ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
MAX_BATCH = 20
DEVICE_PROPERTIES = {
    name.lower(): name
    for name in (
        "id",
        "deletedDateTime",
        "accountEnabled",
        "deviceId",
        "displayName",
        "operatingSystem",
        "operatingSystemVersion",
        "trustType",
    )
}
DEVICE_FILTERS = {  # property -> operators Graph supports without advanced query headers
    "id": {"eq", "in"},
    "deviceId": {"eq", "in"},
    "displayName": {"eq", "in", "startswith"},
    "operatingSystem": {"eq", "in", "startswith"},
}
KEY_PROPERTIES = {
    name.lower(): name for name in ("id", "createdDateTime", "volumeType", "deviceId", "key")
}
BITLOCKER_DENIED = "Failed to authorize, token doesn't have the required permissions."


class GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        inner: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner or {}  # extra innerError fields


@dataclass(frozen=True)
class Principal:
    app_id: str
    delegated: bool
    scopes: frozenset[str]  # `scp` of a delegated token
    roles: frozenset[str]  # `roles` of an app-only token
    user: User | None
    tenant: Tenant  # the token's `tid`: the only directory the caller sees

    def has(self, *permissions: str) -> bool:
        granted = self.scopes if self.delegated else self.roles
        return any(p in granted for p in permissions)


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def segment_not_found(segment: str) -> GraphError:
    return bad_request(f"Resource not found for the segment '{segment}'.")


class Graph:
    def __init__(self, emulator: GraphEmulator) -> None:
        self.emu = emulator
        # Bearer tokens whose signature verified, with their claims. A signature check is a
        # pure function of the token and the emulator's key, so it is done once per token
        # (an RSA verification per request would cap paging speed); every other check
        # (audience, issuer, lifetime, user) runs on each request.
        self._verified: dict[str, dict[str, Any]] = {}

    def _verified_claims(self, token: str) -> dict[str, Any]:
        claims = self._verified.get(token)
        if claims is not None:
            return claims
        header, claims, signing_input, signature = unverified_parts(token)
        if header.get("kid") != self.emu.pki.signing_kid:
            raise JwtError("unknown signing key")
        verify_signature(
            str(header.get("alg")),
            self.emu.pki.signing_cert.public_key(),
            signing_input,
            signature,
        )
        if len(self._verified) >= 1024:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    # -- envelope ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id") or request_id
        try:
            response = self._route(request, request_id)
        except GraphError as error:
            response = self.error_response(error, request_id, client_request_id)
        response.headers.setdefault("Cache-Control", "no-cache")
        response.headers["request-id"] = request_id
        response.headers["client-request-id"] = client_request_id
        response.headers["x-ms-ags-diagnostic"] = json.dumps(
            {"ServerInfo": {"DataCenter": "Emulator", "Slice": "E", "Ring": "0"}}
        )
        return response

    def error_response(
        self, error: GraphError, request_id: str, client_request_id: str
    ) -> Response:
        inner: dict[str, Any] = {
            **error.inner,
            "date": self.emu.now_datetime().strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id,
            "client-request-id": client_request_id,
        }
        return json_response(
            error.status,
            {"error": {"code": error.code, "message": error.message, "innerError": inner}},
            headers=dict(error.headers),
        )

    def metadata(self, request: Request) -> str:
        """The service root's $metadata for the request's version (v1.0 or beta)."""
        return f"{self.emu.base_url}/{api_version(request)}/$metadata"

    def ok(self, payload: dict[str, Any]) -> Response:
        return json_response(200, payload, {"OData-Version": "4.0"}, content_type=ODATA_JSON)

    def _route(self, request: Request, request_id: str) -> Response:
        segments = request.path.split("/")[2:]  # after "", "v1.0" (or "beta")
        lowered = [s.lower() for s in segments]
        if lowered == ["$batch"]:
            if request.via_batch:
                raise bad_request("Nested batch requests are not supported.")
            if request.method != "POST":
                raise method_not_allowed()
            principal = self.authenticate(request)
            return self.batch(request, principal)
        principal = self.authenticate(request)
        if not request.headers.get("user-agent"):
            raise GraphError(
                400,
                "invalid_request",
                "The request failed with status BadRequest (400). Parameter (User-Agent) is "
                "required but missing from headers",
            )
        if lowered[:1] == ["devices"] and len(lowered) <= 2 and not _delta.is_delta(lowered):
            require_get(request)
            if len(segments) == 2:
                return self.device(request, principal, segments[1])
            return self.devices(request, principal)
        if lowered[:3] == ["informationprotection", "bitlocker", "recoverykeys"]:
            require_get(request)
            if len(segments) == 3:
                return self.recovery_keys(request, principal)
            if len(segments) == 4:
                return self.recovery_key(request, principal, segments[3], request_id)
        answer = self._route_policies_and_roles(request, principal, lowered)
        if answer is None:
            answer = self._route_intune_and_audit(request, principal, segments, request_id)
        if answer is not None:
            return answer
        raise segment_not_found(first_unknown_segment(segments))

    def _route_policies_and_roles(
        self, request: Request, principal: Principal, lowered: list[str]
    ) -> Response | None:
        if _delta.is_delta(lowered):
            require_get(request)
            return _delta.devices_delta(self, request, principal)
        if lowered in (
            ["me", "transitivememberof"],
            ["me", "transitivememberof", "microsoft.graph.group"],
        ):
            require_get(request)
            return _groups.transitive_member_of(self, request, principal)
        if lowered == ["policies", "authorizationpolicy"]:
            return _policies.authorization_policy(self, request, principal)
        if lowered == ["rolemanagement", "directory", "roledefinitions"]:
            return _roles.role_definitions(self, request, principal)
        if lowered == ["rolemanagement", "directory", "roleassignments"]:
            return _roles.role_assignments(self, request, principal)
        return None

    def _route_intune_and_audit(
        self, request: Request, principal: Principal, segments: list[str], request_id: str
    ) -> Response | None:
        """deviceManagement/managedDevices (and the beta rotate action), auditLogs."""
        lowered = [s.lower() for s in segments]
        if lowered[:2] == ["devicemanagement", "manageddevices"] and len(lowered) <= 4:
            if len(segments) == 4 and lowered[3] == "rotatebitlockerkeys":
                if api_version(request) != "beta":
                    raise segment_not_found(segments[3])  # a beta-only action
                if request.method != "POST":
                    raise method_not_allowed()
                return _intune.rotate_bitlocker_keys(
                    self, request, principal, segments[2], request_id
                )
            if len(segments) <= 3:
                require_get(request)
                if len(segments) == 3:
                    return _intune.managed_device(self, request, principal, segments[2])
                return _intune.managed_devices(self, request, principal)
        if lowered[:2] == ["auditlogs", "directoryaudits"] and len(lowered) <= 3:
            require_get(request)
            if len(segments) == 3:
                return _audit.directory_audit(self, request, principal, segments[2])
            return _audit.directory_audits(self, request, principal)
        return None

    # -- authentication ---------------------------------------------------------------------

    def unauthorized(self, message: str) -> GraphError:
        challenge = (
            f'Bearer realm="", authorization_uri="{self.emu.base_url}/common/oauth2/authorize", '
            f'client_id="{GRAPH_APP_ID}"'
        )
        return GraphError(
            401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": challenge}
        )

    def token_tenant(self, request: Request) -> Tenant | None:
        """The tenant named by the `tid` of the request's bearer token, unverified (for
        faults, latency and the request log; `authenticate` checks the token)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        claims = self._verified.get(token)
        if claims is None:
            try:
                _, claims, _, _ = unverified_parts(token)
            except JwtError:
                return None
        tid = claims.get("tid")
        return self.emu.tenants.get(tid.lower()) if isinstance(tid, str) else None

    def authenticate(self, request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self.unauthorized("Access token is empty.")
        emu = self.emu
        try:
            claims = self._verified_claims(token.strip())
        except JwtError as exc:
            raise self.unauthorized("Access token validation failure.") from exc
        audiences = {emu.base_url.lower(), f"{emu.base_url}/".lower(), GRAPH_APP_ID}
        if str(claims.get("aud", "")).lower() not in audiences:
            raise self.unauthorized("Access token validation failure. Invalid audience.")
        tid = claims.get("tid")
        tenant = emu.tenants.get(tid.lower()) if isinstance(tid, str) else None
        if tenant is None or claims.get("iss") != tenant.access_token_issuer:
            raise self.unauthorized("Access token validation failure. Invalid issuer.")
        now = emu.now()
        if float(claims.get("exp", 0)) + emu.clock_skew <= now:
            raise self.unauthorized("Lifetime validation failed, the token is expired.")
        if float(claims.get("nbf", 0)) - emu.clock_skew > now:
            raise self.unauthorized("Lifetime validation failed, the token is not yet valid.")
        delegated = claims.get("idtyp") == "user"
        user = tenant.users.get(str(claims.get("oid"))) if delegated else None
        if delegated and user is None:
            raise self.unauthorized("Access token validation failure. User not found.")
        return Principal(
            app_id=str(claims.get("appid")),
            delegated=delegated,
            scopes=frozenset(str(claims.get("scp", "")).split()),
            roles=frozenset(claims.get("roles") or ()),
            user=user,
            tenant=tenant,
        )

    # -- devices ----------------------------------------------------------------------------

    def devices(self, request: Request, principal: Principal) -> Response:
        if not principal.has(*DEVICE_READERS):
            raise insufficient_privileges()
        tenant = principal.tenant
        params = query_options(request, {"$filter", "$select", "$top", "$skiptoken"})
        select = parse_select(params.get("$select"), DEVICE_PROPERTIES, "device")
        explicit = list(tenant.devices)
        blocks = list(tenant.generated)
        chain = Chain([ListSegment(explicit, Device.to_graph), *(DeviceSegment(b) for b in blocks)])
        predicate = None
        candidates = None
        if "$filter" in params:
            try:
                predicate, clauses = parse_filter(params["$filter"], DEVICE_PROPERTIES)
            except FilterSyntaxError as exc:
                raise bad_request(f"Invalid filter clause: {exc}") from exc
            except UnsupportedFilter as exc:
                raise unsupported_filter(exc.prop) from exc
            for clause in clauses:
                if clause.op not in DEVICE_FILTERS.get(clause.prop, set()):
                    raise unsupported_filter(clause.prop)
            candidates = device_candidates(chain, len(explicit), blocks, clauses)
        top = tenant.devices_page_size
        if "$top" in params:
            value = params["$top"]
            if not value.isdigit() or not 1 <= int(value) <= 999:
                raise bad_request(
                    f"Invalid page size specified: '{value}'. Must be between 1 and 999 inclusive.",
                    code="Request_BadRequest",
                )
            top = int(value)
        start = self.start_position(request, params)
        rows, next_position = chain.page(start, top, predicate=predicate, candidates=candidates)
        context = f"{self.metadata(request)}#devices"
        if select:
            context += "(" + ",".join(select) + ")"
            rows = [{name: row[name] for name in select} for row in rows]
        return self.page(request, params, rows, next_position, context)

    def device(self, request: Request, principal: Principal, object_id: str) -> Response:
        if not principal.has(*DEVICE_READERS):
            raise insufficient_privileges()
        params = query_options(request, {"$select"})
        select = parse_select(params.get("$select"), DEVICE_PROPERTIES, "device")
        device = principal.tenant.find_device(object_id)
        if device is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{object_id}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        row = device.to_graph()
        if select:
            row = {name: row[name] for name in select}
        context = f"{self.metadata(request)}#devices/$entity"
        return self.ok({"@odata.context": context, **row})

    # -- paging -----------------------------------------------------------------------------

    def start_position(self, request: Request, params: dict[str, str]) -> int:
        """Where the page starts: 0, or the position the request's $skiptoken carries."""
        if "$skiptoken" not in params:
            return 0
        return decode_skiptoken(params["$skiptoken"], query_fingerprint(request.path, params))

    def page(
        self,
        request: Request,
        params: dict[str, str],
        rows: list[dict[str, Any]],
        next_position: int | None,
        context: str,
    ) -> Response:
        """A collection page; with `@odata.nextLink` (the same query, a new $skiptoken) when
        more follows."""
        payload: dict[str, Any] = {"@odata.context": context}
        if next_position is not None:
            token = encode_skiptoken(next_position, query_fingerprint(request.path, params))
            kept = [(k, v) for k, v in request.query_params() if k != "$skiptoken"]
            query = "&".join(f"{k}={urlquote(v, safe='')}" for k, v in kept)
            query = f"{query}&$skiptoken={token}" if query else f"$skiptoken={token}"
            payload["@odata.nextLink"] = f"{self.emu.base_url}{request.path}?{query}"
        payload["value"] = rows
        return self.ok(payload)

    # -- BitLocker --------------------------------------------------------------------------

    def _may_read_device_keys(self, principal: Principal, device_id: str) -> bool:
        """Delegated callers need a BitLocker role or to own the device (docs, Permissions)."""
        user = principal.user
        if not principal.delegated or user is None:
            return True
        if user.roles & BITLOCKER_ROLES:
            return True
        return device_id.lower() in owned_device_ids(principal.tenant, user)

    def recovery_keys(self, request: Request, principal: Principal) -> Response:
        if not principal.has(BITLOCKER_READ, BITLOCKER_READ_BASIC):
            raise bitlocker_denied()
        tenant = principal.tenant
        # bitlocker-list-recoverykeys: "$filter ... by the deviceId"; "does not support $top".
        # The 400 texts below are the emulator's own; the service's are not documented.
        params = query_options(
            request, {"$filter", "$select", "$skiptoken"}, code="invalid_request"
        )
        select = parse_select(params.get("$select"), KEY_PROPERTIES, "bitlockerRecoveryKey")
        explicit = list(tenant.recovery_keys.values())
        blocks = list(tenant.generated)
        chain = Chain(
            [ListSegment(explicit, RecoveryKey.metadata), *(KeySegment(b) for b in blocks)]
        )
        candidates: list[int] | None = None  # None: every key
        user = principal.user
        if "$filter" in params:
            device_id = bitlocker_filter(params["$filter"]).lower()
            if not self._may_read_device_keys(principal, device_id):
                raise bitlocker_denied()
            candidates = [i for i, k in enumerate(explicit) if k.device_id.lower() == device_id]
            for number, block in enumerate(blocks, start=1):
                device_index = block.device_index(device_id)
                if device_index is not None:
                    base = chain.start_of(number)
                    candidates += [base + i for i in block.keys_of(device_index)]
        elif principal.delegated and user is not None and not user.roles & BITLOCKER_ROLES:
            # Only the keys of devices the caller owns; generated devices have no owners.
            owned = owned_device_ids(tenant, user)
            candidates = [i for i, k in enumerate(explicit) if k.device_id.lower() in owned]
        start = self.start_position(request, params)
        page_size = tenant.recovery_keys_page_size
        rows, next_position = chain.page(start, page_size, candidates=candidates)
        # The list never returns `key`. `$select=key` alone behaves as on GET by id (every
        # property comes back), minus the key itself; other selections project the metadata.
        if select and select != ["key"]:
            rows = [{name: row[name] for name in select if name in row} for row in rows]
        context = f"{self.metadata(request)}#informationProtection/bitlocker/recoveryKeys"
        return self.page(request, params, rows, next_position, context)

    def recovery_key(
        self, request: Request, principal: Principal, key_id: str, request_id: str
    ) -> Response:
        if not principal.has(BITLOCKER_READ, BITLOCKER_READ_BASIC):
            raise bitlocker_denied()
        params = query_options(request, {"$select"}, code="invalid_request")
        select = parse_select(params.get("$select"), KEY_PROPERTIES, "bitlockerRecoveryKey")
        wants_key = select == ["key"]
        if wants_key and not principal.has(BITLOCKER_READ):
            raise bitlocker_denied()
        key = principal.tenant.find_recovery_key(key_id)
        if key is None:
            raise GraphError(404, "itemNotFound", f"Recovery key with id '{key_id}' was not found.")
        if not self._may_read_device_keys(principal, key.device_id):
            raise bitlocker_denied()
        row: dict[str, Any] = key.metadata()
        if wants_key:
            row["key"] = key.key
            self.audit(principal, key, request_id)
        elif select:
            row = {name: row[name] for name in select if name in row}
        context = f"{self.metadata(request)}#informationProtection/bitlocker/recoveryKeys/$entity"
        return self.ok({"@odata.context": context, **row})

    def audit(self, principal: Principal, key: RecoveryKey, request_id: str) -> None:
        """A password was served: the KeyRead log, and the "Read BitLocker key" event the
        directory audit log (GET /auditLogs/directoryAudits) shows."""
        user = principal.user
        tenant = principal.tenant
        device = tenant.device_by_device_id(key.device_id)
        tenant.audit_events.append(
            AuditEvent(
                activity_display_name="Read BitLocker key",
                activity_date_time=self.emu.now_datetime(),
                initiated_by=tenant.initiator(user=user, app_id=principal.app_id),
                target_resources=[device_target(device)] if device is not None else [],
                additional_details=[key_detail(key.id, device, key.device_id)],
            )
        )
        principal.tenant.key_reads.append(
            KeyRead(
                key_id=key.id,
                device_id=key.device_id,
                app_id=principal.app_id,
                user_id=user.id if user else None,
                user_principal_name=user.user_principal_name if user else None,
                time=self.emu.now_datetime(),
                request_id=request_id,
                tenant_id=principal.tenant.tenant_id,
            )
        )

    # -- $batch -----------------------------------------------------------------------------

    def batch(self, request: Request, principal: Principal) -> Response:
        del principal  # the outer request must be authenticated; items authenticate again
        try:
            payload = json.loads(request.body or b"null")
            items = payload["requests"]
            if not isinstance(items, list) or not items:
                raise TypeError("requests must be a non-empty array")
            if len(items) > MAX_BATCH:
                raise OverflowError
            ids = [str(item["id"]) for item in items]
            for item in items:
                if not isinstance(item.get("method"), str) or not isinstance(item["url"], str):
                    raise TypeError("method and url are strings")
        except OverflowError as exc:
            # Limit from json-batching; the exact wording is the emulator's own.
            raise bad_request(
                f"The batch contains {len(items)} requests; at most {MAX_BATCH} are allowed."
            ) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise bad_request("Invalid batch payload format.") from exc
        if len({i.lower() for i in ids}) != len(ids):
            raise bad_request("Batch request ids must be unique (case-insensitive).")
        statuses: dict[str, int] = {}
        responses = []
        for item_id, item in zip(ids, items, strict=True):
            depends = [str(d).lower() for d in item.get("dependsOn") or []]
            if any(d not in statuses for d in depends):
                raise bad_request(
                    "Invalid batch payload format. dependsOn must name an earlier id."
                )
            if any(statuses[d] >= 400 for d in depends):
                status, headers, body = (
                    424,
                    {"Content-Type": "application/json"},
                    {"error": {"code": "FailedDependency", "message": "A dependency failed."}},
                )
            else:
                status, headers, body = self.batch_item(request, item)
            statuses[item_id.lower()] = status
            entry: dict[str, Any] = {"id": item_id, "status": status, "headers": headers}
            if body is not None:
                entry["body"] = body
            responses.append(entry)
        # json-batching: "Individual responses might appear in a different order than the
        # requests." The emulator always reverses them, so clients must match by id.
        return self.ok({"responses": responses[::-1]})

    def batch_item(self, outer: Request, item: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        url = item["url"]
        headers = {
            name: value
            for name, value in outer.headers.items()
            if name in ("authorization", "user-agent", "client-request-id")
        }
        headers.update({str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()})
        body = item.get("body")
        raw = json.dumps(body).encode() if isinstance(body, dict | list) else b""
        inner = Request(
            method=item["method"].upper(),
            target=f"/{api_version(outer)}/" + url.lstrip("/"),
            headers=headers,
            body=raw,
            via_batch=True,
        )
        response = self.emu.dispatch(inner)
        keep = {"content-type", "retry-after", "cache-control", "odata-version", "location"}
        item_headers = {k: v for k, v in response.headers.items() if k.lower() in keep}
        return response.status, item_headers, response.json()


# -- helpers ------------------------------------------------------------------------------------


def api_version(request: Request) -> str:
    """ "v1.0" or "beta": the first segment of a Graph request's path."""
    return request.path.split("/")[1]


def require_get(request: Request) -> None:
    if request.method != "GET":
        raise method_not_allowed()


def method_not_allowed() -> GraphError:
    return GraphError(
        405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
    )


def insufficient_privileges() -> GraphError:
    return GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def bitlocker_denied() -> GraphError:
    return GraphError(403, "authorization_error", BITLOCKER_DENIED)


def unsupported_filter(prop: str) -> GraphError:
    return GraphError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{prop}' of "
        "resource 'Device'.",
    )


def query_options(request: Request, allowed: set[str], code: str = "BadRequest") -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params():
        if not name.startswith("$"):
            continue  # Graph ignores custom query parameters
        if name.lower() not in allowed:
            raise bad_request(f"Query option '{name}' is not supported on this endpoint.", code)
        if name.lower() in params:
            raise bad_request(f"Query option '{name}' was specified more than once.", code)
        params[name.lower()] = value
    return params


def parse_select(text: str | None, properties: dict[str, str], entity: str) -> list[str]:
    if text is None:
        return []
    names = []
    for raw in text.split(","):
        name = properties.get(raw.strip().lower())
        if name is None:
            raise bad_request(
                f"Could not find a property named '{raw.strip()}' on type "
                f"'microsoft.graph.{entity}'."
            )
        names.append(name)
    return list(dict.fromkeys(names))


def bitlocker_filter(text: str) -> str:
    """The only filter the list accepts: a single `deviceId eq '<id>'` clause."""
    try:
        _, clauses = parse_filter(text, {"deviceid": "deviceId"})
    except (FilterSyntaxError, UnsupportedFilter) as exc:
        raise bad_request(f"Invalid filter clause: {exc}", "invalid_request") from exc
    if len(clauses) != 1 or clauses[0] != Clause("deviceId", "eq", clauses[0].values):
        raise bad_request(
            "Only $filter=deviceId eq '<deviceId>' is supported on recoveryKeys.",
            "invalid_request",
        )
    return clauses[0].values[0]


def owned_device_ids(tenant: Tenant, user: User) -> set[str]:
    """deviceIds (lower case) of the tenant's devices `user` is a registered owner of."""
    return {d.device_id.lower() for d in tenant.devices if user.id in d.registered_owners}


_NARROWING = {"id": "object", "deviceId": "device", "displayName": "name"}


def device_candidates(
    chain: Chain, explicit_count: int, blocks: list[GeneratedKeys], clauses: list[Clause]
) -> list[int] | None:
    """Positions that can match a device $filter, or None (test every device).

    The grammar has no negation, so a row that matches has at least one clause true: when
    every clause is an `eq`/`in` on id, deviceId or displayName, the rows those clauses pick
    out of generated blocks (one lookup each) and every explicit device are all that can
    match. The predicate still decides; this only spares scanning generated blocks.
    """
    if not clauses or any(c.op not in ("eq", "in") or c.prop not in _NARROWING for c in clauses):
        return None
    positions = set(range(explicit_count))
    for number, block in enumerate(blocks, start=1):
        base = chain.start_of(number)
        for clause in clauses:
            for value in clause.values:
                kind = _NARROWING[clause.prop]
                if kind == "object":
                    index = block.device_index_by_object_id(value)
                elif kind == "device":
                    index = block.device_index(value)
                else:
                    index = block.device_index_by_name(value)
                if index is not None:
                    positions.add(base + index)
    return sorted(positions)


def query_fingerprint(path: str, params: dict[str, str]) -> str:
    stable = tuple(sorted((k, v) for k, v in params.items() if k != "$skiptoken"))
    return _fingerprint(path.lower(), stable)


@functools.lru_cache(maxsize=256)
def _fingerprint(path: str, stable: tuple[tuple[str, str], ...]) -> str:
    # Every page of a listing has the same fingerprint: computed once, not twice a page.
    return hashlib.sha256(json.dumps([path, stable]).encode()).hexdigest()[:16]


def encode_skiptoken(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_skiptoken(token: str, fingerprint: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = int(data["o"])
        if data["q"] != fingerprint or offset < 0:
            raise ValueError("skiptoken belongs to another query")
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request("Invalid $skiptoken value.", "Request_BadRequest") from exc
    return offset


def first_unknown_segment(segments: list[str]) -> str:
    tree = {
        "devices": {"*": {}},
        "informationprotection": {"bitlocker": {"recoverykeys": {"*": {}}}},
        "devicemanagement": {"manageddevices": {"*": {"rotatebitlockerkeys": {}}}},
        "auditlogs": {"directoryaudits": {"*": {}}},
        "policies": {"authorizationpolicy": {}},
    }
    node: dict[str, Any] = tree
    for segment in segments:
        child = node.get(segment.lower(), node.get("*"))
        if child is None:
            return segment
        node = child
    return segments[-1] if segments else ""
