"""Entra directory audit events on Graph: GET /v1.0/auditLogs/directoryAudits.

Sources, by behaviour:
- directoryAudit resource and directoryaudit-list: the event's properties (id, category,
  correlationId, result, resultReason, activityDisplayName, activityDateTime,
  loggedByService, operationType, initiatedBy {user, app}, targetResources,
  additionalDetails [{key, value}]); `$filter` on activityDisplayName (eq, startswith),
  activityDateTime (eq, ge, le), category, result, correlationId, id and
  initiatedBy/user/userPrincipalName, initiatedBy/app/appId (eq); `$top`, `$orderby`
  (activityDateTime), `$skiptoken`; paging with `@odata.nextLink`; permission
  AuditLog.Read.All. The v1.0 page now lists "AuditLog.Read.All and Directory.Read.All";
  the emulator demands AuditLog.Read.All alone (the permission the project's reference
  notes name), so a client that also asks for Directory.Read.All passes on both.
  A delegated caller also needs a role that may read audit logs (model.AUDIT_ROLES: of the
  roles the page names, those the emulator knows).
- Order: the page documents `$orderby` on activityDateTime but no default; the service
  answers newest first (descending activityDateTime), as the portal lists them, and the
  emulator does the same; `$orderby=activityDateTime asc` reverses it.
- Missing permission or role: 403 Authorization_RequestDenied "Insufficient privileges to
  complete the operation.", the directory's answer (as on /devices).
- "Read BitLocker key" events (category KeyManagement): every key read the emulator serves
  (GET recoveryKeys/{id}?$select=key, alone or in a $batch) logs one. initiatedBy.user for
  delegated tokens, initiatedBy.app {appId, displayName, servicePrincipalId} for app-only
  ones; targetResources[0] is the device (type "Device", its object ID and name);
  additionalDetails[0].value is "BitLocker key ID: '<id>'. Backed up from device: '<name>'",
  the sentence published Log Analytics queries parse with
  `parse ... with * "key ID: '" KeyId "'. Backed up from device: '" Device "'" *`
  (the words before "key ID" are the emulator's own; no source quotes them). Note that
  Microsoft's Sentinel hunting query BitLockerKeyRetrieval.yaml reads
  TargetResources[0].displayName as the key ID; the emulator follows the runbook's sentence
  and names the device there, so parse the detail sentence, not the target.
- 429 throttling: the emulator's fault mechanism (add_fault(r"/auditLogs/directoryAudits",
  status=429, retry_after=...)); reporting APIs throttle sooner than the rest of Graph.

The emulator's own choices: page size `Tenant.audit_page_size` (default 100) when there is no
`$top`; `$top` from 1 to 1000; the 400 texts for unsupported filters. A listing is pinned to
the events that existed at its first page, so events logged while a client pages do not shift
later pages.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._http import Request, Response
from ._model import AUDIT_LOG_READ, AUDIT_ROLES, AuditEvent

if TYPE_CHECKING:
    from ._graph import Graph, Principal

Predicate = Callable[[AuditEvent], bool]
MAX_TOP = 1000
_PIN = 1 << 32  # skiptoken offset = pinned event count * _PIN + position

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')"
    r"|(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_/]*))"
)
_STRING_PROPS: dict[str, tuple[set[str], Callable[[AuditEvent], str | None]]] = {
    "activitydisplayname": ({"eq", "startswith"}, lambda e: e.activity_display_name),
    "category": ({"eq"}, lambda e: e.category),
    "result": ({"eq"}, lambda e: e.result),
    "id": ({"eq"}, lambda e: e.id),
    "correlationid": ({"eq"}, lambda e: e.correlation_id),
    "loggedbyservice": ({"eq"}, lambda e: e.logged_by_service),
    "initiatedby/user/userprincipalname": (
        {"eq", "startswith"},
        lambda e: (e.initiated_by.get("user") or {}).get("userPrincipalName"),
    ),
    "initiatedby/user/id": ({"eq"}, lambda e: (e.initiated_by.get("user") or {}).get("id")),
    "initiatedby/app/appid": ({"eq"}, lambda e: (e.initiated_by.get("app") or {}).get("appId")),
}


class AuditFilterError(ValueError):
    pass


def parse_datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def string_clause(getter: Callable[[AuditEvent], str | None], value: str, op: str) -> Predicate:
    """`prop eq 'value'` or `startswith(prop, 'value')`, case ignored; `value` lower case."""
    if op == "startswith":
        return lambda event: (getter(event) or "").lower().startswith(value)
    return lambda event: (getter(event) or "").lower() == value


def time_clause(op: str, when: dt.datetime) -> Predicate:
    """`activityDateTime eq|ge|le <DateTimeOffset>`."""
    if op == "ge":
        return lambda event: event.activity_date_time >= when
    if op == "le":
        return lambda event: event.activity_date_time <= when
    return lambda event: event.activity_date_time == when


def parse_audit_filter(text: str) -> Predicate:
    """`clause and clause ...`: `prop eq 'x'`, `startswith(prop,'x')`, and `activityDateTime
    eq|ge|le <DateTimeOffset>` (unquoted, as OData writes it)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise AuditFilterError(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    clauses: list[Predicate] = []
    i = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] != kind or (value and tokens[i][1] != value):
            raise AuditFilterError(f"Syntax error in '{text}'.")
        i += 1
        return tokens[i - 1][1]

    while True:
        if i < len(tokens) and tokens[i] == ("word", "startswith"):
            i += 1
            take("punct", "(")
            prop = take("word").lower()
            take("punct", ",")
            prefix = take("string")[1:-1].replace("''", "'").lower()
            take("punct", ")")
            ops, getter = _STRING_PROPS.get(prop, (set(), None))
            if getter is None or "startswith" not in ops:
                raise AuditFilterError(f"startswith is not supported on '{prop}'.")
            clauses.append(string_clause(getter, prefix, "startswith"))
        else:
            prop = take("word").lower()
            op = take("word").lower()
            if prop == "activitydatetime":
                if op not in ("eq", "ge", "le"):
                    raise AuditFilterError(f"Operator '{op}' is not supported on activityDateTime.")
                clauses.append(time_clause(op, parse_datetime(take("datetime"))))
            else:
                ops, getter = _STRING_PROPS.get(prop, (set(), None))
                if getter is None or op not in ops:
                    raise AuditFilterError(f"Operator '{op}' is not supported on '{prop}'.")
                value = take("string")[1:-1].replace("''", "'").lower()
                clauses.append(string_clause(getter, value, "eq"))
        if i == len(tokens):
            break
        if tokens[i][0] != "word" or tokens[i][1].lower() != "and":
            raise AuditFilterError(f"Only 'and' may join clauses in '{text}'.")
        i += 1
    return lambda event: all(clause(event) for clause in clauses)


