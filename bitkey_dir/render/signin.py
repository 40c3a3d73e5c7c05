"""`login`, `logout` and `auth status`: what is stored for signing in, never a secret."""

from __future__ import annotations

import json

from bitkey_dir.core.display import safe
from bitkey_dir.ops.signin import AuthReport, Login, Logout, SourceAuth

_WHERE = {True: "stored", False: "not stored", None: "unknown (no keyring)"}


def login_line(done: Login) -> str:
    return safe(f"{done.source}: {done.message} ({done.keyring})") + "\n"


def logout_line(source: str, done: Logout) -> str:
    if done.removed:
        return safe(f"{source}: removed {', '.join(done.removed)}") + "\n"
    if done.keyring_usable:
        return f"{source}: nothing was stored\n"
    return f"{source}: nothing removed (the keyring could not be checked)\n"


def status_json(report: AuthReport) -> str:
    info = report.keyring
    document = {
        "keyring": {
            "backend": info.name,
            "usable": info.usable,
            "plaintext": info.plaintext,
            "problem": info.problem,
        },
        "sources": [
            {"source": row.source, "type": row.type, **row.status.to_record()}
            for row in report.sources
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def status_table(report: AuthReport) -> str:
    """The keyring backend, then one line per source."""
    lines = [f"keyring: {report.keyring.describe()}", *(_line(row) for row in report.sources)]
    return "".join(safe(line) + "\n" for line in lines)


def _line(row: SourceAuth) -> str:
    status = row.status
    parts = [status.account] if status.account else []
    if status.secret:
        parts.append(f"{status.secret} {_WHERE[status.stored]}")
        if status.environment:
            parts.append("the environment variable is set and takes precedence")
    tokens = status.tokens
    if tokens is not None:
        if tokens.summary:
            parts.append(f"tokens: {tokens.summary}")
        elif tokens.problem:
            parts.append(f"tokens unusable: {tokens.problem}")
        else:
            parts.append("no saved sign-in")
    if status.kerberos:
        if not status.account:
            parts.append("no Kerberos ticket (run kinit)")
        parts.append("signs in with a Kerberos ticket: nothing stored")
    if not parts:
        parts.append("nothing to store (keys are read directly)")
    return f"{row.source} ({row.type}): " + "; ".join(parts)
