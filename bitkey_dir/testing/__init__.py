"""The source contract as a test suite, for built-in sources and plugins alike.

A plugin's tests subclass :class:`SourceContract` in a pytest module, say which
``[sources.NAME]`` settings build a working source and which keys it must hold, and inherit
every test below (the way keyring's backends subclass ``BackendBasicTests``)::

    from bitkey_dir.testing import SourceContract

    class TestVaultSource(SourceContract):
        def settings(self):
            return {"type": "vault", "url": "https://vault.example"}

        def expected_keys(self):
            return [RecoveryKey("contract", KeyId.parse("…"), RecoveryPassword.parse("…"),
                                computer="PC-0042")]

The source is built through the registry (``type`` is looked up as a configured source's
would be: built in, or the installed entry point), so an unregistered plugin fails here.
Every optional protocol of :mod:`bitkey_dir.sources.base` has a test here, skipped for a
source that does not implement it; a few of them need more than the keys (``sealed`` for
``Decrypts``, ``read_paths`` for ``ReadsFiles``). The tests ask what an operation would ask,
``rotate`` included: point the suite at a test directory, never a production one.
docs/SOURCES.md explains the contract these tests check. pytest is needed to run them.
"""

from bitkey_dir.testing.contract import SourceContract
from bitkey_dir.testing.harness import Sealed

__all__ = ["Sealed", "SourceContract"]
