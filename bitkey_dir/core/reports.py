"""What a source reports besides keys: doctor's checks, escrow per computer, the directory's
record of key reads, and sign-in state. Plain values, shown by the renderers; never a secret.

They are part of the source contract and re-exported by :mod:`bitkey_dir.sources.base`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bitkey_dir.core.model import KeyId

CheckStatus = Literal["ok", "warn", "missing-right", "unreachable"]
CHECK_STATUSES: tuple[CheckStatus, ...] = ("ok", "warn", "missing-right", "unreachable")


@dataclass(frozen=True, slots=True)
class Check:
    """One finding of `doctor`: what was checked, how it went, and the one line that fixes it.

    ``area`` groups findings ("server", "certificate", "bind", "clock", "recovery objects",
    "sign-in", "permission", "role", "path", "files"); ``subject`` is what was checked (a
    server URL, an OU, a permission, a path). ``status``: ok; warn (works, but look at it);
    missing-right (exit 3); unreachable (exit 4, also for a server whose certificate cannot
    be trusted). ``fix`` is one command or URL: a dsacls line, a consent URL, a chmod.
    Neither ``detail`` nor ``fix`` ever holds a password, a token or a credential.
    """

    area: str
    subject: str
    status: CheckStatus
    detail: str
    fix: str | None = None

    def to_record(self) -> dict[str, object]:
        return {
            "area": self.area,
            "subject": self.subject,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Escrow:
    """One computer as a source sees it: its keys counted, the newest one's date."""

    source: str
    computer: str
    location: str | None  # AD: the OU holding the computer; Entra: its operating system
    keys: int
    newest: datetime | None
    group: str  # what the summary adds up by: the OU, or the operating system


@dataclass(frozen=True)
class TokenStatus:
    """A saved sign-in (tokens) as `auth status` shows it: never a token itself."""

    saved: bool
    accounts: tuple[str, ...] = ()
    access_token_expires: datetime | None = None
    refresh_token: bool = False
    summary: str | None = None
    problem: str | None = None  # why a saved sign-in cannot be used

    def to_record(self) -> dict[str, object]:
        record: dict[str, object] = {"saved": self.saved}
        if self.saved:
            expires = self.access_token_expires
            record.update(
                {
                    "accounts": list(self.accounts),
                    "access_token_expires": (
                        expires.isoformat(timespec="seconds") if expires else None
                    ),
                    "refresh_token": self.refresh_token,
                    "summary": self.summary,
                }
            )
        elif self.problem:
            record["problem"] = self.problem
        return record


@dataclass(frozen=True)
class AuthStatus:
    """What a source keeps for signing in, for `auth status`: never a secret.

    ``secret`` names the kind of secret ("password", "client secret") or is None when the
    source has none (Kerberos, device code); ``stored`` is None when that cannot be known (no
    usable keyring) or nothing is stored; ``environment`` is None when no environment variable
    can stand in for the secret.
    """

    account: str | None = None
    secret: str | None = None
    stored: bool | None = None
    environment: bool | None = None
    tokens: TokenStatus | None = None
    kerberos: bool = False  # signs in with the user's Kerberos ticket: nothing to store

    def to_record(self) -> dict[str, object]:
        record: dict[str, object] = {
            "account": self.account,
            "secret": self.secret,
            "stored": self.stored,
        }
        if self.environment is not None:
            record["environment"] = self.environment
        record["tokens"] = self.tokens.to_record() if self.tokens is not None else None
        if self.kerberos:
            record["kerberos"] = True
        return record


@dataclass(frozen=True, slots=True)
class KeyRead:
    """One read of a key value as the directory's own audit log records it."""

    source: str
    time: datetime
    actor: str | None  # a user's UPN, or an app's ID
    actor_kind: str  # "user", "app" or "unknown"
    key_id: KeyId | None  # None when the event does not say which key
    device: str | None
    succeeded: bool
    event_id: str | None
