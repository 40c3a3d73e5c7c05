"""The pages beyond the lookup, each for one role: the auditors' reports (the trail, the
directories' record of reads, the keys disclosed and not rotated since) and the advanced
agents' key package download.

The reports go through the same operations and renderers as `bitkey-dir trail`, `reads` and
`audit --disclosed`, as the auditor (their bind): no page of theirs holds a password. A key
package is written by `find --key-package` into a private temporary folder, read back, and
removed before the response leaves; the reveal is in the trail first, as for the CLI.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bitkey_dir.core.display import safe
from bitkey_dir.core.errors import BitkeyError
from bitkey_dir.portal.desks import Desk
from bitkey_dir.portal.limits import Window
from bitkey_dir.portal.roles import ADVANCED, AUDITOR
from bitkey_dir.portal.sessions import Session
from bitkey_dir.portal.settings import ServeSettings
from bitkey_dir.portal.web import field, page


class Portal(Protocol):
    """What these pages use of the portal (portal/app.py), which imports them."""

    settings: ServeSettings
    reveals: Window

    def signed_in(self, request: Request) -> tuple[Session | None, Desk | None]: ...
    def to_sign_in(self, request: Request) -> Response: ...
    def on_behalf_of(self, request: Request) -> None: ...
    def refused(self, session: Session, what: str) -> Response: ...
    def common(self, session: Session | None, **extra: object) -> dict[str, object]: ...
    def lookup_page(self, session: Session, status: int = 200, /, **extra: object) -> Response: ...
    async def posted(
        self, request: Request
    ) -> tuple[Session, Desk, Mapping[str, Any]] | Response: ...


TRAIL_LINES = 200


def _trail(desk: Desk) -> list[str]:
    from bitkey_dir.render.trail import table_lines

    listing = desk.client.trail(limit=TRAIL_LINES)
    return list(table_lines(listing)) or ["No entries in the access trail."]


def _reads(desk: Desk) -> list[str]:
    from bitkey_dir.render.reads import render_table

    result = desk.client.reads(since="7d")
    lines = "".join(part.text for part in render_table(result)).splitlines()
    return lines + [safe(warning) for warning in result.warnings]


def _disclosed(desk: Desk) -> list[str]:
    from bitkey_dir.render.disclosure import render_table

    result = desk.client.disclosed()
    return render_table(result).splitlines() + [safe(warning) for warning in result.warnings]


REPORTS: dict[str, tuple[str, Callable[[Desk], list[str]]]] = {
    "/trail": ("Access trail", _trail),
    "/reads": ("Key reads the directories recorded (7 days)", _reads),
    "/disclosed": ("Revealed keys not rotated since", _disclosed),
}


def report_page(portal: Portal, path: str) -> Callable[[Request], object]:
    title, build = REPORTS[path]

    async def show(request: Request) -> Response:
        session, desk = portal.signed_in(request)
        if session is None or desk is None:
            return portal.to_sign_in(request)
        if session.role != AUDITOR:
            return portal.refused(session, "this report")
        try:
            lines, message = await asyncio.to_thread(build, desk), ""
        except BitkeyError as exc:
            lines, message = [], safe(exc.message)
        context = portal.common(session, title=title, lines=lines, message=message)
        return page("report.html", context)

    return show


def key_package(portal: Portal) -> Callable[[Request], object]:
    async def download(request: Request) -> Response:
        posted = await portal.posted(request)
        if isinstance(posted, Response):
            return posted
        session, desk, form = posted
        if session.role != ADVANCED:
            return portal.refused(session, "downloading a key package")
        key_id = field(form, "key_id", 64)
        source = field(form, "source", 200)
        reason = field(form, "reason", 500) or None
        problem = _refusal(portal, desk, source, reason)
        if problem:
            return portal.lookup_page(session, 400, message=problem)
        portal.reveals.add(desk.agent.lower())
        portal.on_behalf_of(request)
        try:
            data, problem = await asyncio.to_thread(_package, desk, key_id, source, reason)
        except BitkeyError as exc:
            data, problem = None, safe(exc.message)
        if data is None:
            return portal.lookup_page(session, 400, message=problem or "No key package.")
        name = "".join(c for c in key_id if c.isalnum() or c == "-")[:40] or "key"
        headers = {"content-disposition": f'attachment; filename="{name}.keypackage"'}
        return Response(data, media_type="application/octet-stream", headers=headers)

    return download


def _refusal(portal: Portal, desk: Desk, source: str, reason: str | None) -> str:
    if source not in desk.client.config.sources:
        return "That key's source is not yours."
    if portal.settings.require_reason and not reason:
        return "Give a reason first."
    if portal.reveals.blocked_for(desk.agent.lower()):
        return "Too many keys read in the last hour: try again later."
    return ""


def _package(desk: Desk, key_id: str, source: str, reason: str | None) -> tuple[bytes | None, str]:
    with tempfile.TemporaryDirectory(prefix="bitkey-portal-") as folder:
        target = Path(folder) / "package"
        result = desk.client.find(
            key_id=key_id, sources=[source], reason=reason, key_package=target
        )
        if result.key_package is None:
            return None, safe(result.package_problem or "no key package was found")
        return target.read_bytes(), ""


def routes(portal: Portal) -> list[Route]:
    pages = [Route(path, report_page(portal, path), methods=["GET"]) for path in REPORTS]
    return [*pages, Route("/key-package", key_package(portal), methods=["POST"])]
