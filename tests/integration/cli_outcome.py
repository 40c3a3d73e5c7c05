"""Running the CLI in-process for integration tests, with the checks every run must pass."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bitkey_dir.cli.app import app

_runner = CliRunner()


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    elapsed: float = 0.0

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


def run_cli(
    args: Iterable[str], *, secrets: Iterable[str], never_shown: Iterable[str] = ()
) -> Outcome:
    """Run ``bitkey-dir ARGS`` and check: a documented exit code, no traceback or internal
    error, no recovery password on stderr (nor on stdout unless the run succeeded), nothing
    of ``never_shown`` (credentials) anywhere, and no secret in the access trail."""
    started = time.monotonic()
    result = _runner.invoke(app, list(args))
    elapsed = time.monotonic() - started
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    outcome = Outcome(result.exit_code, result.stdout, result.stderr, elapsed)
    assert outcome.code in (0, 1, 2, 3, 4), outcome
    assert "Traceback" not in outcome.err, outcome.err
    assert "internal error" not in outcome.err, outcome.err
    secrets = list(secrets)
    for secret in secrets:
        assert secret not in outcome.err
        if outcome.code != 0:
            assert secret not in outcome.out
    for credential in never_shown:
        assert credential not in outcome.out + outcome.err
    trail = Path(os.environ["BITKEY_DIR_TRAIL"])
    if trail.exists():
        text = trail.read_text(encoding="utf-8")
        assert not [secret for secret in [*secrets, *never_shown] if secret in text]
    return outcome


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(value)
