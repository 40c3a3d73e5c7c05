"""Signing in once: prove a credential and keep it in the keyring, forget it, or say what is kept.

The secret itself is read by the caller (a hidden prompt or standard input for the CLI) and
handed in; it is never written anywhere but the keyring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bitkey_dir.core.errors import AuthError, InputError
from bitkey_dir.ops.pool import release
from bitkey_dir.ops.run import Run
from bitkey_dir.runtime.credentials import Secret, Wanted
from bitkey_dir.runtime.delegation import WebSignIn
from bitkey_dir.runtime.keystore import BackendInfo
from bitkey_dir.sources.base import AuthStatus, SignsIn, Source, Warn


@dataclass(frozen=True)
class Login:
    source: str
    message: str  # "bound to ldaps://dc1 as helpdesk@corp; the password is stored in the keyring"
    keyring: str  # the backend that holds it


@dataclass(frozen=True)
class Logout:
    source: str
    removed: list[str]  # what was removed, in words
    keyring_usable: bool  # False: nothing could be checked, so "nothing removed" is not news


@dataclass(frozen=True)
class SourceAuth:
    source: str
    type: str | None
    status: AuthStatus


@dataclass(frozen=True)
class AuthReport:
    keyring: BackendInfo
    sources: list[SourceAuth] = field(default_factory=list)


def _signs_in(source: Source) -> SignsIn:
    if not isinstance(source, SignsIn):
        raise InputError(f"{source.name} has no credentials to store: its keys are read directly")
    return source


def login(run: Run, name: str, read_secret: Callable[[Wanted], Secret]) -> Login:
    """Sign in to source ``name`` with the secret ``read_secret`` gives (when it needs one),
    proving it against the directory, then keep it in the keyring."""
    from bitkey_dir.runtime import keystore

    with run.active():
        source = run.open_one(name)
        try:
            signs_in = _signs_in(source)
            store = keystore.current()
            if not store.usable:
                raise AuthError(
                    f"nothing can be stored: keyring not usable ({store.info().describe()})",
                    hint="use BITKEY_DIR_PASSWORD / BITKEY_DIR_CLIENT_SECRET, or be asked on "
                    "each run",
                )
            wanted = signs_in.login_secret
            secret = read_secret(wanted) if wanted is not None else None
            message = signs_in.login(secret)
            return Login(name, message, store.info().name)
        finally:
            release(source)


def logout(run: Run, name: str) -> Logout:
    """Remove the stored secret and the saved sign-in of source ``name``."""
    from bitkey_dir.runtime import keystore

    with run.active():
        source = run.open_one(name)
        try:
            removed = _signs_in(source).logout()
        finally:
            release(source)
        store = keystore.current()
        if not store.usable:
            store.announce()
        return Logout(name, removed, store.usable)


def status(run: Run, names: Sequence[str] = ()) -> AuthReport:
    """Per source (default: every configured one): the account, what is stored, the tokens."""
    from bitkey_dir.runtime import keystore

    with run.active():
        rows = []
        for name in dict.fromkeys(names or list(run.config.sources)):
            for source in run.open([name]):  # each tenant of a multi-tenant source
                try:
                    found = source.auth_status() if isinstance(source, SignsIn) else AuthStatus()
                finally:
                    release(source)
                rows.append(SourceAuth(source.name, getattr(source, "type_name", None), found))
        return AuthReport(keystore.current().info(), rows)


@runtime_checkable
class KnowsGroups(Protocol):
    """A directory that says which groups the account it signs in as is in (AD: the
    account's ``tokenGroups``); only the portal's roles ask, so it is no part of the
    source contract."""

    def own_groups(self, warn: Warn) -> list[str]: ...


def own_groups(run: Run, name: str) -> list[str]:
    """The groups (nested ones too) of the account source ``name`` signs in as."""
    with run.active():
        source = run.open_one(name)
        try:
            if not isinstance(source, KnowsGroups):
                raise InputError(f"{source.name} does not say which groups its account is in")
            return source.own_groups(lambda message: run.interaction.notice(f"{name}: {message}"))
        finally:
            release(source)


@runtime_checkable
class SignsInOnTheWeb(Protocol):
    """A directory whose users can sign in through a browser to a web front end (Entra:
    the authorization code flow); only the portal asks."""

    def web_sign_in(self, read_groups: bool = False, rotate: bool = False) -> WebSignIn: ...


def web_sign_in(run: Run, name: str, read_groups: bool = False, rotate: bool = False) -> WebSignIn:
    """Browser sign-in flows for source ``name``'s app registration."""
    with run.active():
        source = run.open_one(name)
        try:
            if not isinstance(source, SignsInOnTheWeb):
                raise InputError(f"{source.name} does not sign users in through a browser")
            return source.web_sign_in(read_groups, rotate)
        finally:
            release(source)
