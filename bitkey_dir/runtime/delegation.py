"""Sign-ins made by someone else on a user's behalf, handed to a source through the
operation's interaction.

The portal signs an agent in to Entra ID in the agent's browser (authorization code flow):
the agent's lookups must then read Graph with the agent's own delegated token, never the
app's secret, and never by starting a sign-in of their own. The agent's interaction holds
that :class:`Delegation` (the token cache, sealed in memory) and answers
:func:`handed_over` for the source it signed in to, as it answers an AD bind's password
prompt for the AD sign-in. Outside the portal nothing is handed over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from bitkey_dir.runtime import interaction


class Delegation(Protocol):
    """One user's sign-in to one source, made elsewhere (their browser)."""

    @property
    def source(self) -> str: ...
    @property
    def username(self) -> str:
        """Their user principal name, as the identity platform named them."""
        ...

    @property
    def groups(self) -> tuple[str, ...] | None:
        """Object IDs of their groups from the ID token; None when the token had no
        ``groups`` claim or too many groups to carry (overage): ask the directory."""
        ...

    def token(self) -> tuple[str, int]:
        """An access token and its expiry (epoch seconds), refreshed silently; AuthError
        when the sign-in has lapsed (a new one is needed)."""
        ...

    def forget(self) -> None:
        """Drop every token: the user signed out."""
        ...


class WebSignIn(Protocol):
    """An authorization code flow with PKCE for one source's app registration."""

    def begin(self, redirect_uri: str, login_hint: str | None = None) -> dict[str, Any]:
        """A new flow (MSAL's: ``auth_uri``, ``state``, the PKCE verifier and the nonce),
        to be kept on the server until the browser comes back."""
        ...

    def complete(self, flow: Mapping[str, Any], answer: Mapping[str, str]) -> Delegation:
        """Redeem the browser's answer (``code`` and ``state``, or ``error``) for the flow;
        AuthError saying why when that fails."""
        ...


def handed_over(source: str) -> Delegation | None:
    """The sign-in to ``source`` the current operation was handed, if any."""
    holder = getattr(interaction.current(), "delegation", None)
    found = holder(source) if callable(holder) else None
    return found if found is not None and getattr(found, "source", None) == source else None
