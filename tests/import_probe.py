"""What a command imports: run it in a fresh interpreter and list the loaded modules."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("ldap3", "dns", "msal", "msgraph", "kiota_abstractions", "azure", "keyring", "pyrage")


def imported_by(*argv: str) -> tuple[list[str], list[str], bytes]:
    """(heavy libraries imported, bitkey_dir modules imported, stdout) for `bitkey-dir ARGV`."""
    probe = (
        "import sys\n"
        f"sys.argv = ['bitkey-dir', *{list(argv)!r}]\n"
        "from bitkey_dir.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "mine = sorted(m for m in sys.modules if m.startswith('bitkey_dir.'))\n"
        f"sys.stderr.write('PROBE ' + repr((sorted(roots & set({HEAVY!r})), mine)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=60,
    )
    heavy, mine = eval(proc.stderr.decode().split("PROBE ", 1)[1])  # noqa: S307 - our own repr
    return heavy, mine, proc.stdout
