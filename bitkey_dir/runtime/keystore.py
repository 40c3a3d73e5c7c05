"""Secrets in the operating system's keyring, through the ``keyring`` package.

Entries live under the service name ``bitkey-dir``; the entry names are documented in
README.md ("Signing in once"):

``SOURCE/password/USER``            the LDAP bind password of USER for source SOURCE
``SOURCE/client-secret/CLIENT_ID``  an Entra app's client secret
``SOURCE/token-cache-key``          the key of SOURCE's encrypted MSAL token cache

The backend is whatever keyring's own configuration selects (``PYTHON_KEYRING_BACKEND`` or
``keyringrc.cfg``), else the best one it detects. A keyring that is missing, locked, failing,
or stores secrets in plain text without ``[keyring] allow_plaintext = true`` is not used:
one notice goes to the current interaction and callers fall back to prompting. Nothing here
ever writes a secret anywhere else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bitkey_dir.core.errors import AuthError
from bitkey_dir.core.model import shown

SERVICE: Final = "bitkey-dir"
# Windows Credential Manager keeps a blob of at most CRED_MAX_CREDENTIAL_BLOB_SIZE (5 x 512)
# bytes, and keyring stores a secret there as UTF-16-LE. Every platform keeps to it, so that
# what is stored on one machine could be stored on an admin's Windows machine too.
MAX_SECRET_BYTES: Final = 2560
# Backends that say what they are in their class name. keyrings.alt's PlaintextKeyring is
# the common one; anything else calling itself plaintext or insecure is treated the same.
_PLAINTEXT_MARKERS: Final = ("plaintext", "insecure", "unencrypted")
_DISABLED: Final = {
    "keyring.backends.fail.Keyring": "no keyring backend is available on this system",
    "keyring.backends.null.Keyring": "the keyring is disabled (keyring.backends.null)",
}


def password_entry(source: str, user: str) -> str:
    return f"{source}/password/{user}"


def client_secret_entry(source: str, client_id: str) -> str:
    return f"{source}/client-secret/{client_id}"


def token_key_entry(source: str) -> str:
    return f"{source}/token-cache-key"


def _qualified(backend: object) -> str:
    kind = type(backend)
    return f"{kind.__module__}.{kind.__qualname__}"


def _is_plaintext(backend: object) -> bool:
    members = getattr(backend, "backends", None)  # keyring's ChainerBackend
    if isinstance(members, list | tuple) and members:
        return any(_is_plaintext(member) for member in members)
    name = type(backend).__name__.lower()
    return any(marker in name for marker in _PLAINTEXT_MARKERS)


def _failure(exc: BaseException, hide: str | None = None) -> str:
    text = " ".join(str(exc).split())
    if hide:  # a backend's message could repeat the value it was given
        text = text.replace(hide, "…")
    detail = f": {shown(text)[:160]}" if text else ""
    return f"{type(exc).__name__}{detail}"


def _notice(message: str) -> None:
    from bitkey_dir.runtime import interaction

    interaction.current().notice(message)


@dataclass(frozen=True)
class BackendInfo:
    """Which keyring backend is in use and whether bitkey-dir will use it."""

    name: str
    usable: bool
    plaintext: bool
    problem: str | None = None

    def describe(self) -> str:
        if self.usable:
            return self.name + (" (plain text, allowed by the config)" if self.plaintext else "")
        return f"{self.name}: not used ({self.problem})"


class Keystore:
    """The keyring for one run: detected once, degraded to "unavailable" on the first failure."""

    def __init__(
        self, *, allow_plaintext: bool = False, notice: Callable[[str], None] = _notice
    ) -> None:
        self.allow_plaintext = allow_plaintext
        self._notice = notice
        self._info: BackendInfo | None = None
        self._backend: Any = None
        self._noticed = False
        self._lock = threading.Lock()

    # -- the backend ------------------------------------------------------------------------

    def info(self) -> BackendInfo:
        with self._lock:
            if self._info is None:
                self._info = self._detect()
            return self._info

    def _detect(self) -> BackendInfo:
        try:
            import keyring
        except ImportError:
            return BackendInfo("keyring", False, False, "the keyring package is not installed")
        try:
            backend = keyring.get_keyring()
        except Exception as exc:  # a broken keyringrc.cfg or a backend whose check raises
            return BackendInfo("keyring", False, False, f"cannot load it ({_failure(exc)})")
        name = _qualified(backend)
        if name in _DISABLED:
            return BackendInfo(name, False, False, _DISABLED[name])
        plaintext = _is_plaintext(backend)
        if plaintext and not self.allow_plaintext:
            return BackendInfo(
                name,
                False,
                True,
                "it stores secrets in plain text; set allow_plaintext = true under [keyring] "
                "in the config to use it anyway",
            )
        self._backend = backend
        return BackendInfo(name, True, plaintext)

    @property
    def usable(self) -> bool:
        return self.info().usable

    def _unavailable(self, problem: str) -> None:
        info = self.info()
        self._info = BackendInfo(info.name, False, info.plaintext, problem)
        self._backend = None
        self.announce()

    def announce(self) -> None:
        """Say once per run that secrets are not cached, and why."""
        if self._noticed:
            return
        self._noticed = True
        info = self.info()
        self._notice(
            f"keyring not used: {info.problem}; credentials are neither cached nor read "
            "from it, so you will be asked for them"
        )

    # -- entries -----------------------------------------------------------------------------

    def get(self, entry: str) -> str | None:
        """The stored secret, or None if there is none or no usable keyring (after a notice)."""
        if not self.usable:
            self.announce()
            return None
        try:
            value = self._backend.get_password(SERVICE, entry)
        except Exception as exc:  # locked, D-Bus gone, access denied: all mean "not now"
            self._unavailable(f"reading it failed ({_failure(exc)})")
            return None
        return value if isinstance(value, str) and value else None

    def set(self, entry: str, value: str) -> None:
        """Store ``value``; raise AuthError when it cannot be stored or does not read back."""
        if not self.usable:
            raise AuthError(f"nothing stored: keyring not usable ({self.info().describe()})")
        if len(value.encode("utf-16-le")) > MAX_SECRET_BYTES:
            raise AuthError(
                f"nothing stored: the secret for {entry} is longer than the "
                f"{MAX_SECRET_BYTES:,} bytes (UTF-16) a keyring entry may hold on Windows"
            )
        try:
            self._backend.set_password(SERVICE, entry, value)
            kept = self._backend.get_password(SERVICE, entry)
        except Exception as exc:
            raise AuthError(
                f"nothing stored: the keyring {self.info().name} refused "
                f"({_failure(exc, hide=value)})"
            ) from None
        if kept != value:
            raise AuthError(f"nothing stored: the keyring {self.info().name} did not keep it")

    def delete(self, entry: str) -> bool:
        """Remove an entry; True if one was there. Failures other than "absent" raise."""
        if not self.usable:
            return False
        try:
            present = self._backend.get_password(SERVICE, entry) is not None
            if present:
                self._backend.delete_password(SERVICE, entry)
        except Exception as exc:
            raise AuthError(
                f"cannot remove {entry} from the keyring {self.info().name} ({_failure(exc)})"
            ) from None
        return present

    def has(self, entry: str) -> bool | None:
        """Whether an entry exists; None when that cannot be known (no usable keyring)."""
        if not self.usable:
            return None
        try:
            return self._backend.get_password(SERVICE, entry) is not None
        except Exception as exc:
            self._unavailable(f"reading it failed ({_failure(exc)})")
            return None


# One per run, shared by the sources' threads; a dict so that no `global` is needed.
_RUN: dict[str, Keystore] = {}
_RUN_LOCK = threading.Lock()


def current() -> Keystore:
    """This run's keystore; ``begin_run`` replaces it (the CLI does, once per command)."""
    with _RUN_LOCK:
        return _RUN.setdefault("keystore", Keystore())


def begin_run(*, allow_plaintext: bool = False) -> Keystore:
    with _RUN_LOCK:
        _RUN["keystore"] = Keystore(allow_plaintext=allow_plaintext)
        return _RUN["keystore"]
