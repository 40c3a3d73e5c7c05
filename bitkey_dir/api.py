"""The library's one-call functions: find, export and audit without the command line, with the
same policy.

Each function is one call of a :class:`bitkey_dir.Client` made for it and closed after it
(reading the config each time, opening and closing its sources); a program that makes many
calls, or signs in, reads the trail or verifies a password, uses a Client itself. As with the
commands, a revealed key or an export is recorded in the access trail first,
``require_reason`` is enforced the same way, and each result carries the exit code the command
would have ended with. Nothing is printed and nobody is prompted unless an ``interaction``
that prompts is passed: notices go to the ``bitkey_dir`` logger.

>>> from bitkey_dir import api
>>> result = api.find_keys(key_id="063EA4E1", sources=["examples/keys"], reason="INC-4711")
... # doctest: +SKIP
>>> [str(key.key_id) for key in result.keys], int(result.exit_code)  # doctest: +SKIP
(['063EA4E1-220C-4293-BA01-4754620A96E7'], 0)

(README.md, "Using it from Python", has the same example, run by the test suite.)

Bad input and refused policy raise :class:`~bitkey_dir.core.errors.BitkeyError` subclasses
(``InputError`` for a bad Key ID or a missing required reason), worded with parameters
(``reason=TEXT``) where the command names its options; a source that fails is reported in
``result.sources`` and ``result.exit_code``, so one failing directory never hides another's
answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bitkey_dir.client import Client, PathName
from bitkey_dir.ops.audit import AuditResult
from bitkey_dir.ops.disclosure import DisclosureResult
from bitkey_dir.ops.doctor import DoctorResult
from bitkey_dir.ops.export import ExportResult, Format
from bitkey_dir.ops.index import IndexReport, RefreshResult
from bitkey_dir.ops.lookup import LookupResult
from bitkey_dir.ops.reads import ReadsResult
from bitkey_dir.ops.rotate import RotateResult
from bitkey_dir.runtime.interaction import Interaction

T = TypeVar("T")

__all__ = [
    "AuditResult",
    "DisclosureResult",
    "DoctorResult",
    "ExportResult",
    "IndexReport",
    "LookupResult",
    "ReadsResult",
    "RefreshResult",
    "RotateResult",
    "audit_escrow",
    "clear_index",
    "diagnose",
    "disclosed_keys",
    "export_keys",
    "find_keys",
    "index_status",
    "key_reads",
    "refresh_index",
    "rotate_keys",
]


class _Once(Client):
    """The Client of one function call; the trail's lines name the function, as before."""

    def __init__(
        self, function: str, config: PathName | None, interaction: Interaction | None
    ) -> None:
        super().__init__(config=config, interaction=interaction)
        self._function = function

    def _trail_name(self, method: str) -> str:
        return f"bitkey_dir.api.{self._function}"


def _once(function: str, method: Callable[..., T], arguments: Mapping[str, Any]) -> T:
    """``method`` called with ``arguments`` (a function's own, from ``locals()``: its
    parameters are the method's, and ``config`` and ``interaction``) by a Client made for
    this one call. tests/library/test_api.py checks that the parameters match."""
    given = dict(arguments)
    config, interaction = given.pop("config"), given.pop("interaction")
    with _Once(function, config, interaction) as client:
        return method(client, **given)


def find_keys(
    *,
    key_id: str | None = None,
    computer: str | None = None,
    sources: Sequence[str] = (),
    config: PathName | None = None,
    include_deleted: bool = False,
    reason: str | None = None,
    identities: Sequence[Path] = (),
    use_index: bool = True,
    key_package: Path | None = None,
    then_rotate: bool = False,
    wait: float | None = None,
    interaction: Interaction | None = None,
) -> LookupResult:
    """Keys by Key ID (full or 8+ digit prefix) or computer name, from configured or given
    sources (names, key file paths, ldaps:// URLs); default: the config's default sources.

    ``config`` is the config file (default: as the CLI finds it). ``identities`` decrypt
    encrypted exports. The Key ID index narrows the search unless ``use_index`` is false.
    With ``key_package`` (a new file), the one key ``key_id`` names has its key package
    written there; ``result.key_package`` or ``result.package_problem`` says how it went.

    With ``then_rotate`` (as `bitkey-dir find --rotate`), once the keys are found and their
    reveal is in the trail, exactly the keys whose password was revealed are rotated, each
    in the source that held it: ``result.rotations`` holds one
    :class:`~bitkey_dir.ops.rotate.RotateResult` per key and source (Intune asked, or the
    manage-bde steps; a trail line per device), and ``result.exit_code`` stays the lookup's
    unless a rotation failed: 3 for a missing right, else 4. Nothing is rotated unless a
    password was found (exit code 0). ``wait`` (seconds, with ``then_rotate``) follows each
    rotation up as ``rotate_keys(wait=...)`` does.
    """
    return _once("find_keys", Client.find, locals())


