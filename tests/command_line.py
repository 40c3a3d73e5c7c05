"""The one way tests run the command line, with the checks every run must pass, and read the
access trail it leaves.

``invoke("find", "-k", "063EA4E1")`` runs `bitkey-dir find -k 063EA4E1` in-process through
Typer's test runner; ``invoke_with(config, ...)`` does so with ``--config config``;
``run_process(...)`` runs it in a new process (this checkout's package, or an installed
``bitkey-dir``). Each checks that the run ended with a documented exit code, printed no
traceback and no internal error, showed no recovery password on stderr (nor on stdout unless
it succeeded), showed none of ``never_shown`` (credentials) anywhere, and left none of them
in the access trail. The :class:`Outcome` unpacks (and indexes) as ``code, out, err``.
Fixtures that know what must stay hidden offer it as :class:`Checks`: ``**lab.checks``.

``trail_entries()`` reads the access trail (JSON lines at ``$BITKEY_DIR_TRAIL``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from typer.testing import CliRunner

from bitkey_dir.cli.app import app
from tests.conftest import ROOT

DOCUMENTED_EXIT_CODES = (0, 1, 2, 3, 4, 5)
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


class Checks(TypedDict, total=False):
    """What a fixture's runs must keep to themselves, as keyword arguments of the runners."""

    secrets: Iterable[str]
    never_shown: Iterable[str]


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
    return _checked(outcome, secrets, never_shown)


def invoke_with(
    config: str | os.PathLike[str],
    *args: str | os.PathLike[str],
    stdin: str | None = None,
    secrets: Iterable[str] = (),
    never_shown: Iterable[str] = (),
) -> Outcome:
    """``invoke("--config", config, *args)``: a run with this config file."""
    return invoke("--config", config, *args, stdin=stdin, secrets=secrets, never_shown=never_shown)


# This checkout's package, whatever is installed in the interpreter.
THIS_CHECKOUT = (sys.executable, "-m", "bitkey_dir")


def run_process(
    *args: str | bytes | os.PathLike[str],
    command: Sequence[str | os.PathLike[str]] = THIS_CHECKOUT,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 60,
    secrets: Iterable[str] = (),
    never_shown: Iterable[str] = (),
) -> Outcome:
    """Run ``COMMAND ARGS`` in a new process and check the run as :func:`invoke` does.

    ``command`` is what runs bitkey-dir: this checkout's package by default, an installed
    ``bitkey-dir``, or either behind a wrapper (setpriv, ``python -c PROBE``). ``env``
    replaces the environment; by default it is this one with the checkout on PYTHONPATH.
    Without ``stdin`` the process reads an empty file; in a session of its own it has no
    controlling terminal either, so no prompt can wait for a person at the one running tests.
    """
    started = time.monotonic()
    done = subprocess.run(
        [*(os.fspath(part) for part in command), *(os.fsencode(arg) for arg in args)],
        input=stdin.encode() if stdin is not None else None,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)} if env is None else dict(env),
        timeout=timeout,
        start_new_session=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    outcome = Outcome(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        elapsed,
    )
    return _checked(outcome, secrets, never_shown)


def _checked(outcome: Outcome, secrets: Iterable[str], never_shown: Iterable[str]) -> Outcome:
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
    trail = _trail_path()
    if trail.is_file():
        text = trail.read_text(encoding="utf-8")
        assert not [secret for secret in [*secrets, *never_shown] if secret in text]
    return outcome


def _trail_path() -> Path:
    return Path(os.environ["BITKEY_DIR_TRAIL"])


def trail_entries() -> list[dict[str, Any]]:
    """The access trail's lines, oldest first; none when there is no trail yet."""
    trail = _trail_path()
    if not trail.exists():
        return []
    return [json.loads(line) for line in trail.read_text(encoding="utf-8").splitlines()]


def take_trail_entries() -> list[dict[str, Any]]:
    """The trail's lines, leaving no trail: the next run's lines are then read alone."""
    entries = trail_entries()
    _trail_path().unlink(missing_ok=True)
    return entries


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
