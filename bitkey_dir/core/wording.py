"""The command line's options in Python's terms, for messages that both the command line and the
library show.

Operations, sources and the store word their messages once, for the command line ("give --force
to replace it"). :class:`bitkey_dir.Client` (and so :mod:`bitkey_dir.api`) rewords what it
raises and the warnings it returns with :data:`PARAMETERS` before a Python caller sees them
("give force=True to replace it"). Every option a string below the command line names is in
:data:`PARAMETERS` or, with the reason, in :data:`NOT_PARAMETERS`: tests/library/test_wording.py
reads the package's strings to keep it so.

>>> for_python("out.json exists: give --force to replace it")
'out.json exists: give force=True to replace it'
>>> for_python("lab.toml requires a reason for revealing a key: add --reason TEXT (a ticket)")
'lab.toml requires a reason for revealing a key: add reason=TEXT (a ticket)'
>>> for_python("--key-package needs --key-id; or use --no-index")
'key_package needs key_id; or use use_index=False'
>>> for_python("pip install --force-reinstall bitkey-dir, from /tmp/--force")
'pip install --force-reinstall bitkey-dir, from /tmp/--force'
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

from bitkey_dir.core.errors import BitkeyError

# Option → what a Python caller passes instead. "name=" takes a value: a message's placeholder
# follows it ("--reason TEXT" → "reason=TEXT"), else the parameter is named alone.
PARAMETERS: Final = MappingProxyType(
    {
        "--computer": "computer=",
        "--config": "config=",
        "--encrypt-to": "encrypt_to=",
        "--fail-on-missing": "fail_on_missing=True",
        "--force": "force=True",
        "--format": "fmt=",
        "--identity": "identities=",
        "--include-deleted": "include_deleted=True",
        "--key-id": "key_id=",
        "--key-package": "key_package=",
        "--key-packages": "key_packages=True",
        "--no-index": "use_index=False",
        "--ou": "ou=",
        "--passphrase": "passphrase=",
        "--principal": "principal=",
        "--reason": "reason=",
        "--since": "since=",
        "--source": "sources=",
        "--stale-days": "stale_days=",
        "--wait": "wait=",
        "--what-if": "what_if=True",
    }
)

# Options named in the package that are no parameter, each with why it may stay as it is.
NOT_PARAMETERS: Final = MappingProxyType(
    {
        "--disclosed": "audit --disclosed is Client.disclosed(); named in docstrings and output",
        "--force-reinstall": "pip's option, in the advice to reinstall a broken installation",
        "--rotate": "find --rotate is a rotate() call after find(); named in doctor's checks",
        "--version": "the command's own option, named in a docstring",
        # `serve` runs a server, which no Client method does: its options stay options.
        "--listen": "serve's option, in the portal's settings errors",
        "--tls-cert": "serve's option, in the portal's settings errors",
        "--tls-key": "serve's option, in the portal's settings errors",
        "--behind-proxy": "serve's option, in the portal's settings errors",
    }
)

# An option as a word of its own (not inside a path or a longer name), and the placeholder
# for its value when one follows: TEXT, FILE, URL, PATH|NAME, NAME/TENANT.
OPTION: Final = re.compile(
    r"(?<![\w/.-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])(?: ([A-Z][A-Z0-9_/|]+)\b)?"
)


def _reworded(match: re.Match[str]) -> str:
    option, placeholder = match[1], match[2]
    python = PARAMETERS.get(option)
    if python is None:
        return match[0]
    if python.endswith("="):
        return python + placeholder if placeholder else python.removesuffix("=")
    return python + (f" {placeholder}" if placeholder else "")


def for_python(text: str) -> str:
    """``text`` with each option of :data:`PARAMETERS` replaced by its parameter."""
    return OPTION.sub(_reworded, text) if "--" in text else text


def reword(error: BitkeyError) -> BitkeyError:
    """``error`` itself, its message and hint in Python's terms (its class, exit code and
    traceback stay as they are)."""
    error.message = for_python(error.message)
    if error.hint is not None:
        error.hint = for_python(error.hint)
    error.args = (error.message, *error.args[1:])
    return error
