"""GET /me/transitiveMemberOf (and its /microsoft.graph.group cast): the signed-in user's
groups, nested ones included, as "List a user's transitive memberships" documents.

Delegated only (/me names the signed-in user); a token needs GroupMember.Read.All,
Group.Read.All or Directory.Read.All to list groups. Pages of `page_size` with an
@odata.nextLink whose $skiptoken is opaque to clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._http import Request, Response

if TYPE_CHECKING:
    from ._graph import Graph, Principal

GROUP_READERS = ("GroupMember.Read.All", "Group.Read.All", "Directory.Read.All",
                 "Directory.ReadWrite.All")  # fmt: skip
PAGE_SIZE = 100


def transitive_member_of(graph: Graph, request: Request, principal: Principal) -> Response:
    from ._graph import GraphError, bad_request, insufficient_privileges, query_options

    if not principal.delegated or principal.user is None:
        raise GraphError(
            400, "BadRequest", "/me request is only valid with delegated authentication flow."
        )
    if not principal.has(*GROUP_READERS):
        raise insufficient_privileges()
    params = query_options(request, {"$select", "$top", "$skiptoken", "$count"})
    try:
        start = int(params.get("$skiptoken", "0"))
        top = int(params.get("$top", str(PAGE_SIZE)))
    except ValueError:
        raise bad_request("Invalid $skiptoken or $top.") from None
    groups = principal.tenant.transitive_groups(principal.user)
    page = groups[start : start + max(1, min(top, 999))]
    body: dict[str, Any] = {
        "@odata.context": f"{graph.emu.base_url}/v1.0/$metadata#directoryObjects",
        "value": [
            {
                "@odata.type": "#microsoft.graph.group",
                "id": group.id,
                "displayName": group.display_name,
                "securityEnabled": group.security_enabled,
            }
            for group in page
        ],
    }
    following = start + len(page)
    if following < len(groups):
        path = request.path
        body["@odata.nextLink"] = f"{graph.emu.base_url}{path}?$skiptoken={following}"
    return graph.ok(body)
