"""Find keys: ask every chosen source, keep going when one fails, and put the answers in order.

The result says which sources answered, so that "nothing found" can be trusted: when a source
failed and nothing was found, the exit code is that failure's, not "not found". Every key whose
password is shown is in the access trail before the result is returned.

With ``key_package``, the one key the query names has its key package written to a new file
(package_file.py); its trail line names the file. Key packages are asked of the sources only
then (sources/base.py, HoldsKeyPackages), and a source known to keep none (Entra ID) is not
asked at all: it would read the key's password (which its directory audits) for nothing.
When the key is found without a package nothing is shown, but a password read from a
directory on the way is still a read: its trail line says it was not shown.

With ``then_rotate`` (find --rotate), the keys revealed are rotated once they were shown,
each in the source that held it (ops/rotate.py); the result carries those rotations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from bitkey_dir.core import conflicts
from bitkey_dir.core.errors import AuthError, ConflictError, ExitCode, InputError, SourceError
from bitkey_dir.core.model import Query, RecoveryKey
from bitkey_dir.ops import indexed, policy, rotate
from bitkey_dir.ops.indexed import IndexUse
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.pool import release
from bitkey_dir.ops.rotate import RotateResult
from bitkey_dir.ops.run import Answer, Run, ask_all
from bitkey_dir.sources.base import (
    Decrypts,
    HoldsKeyPackages,
    ReadsFiles,
    Source,
    StoresNoKeyPackages,
)
from bitkey_dir.store import package_file, trail

_OLDEST: Final = datetime.min.replace(tzinfo=UTC)
PACKAGE_RIGHTS: Final = (
    "Active Directory: Read and Control Access on msFVE-KeyPackage; "
    "Microsoft Entra ID stores no key packages"
)


@dataclass
class LookupResult:
    """Keys newest first (one per key and source), warnings prefixed with the source's name,
    and each source's status."""

    query: Query
    keys: list[RecoveryKey] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    trail_problem: str | None = None  # the trail could not be written (and that was allowed)
    index: IndexUse = field(default_factory=IndexUse)  # how the Key ID index took part
    key_package: Path | None = None  # where the key package was written (find --key-package)
    package_problem: str | None = None  # the key was found, its key package was not
    rotations: list[RotateResult] = field(default_factory=list)  # asked after the reveal

    @property
    def distinct_key_ids(self) -> int:
        return len({key.key_id for key in self.keys})

    @property
    def conflicts(self) -> list[conflicts.Conflict]:
        """Full Key IDs found on several computers, or with several passwords: ``find``
        reveals none of them (ConflictError)."""
        return conflicts.find_conflicts(self.keys)

    @property
    def complete(self) -> bool:
        """Every source answered the query itself: no part of the answer was taken from
        the Key ID index (which holds no key escrowed since its refresh)."""
        return self.index.complete

    @property
    def ambiguous(self) -> bool | None:
        """True: a Key ID prefix matched different keys, and the agent must confirm more
        digits. None: it matched one key in the Key ID index, which cannot say whether a
        key with the same digits was escrowed since (``complete`` is false). False: the
        Key ID names one key, or the query is a computer name."""
        if self.query.key_id is None or self.query.key_id.is_full:
            return False
        if self.distinct_key_ids > 1:
            return True
        return False if self.complete else None

    @property
    def exit_code(self) -> ExitCode:
        """0 if a password can be read out; 3 if keys exist but none is readable (rights);
        else a failed source's code; 1 only when every source answered "no key". With
        --key-package, a key found without a readable package is 3 (or a failed source's
        code: it may have held the package). Rotations after the reveal change a 0 only
        when one failed: 3 for a missing right, else 4 (also when, followed up, a device
        reported it failed or not supported; one still pending leaves the 0)."""
        if self.key_package is not None:  # written: something was revealed, as with a password
            answer = ExitCode.FOUND
            then = [status for rotated in self.rotations for status in rotated.sources]
            return exit_code(answer, self.sources, every_source_needed=False, then=then)
        if self.package_problem is not None:
            failed = any(status.status != "ok" for status in self.sources)
            if failed:
                return exit_code(ExitCode.NOT_FOUND, self.sources, every_source_needed=False)
            return ExitCode.AUTH
        if any(key.recovery_password is not None for key in self.keys):
            answer = ExitCode.FOUND
        elif self.keys:
            answer = ExitCode.AUTH
        else:
            answer = ExitCode.NOT_FOUND
        then = [status for rotated in self.rotations for status in rotated.sources]
        code = exit_code(answer, self.sources, every_source_needed=False, then=then)
        return ExitCode.SOURCE_FAILED if code == ExitCode.FOUND and self._rotation_failed else code

    @property
    def _rotation_failed(self) -> bool:
        """A rotation followed up (--wait) that a device reported failed or not supported."""
        return any(
            r.progress is not None and r.progress.state in ("failed", "not supported")
            for rotated in self.rotations
            for r in rotated.rotations
        )