def directory_audits(graph: Graph, request: Request, principal: Principal) -> Response:
    from ._graph import (
        bad_request,
        decode_skiptoken,
        insufficient_privileges,
        query_fingerprint,
        query_options,
    )

    if not principal.has(AUDIT_LOG_READ):
        raise insufficient_privileges()
    user = principal.user
    if principal.delegated and user is not None and not user.roles & AUDIT_ROLES:
        raise insufficient_privileges()
    tenant = principal.tenant
    params = query_options(request, {"$filter", "$top", "$skiptoken", "$orderby"})
    predicate: Predicate = lambda event: True  # noqa: E731
    if "$filter" in params:
        try:
            predicate = parse_audit_filter(params["$filter"])
        except (AuditFilterError, ValueError) as exc:
            raise bad_request(f"Invalid filter clause: {exc}") from exc
    descending = True
    if "$orderby" in params:
        order = params["$orderby"].split()
        if not order or order[0].lower() != "activitydatetime" or len(order) > 2:
            raise bad_request(f"$orderby is not supported on '{params['$orderby']}'.")
        descending = len(order) == 1 or order[1].lower() == "desc"
        if len(order) == 2 and order[1].lower() not in ("asc", "desc"):
            raise bad_request(f"Invalid $orderby direction '{order[1]}'.")
    top = tenant.audit_page_size
    if "$top" in params:
        value = params["$top"]
        if not value.isdigit() or not 1 <= int(value) <= MAX_TOP:
            raise bad_request(f"Invalid $top value '{value}'; it must be 1 to {MAX_TOP}.")
        top = int(value)
    with graph.emu.lock:
        events = list(tenant.audit_events)
    pinned, start = len(events), 0
    if "$skiptoken" in params:
        offset = decode_skiptoken(params["$skiptoken"], query_fingerprint(request.path, params))
        pinned, start = min(offset // _PIN, len(events)), offset % _PIN
    indexed = [(e.activity_date_time, n, e) for n, e in enumerate(events[:pinned])]
    indexed.sort(key=lambda row: (row[0], row[1]), reverse=descending)
    matching = [event for _, _, event in indexed if predicate(event)]
    rows: list[dict[str, Any]] = [event.to_graph() for event in matching[start : start + top]]
    next_position = pinned * _PIN + start + top if start + top < len(matching) else None
    context = f"{graph.metadata(request)}#auditLogs/directoryAudits"
    return graph.page(request, params, rows, next_position, context)


def directory_audit(
    graph: Graph, request: Request, principal: Principal, event_id: str
) -> Response:
    from ._graph import GraphError, insufficient_privileges, query_options

    if not principal.has(AUDIT_LOG_READ):
        raise insufficient_privileges()
    user = principal.user
    if principal.delegated and user is not None and not user.roles & AUDIT_ROLES:
        raise insufficient_privileges()
    query_options(request, set())
    found = next((e for e in principal.tenant.audit_events if e.id == event_id), None)
    if found is None:
        # The emulator's wording; the service's 404 text for an unknown audit ID is unquoted.
        raise GraphError(404, "Request_ResourceNotFound", f"Resource '{event_id}' does not exist.")
    context = f"{graph.metadata(request)}#auditLogs/directoryAudits/$entity"
    return graph.ok({"@odata.context": context, **found.to_graph()})
