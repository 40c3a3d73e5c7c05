"""The signed-in user's groups, nested ones too: GET /me/transitiveMemberOf/microsoft.graph.group
(delegated; GroupMember.Read.All), followed page by page. Object IDs only: group names are not
unique in Entra ID, so roles name groups by ID."""

from __future__ import annotations

from typing import Final

from bitkey_dir.core.errors import AuthError, SourceError
from bitkey_dir.sources.entra.signin import SignIn, _ca_session

MOST_PAGES: Final = 100  # 100 pages of up to 999 groups: far beyond any real account


def own_groups(sign_in: SignIn) -> list[str]:
    import requests

    token, _ = sign_in.token()
    session = _ca_session(sign_in.ca_file, sign_in.timeout)
    url: str | None = (
        f"{sign_in.graph_url}/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999"
    )
    found: list[str] = []
    for _ in range(MOST_PAGES):
        if url is None:
            return found
        try:
            answer = session.get(
                url, headers={"Authorization": f"Bearer {token}", "User-Agent": "bitkey-dir"}
            )
        except requests.RequestException as exc:
            raise SourceError(f"cannot reach {sign_in.graph_url} ({type(exc).__name__})") from None
        if answer.status_code in (401, 403):
            raise AuthError(
                f"{sign_in.principal} may not read their own groups (delegated permission "
                "GroupMember.Read.All)"
            )
        if not answer.ok:
            raise SourceError(f"reading the groups failed: HTTP {answer.status_code}")
        try:
            body = answer.json()
            found += [str(item["id"]) for item in body.get("value", []) if item.get("id")]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise SourceError("reading the groups failed: Graph's answer is not a list") from None
        following = body.get("@odata.nextLink")
        # The token goes to Graph's own host only, whatever a next link names.
        url = (
            following
            if isinstance(following, str) and following.startswith(f"{sign_in.graph_url}/")
            else None
        )
    raise SourceError("reading the groups failed: too many pages")
