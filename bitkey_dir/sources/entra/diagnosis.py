"""`doctor` for Entra ID: sign-in, the token's permissions and roles, and Graph's answer.

The access token's claims (``roles`` for an app, ``scp`` and ``wids`` for a signed-in user)
are read from its payload without checking its signature: it came from the identity
platform over TLS a moment ago, and only Graph has to trust it. The token itself is never
shown, logged or kept in a result. Missing permissions come with the admin-consent URL of the
configured authority; a signed-in user without a directory role that reads keys is told
which roles do.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from bitkey_dir import __version__
from bitkey_dir.core.errors import AuthError, SourceError
from bitkey_dir.sources.base import Check, CheckStatus

if TYPE_CHECKING:
    from bitkey_dir.sources.entra.signin import SignIn

# Directory role template IDs (the `wids` claim) of the roles that may read BitLocker keys
# (Graph's bitlockerRecoveryKey pages), and Global Administrator, which may do anything.
KEY_READING_ROLES: Final = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "7698a772-787b-4ac8-901f-60d6b08affd2": "Cloud Device Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Service Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
}


@dataclass(frozen=True)
class Need:
    """A Graph permission, what uses it, the permissions that also grant it, and whether
    today's commands fail without it (else it only limits what may come)."""

    permission: str
    used_by: str
    also: tuple[str, ...] = ()
    required: bool = True


