"""The one way tests run the command line: in-process, with the checks every run must pass.

``invoke("find", "-k", "063EA4E1")`` runs `bitkey-dir find -k 063EA4E1` through Typer's test
runner and checks that it ended with a documented exit code, printed no traceback and no
internal error, showed no recovery password on stderr (nor on stdout unless it succeeded),
showed none of ``never_shown`` (credentials) anywhere, and left none of them in the access
trail. The :class:`Outcome` unpacks (and indexes) as ``code, out, err``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bitkey_dir.cli.app import app

DOCUMENTED_EXIT_CODES = (0, 1, 2, 3, 4)
_runner = CliRunner()


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    elapsed: float = 0.0

    def __iter__(self) -> Iterator[Any]:
        return iter((self.code, self.out, self.err))

    def __getitem__(self, index: int) -> Any:
        return (self.code, self.out, self.err)[index]

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.out)
        return parsed

    @property
    def keys(self) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = self.document["keys"]
        return keys

    @property
    def key_ids(self) -> list[str]:
        return [key["key_id"] for key in self.keys]

    @property
    def source(self) -> dict[str, Any]:
        """The status of the one source that was asked."""
        (status,) = self.document["sources"]
        return dict(status)

    @property
    def status(self) -> str:
        return str(self.source["status"])


def invoke(
    *args: str | os.PathLike[str],
    stdin: str | None = None,
    secrets: Iterable[str] = (),
    never_shown: Iterable[str] = (),
) -> Outcome:
    """Run ``bitkey-dir ARGS`` (with ``stdin`` as standard input) and check the run.

    ``secrets`` (recovery passwords) may appear on stdout of a successful run only;
    ``never_shown`` (credentials) nowhere, and neither in the access trail.
    """
    started = time.monotonic()
    result = _runner.invoke(app, [str(arg) for arg in args], input=stdin)
    elapsed = time.monotonic() - started
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    outcome = Outcome(result.exit_code, result.stdout, result.stderr, elapsed)
    assert outcome.code in DOCUMENTED_EXIT_CODES, outcome
    assert "Traceback" not in outcome.out + outcome.err, outcome.err
    assert "internal error" not in outcome.err, outcome.err
    secrets = list(secrets)
    never_shown = list(never_shown)
    for secret in secrets:
        assert secret not in outcome.err
        if outcome.code != 0:
            assert secret not in outcome.out
    for credential in never_shown:
        assert credential not in outcome.out + outcome.err
    trail = Path(os.environ["BITKEY_DIR_TRAIL"])
    if trail.is_file():
        text = trail.read_text(encoding="utf-8")
        assert not [secret for secret in [*secrets, *never_shown] if secret in text]
    return outcome


def toml_value(value: object) -> str:
    """A Python value as TOML, for configs written by tests."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(value)