def find(
    run: Run,
    query: Query,
    sources: Sequence[str] = (),
    *,
    reason: str | None = None,
    identities: Sequence[Path] = (),
    use_index: bool = True,
    key_package: Path | None = None,
    then_rotate: bool = False,
    wait: float | None = None,
    shown: Callable[[LookupResult], None] | None = None,
) -> LookupResult:
    """Keys answering ``query`` from ``sources`` (names or paths; default: the config's).

    The Key ID index narrows the search unless ``use_index`` is false (ops/indexed.py).
    With ``key_package``, the key's package is written to that new file (mode 0600): the
    query must name one key by Key ID, and the file must not exist. When that key has no
    readable package, ``result.package_problem`` says so and nothing is revealed (its
    password is dropped from the result; exit code 3).
    ``shown`` is called with the result once the trail holds the reveal: the caller shows
    the keys there. With ``then_rotate``, when a password was found (exit code 0), exactly
    the keys revealed are then rotated, each in the source that held it, after ``shown``
    returns: ``result.rotations`` (ops/rotate.py, rotate_revealed); with ``wait`` (seconds,
    only with ``then_rotate``) each rotation is followed up as `rotate --wait` does.
    Raises InputError for a bad reason, a missing required reason, an unknown source, a
    ``key_package`` that exists or a Key ID that names several keys, and SourceError when
    ``require_reason`` is set and the trail cannot be written. Raises ConflictError (exit
    5) when a full Key ID found is escrowed for several computers or with several
    passwords (core/conflicts.py): nothing is revealed, and the trail records the refusal.
    Source failures are in ``result.sources`` and ``result.exit_code``, not raised.
    """
    policy.check_reason(reason)
    if wait is not None and not then_rotate:
        raise InputError("--wait follows a rotation up: give it with --rotate")
    rotate.check_wait(wait)
    if key_package is not None:
        key_package = _package_target(query, key_package)
    policy.demand_reason(run.config, reason, "revealing a key")
    packages = key_package is not None

    def prepared(source: Source) -> Source:
        source = _decrypting(source, identities)
        if packages and isinstance(source, HoldsKeyPackages):
            return source.with_key_packages()
        return source

    with run.active():
        opened = [prepared(source) for source in run.open(sources)]
        skipped: list[str] = []
        if packages:
            opened, skipped = _holding_packages(opened)
        if use_index:
            answers, used = indexed.ask(
                run, query, opened, lambda name: prepared(run.open_one(name))
            )
        else:
            answers, used = ask_all(opened, indexed.live(query)), IndexUse()
        result = merge(query, answers)
        result.index = used
        result.warnings[:0] = skipped
        result.warnings.extend(used.warnings)
        if used.problem:
            result.warnings.append(used.problem)
        principals = {source.name: getattr(source, "principal", None) for source in opened}
        _refuse_conflicts(run, result, reason, principals)
        packaged = _packaged(result) if key_package is not None else None
        withheld: list[trail.RevealEntry] = []
        if result.package_problem is not None:
            # All or nothing: a failed --key-package shows no password either, so that a
            # non-zero exit always means nothing was shown. A password a directory handed
            # over is still in the trail, marked as not shown: the directory's own audit
            # log has the read, and `reads` must find what explains it.
            directories = {source.name for source in opened if not isinstance(source, ReadsFiles)}
            read = [key for key in result.keys if key.recovery_password is not None]
            withheld = trail.entries_for(
                [key for key in read if key.source in directories], reason, run.command, principals
            )
            for entry in withheld:
                entry["shown"] = False
            result.keys = [
                replace(key, recovery_password=None, key_package=None) for key in result.keys
            ]
        entries = withheld + trail.entries_for(
            result.keys,
            reason,
            run.command,
            principals,
            key_package=(packaged, key_package) if packaged and key_package else None,
        )

        def record() -> None:
            # Written before any key is shown, and before the key package appears.
            result.trail_problem = policy.record(run.config, entries, refusing="not revealing keys")

        if packaged is not None and packaged.key_package is not None and key_package:
            package_file.write_key_package(key_package, packaged.key_package, record)
            result.key_package = key_package
        else:
            record()
    if shown is not None:
        shown(result)
    if then_rotate and result.exit_code == ExitCode.FOUND:
        result.rotations = rotate.rotate_revealed(run, result.keys, reason=reason, wait=wait)
    return result


