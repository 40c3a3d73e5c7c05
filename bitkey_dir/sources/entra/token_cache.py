"""The MSAL token cache of an Entra source, encrypted on disk with its key in the keyring.

A token cache with refresh tokens outgrows what some keyrings hold in one entry (Windows
Credential Manager takes about 2.5 KB), so the cache lives in a file in the platform's state
folder (mode 0600), encrypted with AES-256-GCM; only the 32-byte key is in the keyring
(``SOURCE/token-cache-key``). Without a usable keyring, nothing is saved.

The file also keeps MSAL's ``http_cache`` (OpenID discovery answers, which hold no tokens), so
a second run neither signs in nor asks for the discovery document again. It is pickled, as
MSAL documents, and unpickled only after the authenticated decryption succeeded: nobody
without the key can have written it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import pickle
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bitkey_dir.runtime.atomic import private_replacement
from bitkey_dir.runtime.keystore import Keystore, token_key_entry

MAGIC: Final = b"bitkey-dir token cache 1\n"
_NONCE: Final = 12


def tokens_dir() -> Path:
    from bitkey_dir.runtime.config import state_dir

    return state_dir() / "tokens"


def cache_path(source: str) -> Path:
    """One file per source; the hash keeps names apart that the slug would merge."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", source)[:48]
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    return tokens_dir() / f"{slug}-{digest}.bin"


@dataclass(frozen=True)
class CacheSummary:
    """What a token cache holds, for `auth status`: never a token."""

    accounts: tuple[str, ...] = ()
    access_token_expires: int | None = None  # epoch seconds of the latest-expiring one
    refresh_tokens: int = 0

    def describe(self, now: float | None = None) -> str:
        parts = []
        if self.accounts:
            parts.append("account " + ", ".join(self.accounts))
        if self.access_token_expires is not None:
            left = self.access_token_expires - (time.time() if now is None else now)
            if left > 0:
                parts.append(f"access token valid for {_duration(left)}")
            else:
                parts.append("access token expired")
        else:
            parts.append("no access token")
        parts.append("refresh token" if self.refresh_tokens else "no refresh token")
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def summarize(serialized: str) -> CacheSummary:
    """Read MSAL's cache format (Account, AccessToken and RefreshToken tables)."""
    try:
        data = json.loads(serialized)
    except (ValueError, RecursionError):
        return CacheSummary()
    if not isinstance(data, dict):
        return CacheSummary()

    def table(name: str) -> list[dict[str, Any]]:
        entries = data.get(name)
        if not isinstance(entries, dict):
            return []
        return [entry for entry in entries.values() if isinstance(entry, dict)]

    accounts = sorted({str(a["username"]) for a in table("Account") if a.get("username")})
    expiries = []
    for token in table("AccessToken"):
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            expiries.append(int(token.get("expires_on", "")))
    return CacheSummary(
        accounts=tuple(accounts),
        access_token_expires=max(expiries) if expiries else None,
        refresh_tokens=len(table("RefreshToken")),
    )


@dataclass
class Loaded:
    serialized: str | None = None
    http_cache: dict[Any, Any] = field(default_factory=dict)
    problem: str | None = None  # why a cache on disk could not be used


class TokenCacheFile:
    """Load and save one source's cache; every failure degrades to "no cache"."""

    def __init__(self, source: str, keystore: Keystore, path: Path | None = None) -> None:
        self.source = source
        self.keystore = keystore
        self.path = path or cache_path(source)
        self._entry = token_key_entry(source)

    def _aad(self) -> bytes:
        return MAGIC + self.source.encode()

    def _key(self, *, create: bool) -> bytes | None:
        text = self.keystore.get(self._entry)
        if text:
            try:
                key = base64.urlsafe_b64decode(text.encode())
            except ValueError:
                key = b""
            if len(key) == 32:
                return key
        if not create or not self.keystore.usable:
            return None
        key = secrets.token_bytes(32)
        self.keystore.set(self._entry, base64.urlsafe_b64encode(key).decode())
        return key

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> Loaded:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return Loaded()
        except OSError as exc:
            return Loaded(problem=f"cannot read {self.path} ({exc.strerror})")
        key = self._key(create=False)
        if key is None:
            if not self.keystore.usable:
                return Loaded()  # the keystore has already said why
            return Loaded(problem="its key is no longer in the keyring")
        return self._open(blob, key)

    def _open(self, blob: bytes, key: bytes) -> Loaded:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _NONCE + 16:
            return Loaded(problem=f"{self.path} is not a bitkey-dir token cache")
        nonce = blob[len(MAGIC) : len(MAGIC) + _NONCE]
        try:
            plain = AESGCM(key).decrypt(nonce, blob[len(MAGIC) + _NONCE :], self._aad())
            document = json.loads(plain)
            return Loaded(serialized=str(document["msal"]), http_cache=_unpickle(document["http"]))
        except InvalidTag:
            return Loaded(problem="it does not match its key in the keyring")
        except (ValueError, KeyError, TypeError):
            return Loaded(problem=f"{self.path} is damaged")

    def save(self, serialized: str, http_cache: dict[Any, Any] | None = None) -> bool:
        """Encrypt and replace the file atomically; False if there is no keyring to hold the key."""
        from bitkey_dir.core.errors import AuthError

        try:
            key = self._key(create=True)
        except AuthError:
            return False
        if key is None:
            return False
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        document = {"msal": serialized, "http": _pickled(http_cache or {})}
        nonce = secrets.token_bytes(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, json.dumps(document).encode(), self._aad())
        _write_private(self.path, MAGIC + nonce + sealed)
        return True

    def remove(self) -> bool:
        """Delete the file and its key; True if either existed."""
        removed = False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
            removed = True
        return self.keystore.delete(self._entry) or removed


def _pickled(http_cache: dict[Any, Any]) -> str | None:
    try:
        return base64.b64encode(pickle.dumps(dict(http_cache))).decode()
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


def _unpickle(text: object) -> dict[Any, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = pickle.loads(base64.b64decode(text))  # noqa: S301 - authenticated above
    except Exception:  # a newer or older MSAL's objects: start afresh, as MSAL advises
        return {}
    return value if isinstance(value, dict) else {}


def _write_private(path: Path, data: bytes) -> None:
    from bitkey_dir.runtime.config import private_folder

    private_folder(path.parent)  # 0700, whatever the umask: nobody else may swap the file
    with private_replacement(path) as handle:
        handle.write(data)
