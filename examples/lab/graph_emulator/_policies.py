"""The tenant's authorization policy: GET /policies/authorizationPolicy (v1.0 and beta).

Sources, by behaviour:
- authorizationpolicy-get (v1.0): GET /policies/authorizationPolicy returns the tenant's one
  authorizationPolicy object (id "authorizationPolicy"), not a collection; permission
  Policy.Read.All, delegated or application. Its `defaultUserRolePermissions` holds
  `allowedToReadBitlockerKeysForOwnedDevice`: whether a device's registered owner may read
  its BitLocker keys (true unless the tenant turned it off).

The emulator's own choices, where no source says:
- The value is `Tenant.owners_read_bitlocker_keys` (True by default, as in Entra); None
  leaves the property out, as an answer from a service that does not know it would.
- Without Policy.Read.All (or Policy.ReadWrite.Authorization): 403
  Authorization_RequestDenied "Insufficient privileges to complete the operation.", the
  directory's usual refusal. Only GET; other properties are fixed sample values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._http import Request, Response

if TYPE_CHECKING:
    from ._graph import Graph, Principal

POLICY_READ = "Policy.Read.All"
POLICY_WRITE_AUTHORIZATION = "Policy.ReadWrite.Authorization"


def authorization_policy(graph: Graph, request: Request, principal: Principal) -> Response:
    from ._graph import GraphError, require_get

    require_get(request)
    if not principal.has(POLICY_READ, POLICY_WRITE_AUTHORIZATION):
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    permissions: dict[str, Any] = {
        "allowedToCreateApps": True,
        "allowedToCreateSecurityGroups": True,
        "allowedToCreateTenants": True,
        "allowedToReadOtherUsers": True,
    }
    value = principal.tenant.owners_read_bitlocker_keys
    if value is not None:
        permissions["allowedToReadBitlockerKeysForOwnedDevice"] = bool(value)
    return graph.ok(
        {
            "@odata.context": f"{graph.metadata(request)}#policies/authorizationPolicy/$entity",
            "id": "authorizationPolicy",
            "displayName": "Authorization Policy",
            "description": "Used to manage authorization related settings across the company.",
            "allowInvitesFrom": "everyone",
            "allowedToUseSSPR": True,
            "blockMsolPowerShell": False,
            "guestUserRoleId": "a0b1b346-4d3e-4e8b-98f8-753987be4970",
            "defaultUserRolePermissions": permissions,
        }
    )
