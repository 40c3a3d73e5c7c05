"""Directory roles: GET /roleManagement/directory/roleDefinitions and roleAssignments (v1.0).

Sources, by behaviour:
- rbacapplication-list-roledefinitions / rbacapplication-list-roleassignments (v1.0): the
  directory provider's unifiedRoleDefinition objects (`id`, `displayName`, `isBuiltIn`,
  `isEnabled`, `templateId`, `rolePermissions[].allowedResourceActions`) and
  unifiedRoleAssignment objects (`id`, `principalId`, `roleDefinitionId`,
  `directoryScopeId`); `$filter=roleDefinitionId eq '…'` (or principalId) and
  `$expand=principal` are the documented example; `$select` on definitions.
  Permissions: RoleManagement.Read.Directory, RoleManagement.Read.All, Directory.Read.All,
  RoleManagement.ReadWrite.Directory, Directory.ReadWrite.All; a delegated caller must also
  hold a role that may read them (Directory Readers, Global Reader, Privileged Role
  Administrator; Global Administrator).
- The BitLocker key-reading roles and their action `microsoft.directory/bitlockerKeys/key/read`
  (Entra's permissions reference); a custom role may hold the same action.

The emulator's own choices, where no source says:
- Built-in definitions are the roles it models (ROLE_TEMPLATE_IDS) and User Administrator,
  which cannot read keys; each built-in role's `id` is its template ID. Custom roles are
  `Tenant.custom_roles`, assigned to users through `Tenant.custom_role_members`.
- Assignments are the users' directory roles, scope "/". `$filter` takes one `eq` clause on
  `roleDefinitionId` or `principalId`; without it every assignment is listed. No paging.
- Without a permission: 403 Authorization_RequestDenied, the directory's usual refusal.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ._http import Request, Response
from ._model import ROLE_TEMPLATE_IDS
from ._odata import FilterSyntaxError, UnsupportedFilter, parse_filter

if TYPE_CHECKING:
    from ._graph import Graph, Principal

READ_KEYS_ACTION = "microsoft.directory/bitlockerKeys/key/read"
ROLE_READERS = (
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "Directory.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.ReadWrite.All",
)
DELEGATED_ROLE_READERS = frozenset({"Global Reader", "Global Administrator"})
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
ASSIGNMENT_PROPERTIES = {"roledefinitionid": "roleDefinitionId", "principalid": "principalId"}


def _refuse_unless_allowed(principal: Principal) -> None:
    from ._graph import GraphError

    allowed = principal.has(*ROLE_READERS)
    if allowed and principal.delegated:
        user = principal.user
        allowed = user is not None and bool(user.roles & DELEGATED_ROLE_READERS)
    if not allowed:
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )


def _definition(role_id: str, name: str, actions: list[str], *, built_in: bool) -> dict[str, Any]:
    return {
        "id": role_id,
        "displayName": name,
        "description": f"{name} (emulated)",
        "isBuiltIn": built_in,
        "isEnabled": True,
        "templateId": role_id,
        "version": "1",
        "rolePermissions": [{"allowedResourceActions": actions, "condition": None}],
    }


def definitions(principal: Principal) -> list[dict[str, Any]]:
    found = [
        _definition(
            template,
            name,
            [READ_KEYS_ACTION, "microsoft.directory/devices/standard/read"],
            built_in=True,
        )
        for name, template in ROLE_TEMPLATE_IDS.items()
    ]
    found.append(
        _definition(
            USER_ADMINISTRATOR,
            "User Administrator",
            ["microsoft.directory/users/allProperties/allTasks"],
            built_in=False,
        )
        | {"isBuiltIn": True}
    )
    for role_id, (name, actions) in principal.tenant.custom_roles.items():
        found.append(_definition(role_id, name, list(actions), built_in=False))
    return found


def assignments(principal: Principal) -> list[dict[str, Any]]:
    tenant = principal.tenant
    found = []
    for user in tenant.users.values():
        held = [ROLE_TEMPLATE_IDS[role] for role in sorted(user.roles)]
        held += [r for r, members in tenant.custom_role_members.items() if user.id in members]
        for role_id in held:
            digest = hashlib.sha256(f"{role_id}/{user.id}".encode()).hexdigest()[:22]
            found.append(
                {
                    "id": digest,
                    "principalId": user.id,
                    "roleDefinitionId": role_id,
                    "directoryScopeId": "/",
                    "principal": {
                        "@odata.type": "#microsoft.graph.user",
                        "id": user.id,
                        "displayName": user.display_name,
                        "userPrincipalName": user.user_principal_name,
                    },
                }
            )
    return found


def role_definitions(graph: Graph, request: Request, principal: Principal) -> Response:
    from ._graph import bad_request, query_options, require_get

    require_get(request)
    _refuse_unless_allowed(principal)
    params = query_options(request, {"$select"})
    rows = definitions(principal)
    if "$select" in params:
        wanted = {name.strip() for name in params["$select"].split(",")} | {"id"}
        unknown = wanted - set(rows[0])
        if unknown:
            raise bad_request(
                f"Could not find a property named '{sorted(unknown)[0]}' on type "
                "'microsoft.graph.unifiedRoleDefinition'."
            )
        rows = [{k: v for k, v in row.items() if k in wanted} for row in rows]
    context = f"{graph.metadata(request)}#roleManagement/directory/roleDefinitions"
    return graph.ok({"@odata.context": context, "value": rows})


def role_assignments(graph: Graph, request: Request, principal: Principal) -> Response:
    from ._graph import bad_request, query_options, require_get

    require_get(request)
    _refuse_unless_allowed(principal)
    params = query_options(request, {"$filter", "$expand"})
    rows = assignments(principal)
    if "$filter" in params:
        try:
            predicate, clauses = parse_filter(params["$filter"], ASSIGNMENT_PROPERTIES)
        except (FilterSyntaxError, UnsupportedFilter) as exc:
            raise bad_request(f"Invalid filter clause: {exc}") from exc
        if len(clauses) != 1 or clauses[0].op != "eq":
            raise bad_request(
                "The emulator takes one eq clause on roleDefinitionId or principalId."
            )
        rows = [row for row in rows if predicate(row)]
    expand = params.get("$expand", "")
    if expand not in ("", "principal"):
        raise bad_request(
            f"Could not find a property named '{expand}' on type unifiedRoleAssignment."
        )
    if expand != "principal":
        rows = [{k: v for k, v in row.items() if k != "principal"} for row in rows]
    context = f"{graph.metadata(request)}#roleManagement/directory/roleAssignments"
    return graph.ok({"@odata.context": context, "value": rows})