NEEDS: Final = (
    Need("BitlockerKey.Read.All", "find (reading a recovery password)"),
    Need(
        "BitlockerKey.ReadBasic.All",
        "audit and index (key IDs and dates)",
        also=("BitlockerKey.Read.All",),
    ),
    Need(
        "Device.Read.All",
        "find --computer and audit (device names)",
        also=("Device.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    ),
    Need("AuditLog.Read.All", "bitkey-dir reads (Entra's log of key reads)", required=False),
    Need(
        "DeviceManagementManagedDevices.ReadWrite.All",
        "bitkey-dir rotate and find --rotate (Intune's rotate action)",
        required=False,
    ),
)


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT's payload, unverified; {} for anything that is not one.

    >>> payload = base64.urlsafe_b64encode(b'{"roles": ["Device.Read.All"]}').rstrip(b"=")
    >>> token_claims("e30." + payload.decode() + ".sig")
    {'roles': ['Device.Read.All']}
    >>> token_claims("not a token")
    {}
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(body.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def granted(claims: Mapping[str, Any]) -> set[str]:
    """The Graph permissions a token carries, lower-cased: app roles and delegated scopes."""
    found: set[str] = set()
    roles = claims.get("roles")
    if isinstance(roles, list):
        found.update(str(role).lower() for role in roles)
    scopes = claims.get("scp")
    if isinstance(scopes, str):
        found.update(scope.lower() for scope in scopes.split())
    return found


def role_ids(claims: Mapping[str, Any]) -> list[str] | None:
    """The directory role template IDs of a delegated token, or None when it does not say."""
    wids = claims.get("wids")
    if not isinstance(wids, list):
        return None
    return [str(role).lower() for role in wids]


def consent_url(authority_host: str, tenant_id: str, client_id: str) -> str:
    """Where a tenant's administrator grants the app what its registration asks for.

    >>> consent_url("https://login.microsoftonline.us/", "contoso.onmicrosoft.com", "a b")
    'https://login.microsoftonline.us/contoso.onmicrosoft.com/adminconsent?client_id=a%20b'
    """
    return (
        f"{authority_host.rstrip('/')}/{quote(tenant_id, safe='')}/adminconsent"
        f"?client_id={quote(client_id, safe='')}"
    )


def permission_checks(claims: Mapping[str, Any], *, app: bool, consent: str) -> list[Check]:
    """Each permission a command needs, against what the token holds."""
    held = granted(claims)
    kind = "application" if app else "delegated"
    checks = []
    for need in NEEDS:
        via = next((p for p in (need.permission, *need.also) if p.lower() in held), None)
        if via is not None:
            through = "" if via == need.permission else f" through {via}"
            detail = f"granted{through}; used by {need.used_by}"
            checks.append(Check("permission", need.permission, "ok", detail))
            continue
        status: CheckStatus = "missing-right" if need.required else "warn"
        detail = (
            f"not in the token: {need.used_by} fails without it"
            if need.required
            else f"not in the token: needed only for {need.used_by}"
        )
        checks.append(
            Check(
                "permission",
                need.permission,
                status,
                detail,
                f"add the {kind} permission {need.permission} to the app registration, "
                f"then grant consent: {consent}",
            )
        )
    return checks


def role_check(claims: Mapping[str, Any], who: str) -> Check:
    """A signed-in user reads keys only of devices they own, unless a role allows more."""
    roles = role_ids(claims)
    names = ", ".join(KEY_READING_ROLES[r] for r in KEY_READING_ROLES if r != _GLOBAL_ADMIN)
    if roles is None:
        return Check(
            "role",
            who,
            "warn",
            "the token does not list directory roles (no wids claim): cannot tell whether "
            f"{who} may read keys of devices it does not own",
        )
    held = [KEY_READING_ROLES[r] for r in roles if r in KEY_READING_ROLES]
    if held:
        return Check("role", who, "ok", f"holds {', '.join(held)}: may read every device's keys")
    return Check(
        "role",
        who,
        "missing-right",
        "holds no role that reads BitLocker keys: reads only the keys of devices it owns",
        f"assign one of these Entra roles to {who}: {names}",
    )


_GLOBAL_ADMIN: Final = "62e90394-69f5-4237-9190-012177145e10"


def graph_check(sign_in: SignIn, token: str) -> Check:
    """One listing request (no key value is read, so nothing is audited): does Graph
    answer, and does it accept this token for BitLocker keys."""
    import requests

    from bitkey_dir.sources.entra.signin import _ca_session

    url = f"{sign_in.graph_url}/v1.0/informationProtection/bitlocker/recoveryKeys"
    session = _ca_session(sign_in.ca_file, sign_in.timeout)
    headers = {"Authorization": f"Bearer {token}", "User-Agent": f"bitkey-dir/{__version__}"}
    try:
        with session:
            answer = session.get(url, headers=headers, allow_redirects=False)
    except requests.RequestException as exc:
        return Check("graph", sign_in.graph_url, "unreachable", f"no answer ({type(exc).__name__})")
    request_id = answer.headers.get("request-id")
    where = f" (request-id {request_id})" if request_id else ""
    if answer.status_code == 200:
        return Check("graph", sign_in.graph_url, "ok", "lists BitLocker keys with this token")
    if answer.status_code in (401, 403):
        return Check(
            "graph",
            sign_in.graph_url,
            "missing-right",
            f"refused to list BitLocker keys ({answer.status_code}){where}",
        )
    return Check(
        "graph",
        sign_in.graph_url,
        "unreachable",
        f"answered {answer.status_code} to a listing of BitLocker keys{where}",
    )


OWNERS_READ: Final = "allowedToReadBitlockerKeysForOwnedDevice"
OWNERS_FIX: Final = (
    'turn on "Restrict users from recovering the BitLocker key(s) for their owned devices" '
    "(Entra admin center, Devices, Device settings), or: Update-MgPolicyAuthorizationPolicy "
    "-DefaultUserRolePermissions @{AllowedToReadBitlockerKeysForOwnedDevice = $false}"
)


def owner_policy_check(sign_in: SignIn, token: str) -> Check:
    """Whether the tenant lets device owners read their own devices' keys (the
    authorization policy's defaultUserRolePermissions): reads that bypass bitkey-dir's
    reasons and trail. Not knowing is a warning, never a failure: reading the policy takes
    Policy.Read.All, which a lookup does not need."""
    import requests

    from bitkey_dir.sources.entra.signin import _ca_session

    url = f"{sign_in.graph_url}/v1.0/policies/authorizationPolicy"
    session = _ca_session(sign_in.ca_file, sign_in.timeout)
    headers = {"Authorization": f"Bearer {token}", "User-Agent": f"bitkey-dir/{__version__}"}
    subject = "device owners"
    try:
        with session:
            answer = session.get(url, headers=headers, allow_redirects=False)
    except requests.RequestException as exc:
        return Check("policy", subject, "warn", f"cannot tell: no answer ({type(exc).__name__})")
    request_id = answer.headers.get("request-id")
    where = f" (request-id {request_id})" if request_id else ""
    if answer.status_code in (401, 403):
        return Check(
            "policy",
            subject,
            "warn",
            f"cannot tell whether device owners may read their BitLocker keys: "
            f"{sign_in.principal} may not read the tenant's authorization policy "
            f"({answer.status_code}; it takes Policy.Read.All){where}",
        )
    try:
        document = answer.json() if answer.status_code == 200 else None
    except ValueError:
        document = None
    permissions = document.get("defaultUserRolePermissions") if isinstance(document, dict) else None
    value = permissions.get(OWNERS_READ) if isinstance(permissions, dict) else None
    if value is False:
        return Check("policy", subject, "ok", "may not read their devices' BitLocker keys")
    if value is True:
        return Check(
            "policy",
            subject,
            "warn",
            f"may read their own devices' BitLocker keys ({OWNERS_READ} is true): such reads "
            "skip bitkey-dir's reasons and trail (Entra's audit log has them: bitkey-dir reads)",
            OWNERS_FIX,
        )
    return Check(
        "policy",
        subject,
        "warn",
        f"cannot tell whether device owners may read their BitLocker keys: Graph answered "
        f"{answer.status_code} without {OWNERS_READ}{where}",
    )


def diagnose(sign_in: SignIn, app_only: bool) -> list[Check]:
    who = sign_in.principal
    try:
        token, _ = sign_in.token()
    except AuthError as exc:
        return [Check("sign-in", who, "missing-right", exc.message)]
    except SourceError as exc:
        return [Check("sign-in", who, "unreachable", exc.message)]
    claims = token_claims(token)
    who = sign_in.principal
    checks = [Check("sign-in", who, "ok", f"signed in to tenant {sign_in.tenant_id} as {who}")]
    consent = consent_url(sign_in.authority_host, sign_in.tenant_id, sign_in.client_id)
    checks += permission_checks(claims, app=app_only, consent=consent)
    if not app_only:
        checks.append(role_check(claims, who))
    checks.append(graph_check(sign_in, token))
    checks.append(owner_policy_check(sign_in, token))
    del token
    return checks
