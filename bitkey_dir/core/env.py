"""Environment variables bitkey-dir reads, in one place (documented in README.md)."""

from __future__ import annotations

from typing import Final

CONFIG_ENV: Final = "BITKEY_DIR_CONFIG"  # the config file
PASSWORD_ENV: Final = "BITKEY_DIR_PASSWORD"  # noqa: S105 - a variable's name: the LDAP bind password
USER_ENV: Final = "BITKEY_DIR_USER"  # the bind account for --source ldaps://host
CA_FILE_ENV: Final = "BITKEY_DIR_CA_FILE"  # the CA bundle for --source ldaps://host
CLIENT_SECRET_ENV: Final = "BITKEY_DIR_CLIENT_SECRET"  # noqa: S105 - the Entra app's secret
TRAIL_ENV: Final = "BITKEY_DIR_TRAIL"  # the access trail file
INDEX_ENV: Final = "BITKEY_DIR_INDEX"  # the Key ID index file
DEBUG_ENV: Final = "BITKEY_DIR_DEBUG"  # show tracebacks of internal errors
