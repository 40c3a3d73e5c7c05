"""Who may read a tenant's BitLocker keys (`bitkey-dir rights show` for Entra ID): the
directory roles that allow reading key values (the built-in ones, and custom roles with
``microsoft.directory/bitlockerKeys/key/read``) and the principals they are assigned to.

Two kinds of request, neither reading a key: the role definitions, then, for each role that
reads keys, its assignments with their principals. Both need RoleManagement.Read.Directory
(or Directory.Read.All) and, for a signed-in user, a role that may read role assignments.
A device's registered owner may read its keys too unless the tenant says otherwise: doctor
checks that policy.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Final

from bitkey_dir.core.rights import Holder, Via
from bitkey_dir.sources.entra.graph import Graph, Record
from bitkey_dir.sources.entra.odata import odata_quote

READ_KEYS_ACTION: Final = "microsoft.directory/bitlockerkeys/key/read"
READ_ROLES: Final = "RoleManagement.Read.Directory"
RIGHT: Final = "read BitLocker keys"


def reads_keys(definition: Record) -> bool:
    """Whether a role definition allows reading key values: an allowed action that names
    it, or a wildcard that covers it (actions are case-insensitive)."""
    for permission in definition.get("rolePermissions") or []:
        if not isinstance(permission, dict):
            continue
        for action in permission.get("allowedResourceActions") or []:
            if isinstance(action, str) and fnmatchcase(READ_KEYS_ACTION, action.lower()):
                return True
    return False


async def holders(graph: Graph, source: str, tenant_id: str) -> list[Holder]:
    """Each principal assigned a role that reads keys, once per scope, with those roles."""
    from msgraph.generated.role_management.directory.role_assignments import (
        role_assignments_request_builder as assignments_module,
    )
    from msgraph.generated.role_management.directory.role_definitions import (
        role_definitions_request_builder as definitions_module,
    )

    definitions = definitions_module.RoleDefinitionsRequestBuilder(graph.adapter, {})
    listed = definitions.RoleDefinitionsRequestBuilderGetQueryParameters(
        select=["id", "displayName", "isBuiltIn", "rolePermissions"]
    )
    readers = [
        role
        async for role in graph.pages(definitions, listed, "listing directory roles", READ_ROLES)
        if reads_keys(role) and isinstance(role.get("id"), str)
    ]
    assignments = assignments_module.RoleAssignmentsRequestBuilder(graph.adapter, {})
    found: dict[tuple[str, str], tuple[str, list[Via]]] = {}
    for role in sorted(readers, key=lambda r: str(r.get("displayName") or r["id"])):
        wanted = assignments.RoleAssignmentsRequestBuilderGetQueryParameters(
            filter=f"roleDefinitionId eq {odata_quote(role['id'])}", expand=["principal"]
        )
        doing = f"listing who holds the role {role.get('displayName') or role['id']}"
        async for assignment in graph.pages(assignments, wanted, doing, READ_ROLES):
            ident = str(assignment.get("principalId") or "")
            if not ident:
                continue
            scope = _scope(assignment.get("directoryScopeId"), tenant_id)
            _, via = found.setdefault((scope, ident), (_name(assignment, ident), []))
            kind = "built-in role" if role.get("isBuiltIn") else "custom role"
            via.append(Via(f"{role.get('displayName') or role['id']} ({kind})", "role"))
    return [
        Holder(source, scope, name, ident, RIGHT, tuple(via))
        for (scope, ident), (name, via) in sorted(found.items(), key=lambda i: (i[0][0], i[1][0]))
    ]


def _scope(directory_scope: Any, tenant_id: str) -> str:
    if not isinstance(directory_scope, str) or directory_scope in ("", "/"):
        return f"tenant {tenant_id}"
    return directory_scope  # an administrative unit, or one object


def _name(assignment: Record, ident: str) -> str:
    principal = assignment.get("principal")
    if isinstance(principal, dict):
        for key in ("userPrincipalName", "displayName", "appId"):
            value = principal.get(key)
            if isinstance(value, str) and value:
                return value
    return ident