def export_keys(
    *,
    source: str,
    output: Path,
    fmt: Format = "json",
    encrypt_to: Sequence[str] = (),
    passphrase: str | None = None,
    force: bool = False,
    include_deleted: bool = False,
    key_packages: bool = False,
    reason: str | None = None,
    config: PathName | None = None,
    interaction: Interaction | None = None,
) -> ExportResult:
    """Every key of ``source`` to ``output`` (mode 0600, appears only when complete),
    encrypted to age or SSH public keys (``encrypt_to``) or with ``passphrase``.

    A source or file that fails is ``result.failure`` (nothing written); a key exported
    without its password makes ``result.exit_code`` 3.
    """
    return _once("export_keys", Client.export, locals())


def audit_escrow(
    *,
    sources: Sequence[str] = (),
    stale_days: int | None = None,
    fail_on_missing: bool = False,
    config: PathName | None = None,
    interaction: Interaction | None = None,
) -> AuditResult:
    """Escrow coverage of directory sources: per computer, its keys and the newest one's date
    (``result.coverage``); reads no password."""
    return _once("audit_escrow", Client.audit, locals())


def diagnose(
    *,
    sources: Sequence[str] = (),
    config: PathName | None = None,
    interaction: Interaction | None = None,
) -> DoctorResult:
    """What `bitkey-dir doctor` checks, per source (default: every configured one): servers,
    certificates, sign-in, rights, files. Each ``result.diagnoses[n].checks`` is a list of
    ``Check`` (area, subject, status, detail, fix); ``result.exit_code`` is 0 healthy, 3 a
    right missing, 4 unreachable. Reads no recovery password into the result."""
    return _once("diagnose", Client.diagnose, locals())


def refresh_index(
    *,
    sources: Sequence[str] = (),
    due_only: bool = False,
    how: str = "auto",
    config: PathName | None = None,
    interaction: Interaction | None = None,
) -> RefreshResult:
    """List every key of the configured ``sources`` (default: all) into the Key ID index,
    never a password; with ``due_only``, only those older than their ``index_max_age``;
    ``how`` as in :meth:`Client.refresh_index`."""
    return _once("refresh_index", Client.refresh_index, locals())


def index_status(
    *, config: PathName | None = None, interaction: Interaction | None = None
) -> IndexReport:
    """Each configured source's part of the Key ID index: when refreshed, how many keys."""
    return _once("index_status", Client.index_status, locals())


def clear_index(
    *,
    sources: Sequence[str] = (),
    config: PathName | None = None,
    interaction: Interaction | None = None,
) -> list[str]:
    """Drop ``sources`` from the Key ID index (all of it when none is named)."""
    return _once("clear_index", Client.clear_index, locals())


def rotate_keys(
    *,
    key_id: str | None = None,
    computer: str | None = None,
    sources: Sequence[str] = (),
    reason: str | None = None,
    wait: float | None = None,
    config: PathName | None = None,
    interaction: Interaction | None = None,
) -> RotateResult:
    """Have disclosed keys replaced: Intune for Entra devices, manage-bde steps elsewhere
    (``result.rotations``); one trail line per device, as `bitkey-dir rotate` writes."""
    return _once("rotate_keys", Client.rotate, locals())


def disclosed_keys(
    *,
    sources: Sequence[str] = (),
    fail_on_valid: bool = False,
    config: PathName | None = None,
    interaction: Interaction | None = None,
) -> DisclosureResult:
    """Every key the trail says was revealed: rotated since, or still valid."""
    return _once("disclosed_keys", Client.disclosed, locals())


def key_reads(
    *,
    since: str = "7d",
    sources: Sequence[str] = (),
    config: PathName | None = None,
    interaction: Interaction | None = None,
) -> ReadsResult:
    """Key reads the directory recorded since ``since`` ("7d", "24h", a date), each
    matched with the trail."""
    return _once("key_reads", Client.reads, locals())