def _package_target(query: Query, key_package: Path) -> Path:
    """The new file a key package is to be written to, in full (the trail names it so)."""
    if query.key_id is None:
        raise InputError(
            "--key-package needs --key-id: a key package belongs to one key",
            hint="bitkey-dir find --key-id 063EA4E1 --key-package keypackage.bin",
        )
    package_file.check_target(key_package)
    return key_package.expanduser().resolve()


def _refuse_conflicts(
    run: Run, result: LookupResult, reason: str | None, principals: dict[str, str | None]
) -> None:
    """One Key ID on several computers (or with several passwords) reveals nothing: the
    refusal goes in the trail, and ConflictError (exit 5) names the computers."""
    found = result.conflicts
    if not found:
        return
    message = conflicts.refusal(found)
    entries = trail.refusal_entries(found, reason, run.command, principals)
    try:
        problem = policy.record(run.config, entries, refusing="the refusal is not recorded")
    except SourceError as exc:
        problem = exc.message
    if problem:
        message += f" (and the access trail could not record this refusal: {problem})"
    raise ConflictError(message)


def _holding_packages(opened: list[Source]) -> tuple[list[Source], list[str]]:
    """The sources that may hold key packages, and a warning for each of the others, which
    are not asked (closed here). None left is refused before anything is read."""
    keeping = [source for source in opened if not isinstance(source, StoresNoKeyPackages)]
    without = [source for source in opened if isinstance(source, StoresNoKeyPackages)]
    for source in without:
        release(source)
    said = [f"{source.name}: not asked: {source.no_key_packages}" for source in without]
    if keeping or not without:
        return keeping, said
    names = ", ".join(source.name for source in without)
    raise AuthError(
        f"--key-package: {without[0].no_key_packages} ({names}); nothing was read",
        hint="run without --key-package to read the password",
    )


def _packaged(result: LookupResult) -> RecoveryKey | None:
    """The key whose package ``find --key-package`` writes: the one key the Key ID names.
    None when no key was found, or when it was found without a package (then
    ``result.package_problem`` says why); InputError when the ID names several keys, or
    the sources hold different packages for it."""
    key_ids = sorted({str(key.key_id) for key in result.keys})
    if not key_ids:
        return None
    if len(key_ids) > 1:
        shown = ", ".join(key_ids[:5]) + (", …" if len(key_ids) > 5 else "")
        raise InputError(
            f"--key-package: {result.query.describe()} matches {len(key_ids)} keys "
            f"({shown}): give the full Key ID of one",
        )
    holding = [key for key in result.keys if key.key_package is not None]
    if not holding:
        sources = ", ".join(sorted({key.source for key in result.keys}))
        result.package_problem = (
            f"Key ID {key_ids[0]} was found ({sources}) without a key package: none was "
            f"escrowed with it, or the account may not read it ({PACKAGE_RIGHTS})"
        )
        return None
    if len({key.key_package for key in holding}) > 1:
        sources = ", ".join(sorted({key.source for key in holding}))
        raise InputError(
            f"--key-package: Key ID {key_ids[0]} has different key packages in {sources}: "
            "choose one with --source"
        )
    return holding[0]


def _decrypting(source: Source, identities: Sequence[Path]) -> Source:
    if identities and isinstance(source, Decrypts):
        return source.with_identities(identities)
    return source


def ask_sources(query: Query, sources: Sequence[Source]) -> LookupResult:
    """Ask already opened ``sources`` (concurrently when there are several) and merge their
    answers, closing each source. No trail: for callers that reveal nothing themselves."""
    return merge(query, ask_all(sources, indexed.live(query)))


def merge(query: Query, answers: Sequence[Answer[list[RecoveryKey]]]) -> LookupResult:
    """The sources' answers as one result: de-duplicated, newest first."""
    result = LookupResult(query)
    for answer in answers:
        result.keys.extend(answer.value or [])
        result.warnings.extend(answer.warnings)
        result.sources.append(answer.status)
    result.keys = newest_first(_unique(result.keys))
    return result


def newest_first(keys: list[RecoveryKey]) -> list[RecoveryKey]:
    """Newest first; keys without a date after dated ones; ties in a stable, readable order."""
    by_id = sorted(keys, key=lambda k: (str(k.key_id), k.source, k.location or ""))
    return sorted(by_id, key=lambda k: k.created or _OLDEST, reverse=True)


def _unique(keys: list[RecoveryKey]) -> list[RecoveryKey]:
    """One entry per key and source: the same key saved twice in a share is one key."""
    seen: set[tuple[object, ...]] = set()
    unique = []
    for key in keys:
        identity = (key.source, key.key_id, key.recovery_password, key.computer, key.deleted)
        if identity not in seen:
            seen.add(identity)
            unique.append(key)
    return unique
