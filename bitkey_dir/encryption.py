"""age encryption (through pyrage) for exports: recipients, identities and passphrases.

Exports are encrypted to age (``age1…``) or SSH (``ssh-ed25519 …``, ``ssh-rsa …``) public
keys, or with a passphrase (age's scrypt recipient). pyrage is imported only here, only when
an encrypted export is written or read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from bitkey_dir.errors import AuthError, InputError

AGE_BINARY: Final = b"age-encryption.org/v1\n"
AGE_ARMORED: Final = b"-----BEGIN AGE ENCRYPTED FILE-----"
PASSPHRASE_ENV: Final = "BITKEY_DIR_EXPORT_PASSPHRASE"  # noqa: S105 - a variable's name


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise InputError(
            "encrypted exports need the pyrage package: pip install 'bitkey-dir[export]'"
        ) from None
    return pyrage


def is_encrypted(data: bytes) -> bool:
    head = data.lstrip()[:64]
    return head.startswith((AGE_BINARY, AGE_ARMORED))


def uses_passphrase(data: bytes) -> bool:
    """Whether the file was encrypted with a passphrase (age's scrypt stanza)."""
    if data.startswith(AGE_BINARY):
        header = data[: data.find(b"\n---", 0, 65536) + 1]
        return b"\n-> scrypt " in header
    return False  # armored: the stanza is inside base64; try the identities first


def parse_recipient(text: str) -> Any:
    """An age or SSH public key, or a file holding such keys (one per line, # comments)."""
    pyrage = _pyrage()
    candidate = text.strip()
    if candidate.upper().startswith("AGE-SECRET-KEY-"):
        # Never echoed: it is the private key that the export is meant to be kept from.
        raise InputError(
            "--encrypt-to was given an age SECRET key: give its public key "
            "(age-keygen -y KEYFILE prints it), and keep the secret key away from here"
        )
    if not candidate.startswith(("age1", "ssh-")):
        path = Path(candidate).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            raise InputError(
                "--encrypt-to: expected an age public key (age1…), an SSH public key "
                "(ssh-ed25519 …, ssh-rsa …) or a readable file holding one"
            ) from None
        keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if len(keys) != 1:
            raise InputError(f"--encrypt-to {path}: expected exactly one public key in the file")
        candidate = keys[0]
    try:
        if candidate.startswith("age1"):
            return pyrage.x25519.Recipient.from_str(candidate)
        return pyrage.ssh.Recipient.from_str(candidate)
    except pyrage.RecipientError as exc:
        raise InputError(f"--encrypt-to: not a usable public key ({exc})") from None


def load_identities(path: Path) -> list[Any]:
    """age secret keys (``AGE-SECRET-KEY-1…`` lines) or an unencrypted SSH private key."""
    pyrage = _pyrage()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the identity file {path} ({exc.strerror})") from None
    try:
        if b"PRIVATE KEY-----" in data:
            return [pyrage.ssh.Identity.from_buffer(data)]
        text = data.decode("utf-8")
        keys = [
            pyrage.x25519.Identity.from_str(line.strip())
            for line in text.splitlines()
            if line.strip().startswith("AGE-SECRET-KEY-")
        ]
    except (pyrage.IdentityError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not an age or SSH identity ({type(exc).__name__})") from None
    if not keys:
        raise InputError(f"{path}: no AGE-SECRET-KEY-1… line and no SSH private key")
    return keys


def decrypt(data: bytes, identities: list[Any], passphrase: str | None) -> bytes:
    """The plaintext, in memory only; AuthError when no identity or passphrase fits."""
    pyrage = _pyrage()
    errors = []
    if identities:
        try:
            return bytes(pyrage.decrypt(data, identities))
        except pyrage.DecryptError as exc:
            errors.append(str(exc))
    if passphrase:
        try:
            return bytes(pyrage.passphrase.decrypt(data, passphrase))
        except pyrage.DecryptError as exc:
            errors.append(str(exc))
    if not errors:
        raise AuthError("encrypted: give --identity FILE, or the passphrase")
    raise AuthError(f"cannot decrypt: {'; '.join(errors)[:200]}")


def passphrase_from_env_or_prompt(*, confirm: bool) -> str | None:
    """$BITKEY_DIR_EXPORT_PASSPHRASE, else a hidden prompt if somebody can answer, else None."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env
    from bitkey_dir import interaction

    asking = interaction.current()
    if not asking.can_prompt():
        return None
    first = asking.secret("Export passphrase: ")
    if confirm and first and asking.secret("The same passphrase again: ") != first:
        raise InputError("the two passphrases differ; nothing written")
    return first or None
