"""Secrets held in this process's memory only, AES-GCM sealed under a key that exists only
in this process: a core file, a swapped-out page or a stray repr shows ciphertext at most.
The portal keeps agents' AD passwords and Entra token caches this way."""

from __future__ import annotations

import os
from typing import Final


class Sealed:
    """A secret encrypted under a key of this process; its repr shows nothing."""

    _key: Final = os.urandom(32)

    def __init__(self, value: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._nonce = os.urandom(12)
        self._box = AESGCM(self._key).encrypt(self._nonce, value.encode(), None)

    def open(self) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self._key).decrypt(self._nonce, self._box, None).decode()

    def __repr__(self) -> str:
        return "<sealed secret>"

    def __reduce__(self) -> str:
        raise TypeError("a sealed secret is not pickled")
