"""age encryption (through pyrage) for exports: recipients, identities and passphrases.

Exports are encrypted to age (``age1…``) or SSH (``ssh-ed25519 …``, ``ssh-rsa …``) public
keys, or with a passphrase (age's scrypt recipient). pyrage is imported only here, only when
an encrypted export is written or read.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, Final

from bitkey_dir.core.errors import AuthError, InputError
from bitkey_dir.runtime.small_files import NotReadable, read_small_file

AGE_BINARY: Final = b"age-encryption.org/v1\n"
AGE_ARMORED: Final = b"-----BEGIN AGE ENCRYPTED FILE-----"
PASSPHRASE_ENV: Final = "BITKEY_DIR_EXPORT_PASSPHRASE"  # noqa: S105 - a variable's name
KEY_FILE_LIMIT: Final = 256 * 1024  # a key file is a few KiB; an SSH RSA key under 4 KiB
MAX_RECIPIENTS: Final = 64  # more would take seconds each time: age tries them pairwise
MAX_SCRYPT_WORK: Final = 22  # age's own passphrase encryption uses 2^18
_HEADER_LIMIT: Final = 64 * 1024


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise InputError(
            "encrypted exports need the pyrage package, which bitkey-dir installs: reinstall "
            "it (pip install bitkey-dir, or pip install . in a checkout)"
        ) from None
    return pyrage


def is_encrypted(data: bytes) -> bool:
    head = data.lstrip()[:64]
    return head.startswith((AGE_BINARY, AGE_ARMORED))


def _header(data: bytes) -> bytes | None:
    """The age header (the stanzas, up to the MAC line), decoding the armor if there is one;
    None when it does not end within the first 64 KiB (ours end within a few hundred bytes)."""
    body = data.lstrip()
    if body.startswith(AGE_ARMORED):
        lines = body[: _HEADER_LIMIT * 2].splitlines()[1:]
        encoded = b"".join(line.strip() for line in lines if not line.startswith(b"-----"))
        try:
            body = base64.b64decode(encoded[: len(encoded) // 4 * 4], validate=False)
        except ValueError:
            return None
    end = body.find(b"\n---", 0, _HEADER_LIMIT)
    return body[: end + 1] if end >= 0 else None


def _stanzas(data: bytes) -> list[list[bytes]]:
    """Each recipient stanza's type and arguments: ``[[b"X25519", b"…"], [b"scrypt", …]]``."""
    header = _header(data) or b""
    return [
        line[3:].split()
        for line in header.split(b"\n")
        if line.startswith(b"-> ") and line[3:].split()
    ]


def uses_passphrase(data: bytes) -> bool:
    """Whether the file was encrypted with a passphrase (age's scrypt stanza)."""
    return any(stanza[0] == b"scrypt" for stanza in _stanzas(data))


def check_header(data: bytes) -> None:
    """Refuse, before any work, a file whose header would take minutes to try: age tries
    each identity against each recipient stanza (thousands make it quadratic), and a scrypt
    stanza names its own work factor."""
    if _header(data) is None:
        raise AuthError(
            f"its header does not end within {_HEADER_LIMIT // 1024} KiB (thousands of "
            "recipients?), unlike an export of bitkey-dir: not tried"
        )
    stanzas = _stanzas(data)
    if len(stanzas) > MAX_RECIPIENTS:
        raise AuthError(
            f"it names {len(stanzas)} recipients, more than the {MAX_RECIPIENTS} an export "
            "of bitkey-dir would have: not tried"
        )
    for stanza in stanzas:
        if stanza[0] == b"scrypt" and len(stanza) >= 3:
            work = int(stanza[2]) if stanza[2].isdigit() else MAX_SCRYPT_WORK + 1
            if work > MAX_SCRYPT_WORK:
                raise AuthError(
                    f"its passphrase asks for a scrypt work factor of 2^{stanza[2].decode()}, "
                    f"more than bitkey-dir allows (2^{MAX_SCRYPT_WORK}): not tried"
                )


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
            data = read_small_file(path, limit=KEY_FILE_LIMIT, what="the public key file")
            lines = data.decode("utf-8").splitlines()
        except NotReadable as exc:
            if exc.problem == "missing":
                raise InputError(
                    "--encrypt-to: expected an age public key (age1…), an SSH public key "
                    "(ssh-ed25519 …, ssh-rsa …) or a readable file holding one"
                ) from None
            raise InputError(f"--encrypt-to: {exc.message}") from None
        except UnicodeDecodeError:
            raise InputError(f"--encrypt-to {path}: not a text file holding a public key") from None
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
        data = read_small_file(path, limit=KEY_FILE_LIMIT, what="the identity file")
    except NotReadable as exc:
        if exc.problem == "unreadable":
            raise InputError(f"cannot read the identity file {path} ({exc.detail})") from None
        raise
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


def decrypt(
    data: bytes,
    identities: list[Any],
    passphrase: str | None,
    *,
    origin: str = "typed",
) -> bytes:
    """The plaintext, in memory only; AuthError saying what would open it when nothing
    given does. ``origin`` says where the passphrase came from, for that message."""
    pyrage = _pyrage()
    check_header(data)
    if uses_passphrase(data):
        if not passphrase:
            raise AuthError(
                f"it is encrypted with a passphrase: set {PASSPHRASE_ENV}, or run on a terminal "
                "to type it"
            )
        try:
            return bytes(pyrage.passphrase.decrypt(data, passphrase))
        except pyrage.DecryptError:
            raise AuthError(f"the passphrase {origin} does not open it") from None
    if not identities:
        raise AuthError(
            "it is encrypted to age or SSH public keys: give --identity FILE (or identity_file "
            "in the source's config) with a matching private key"
        )
    try:
        return bytes(pyrage.decrypt(data, identities))
    except pyrage.DecryptError:
        raise AuthError(
            "none of the identities given (--identity, identity_file) opens it: it is "
            "encrypted to other public keys"
        ) from None


def passphrase_from_env_or_prompt(*, confirm: bool) -> str | None:
    """$BITKEY_DIR_EXPORT_PASSPHRASE, else a hidden prompt if somebody can answer, else None."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env
    from bitkey_dir.runtime import interaction

    asking = interaction.current()
    if not asking.can_prompt():
        return None
    first = asking.secret("Export passphrase: ")
    if confirm and first and asking.secret("The same passphrase again: ") != first:
        raise InputError("the two passphrases differ; nothing written")
    return first or None
