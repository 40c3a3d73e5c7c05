"""Audit: which computers have no recovery key escrowed, or only old ones.

Reads no recovery password, so it writes nothing to the access trail. A source that fails
half-way adds nothing to the figures (they would be skewed), and makes the exit code its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bitkey_dir.core.coverage import Coverage
from bitkey_dir.core.errors import ExitCode, InputError
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.pool import release
from bitkey_dir.ops.run import Run, ask
from bitkey_dir.sources.base import Audits, Warn


@dataclass
class AuditResult:
    """Coverage of every source that answered, and each source's status."""

    coverage: Coverage
    sources: list[SourceStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fail_on_missing: bool = False

    @property
    def exit_code(self) -> ExitCode:
        """0 done; a failed source's code (the figures miss part of the estate); 1 with
        ``fail_on_missing`` when a computer has no key."""
        missing = self.fail_on_missing and self.coverage.missing > 0
        answer = ExitCode.NOT_FOUND if missing else ExitCode.FOUND
        return exit_code(answer, self.sources, every_source_needed=True)


def audit(
    run: Run,
    sources: Sequence[str] = (),
    *,
    stale_days: int | None = None,
    fail_on_missing: bool = False,
) -> AuditResult:
    """Escrow coverage of ``sources`` (default: the config's), one source after another.

    Raises InputError for a named source that cannot be audited (key files know only the
    computers that have keys) or an unknown one; such sources among the config's defaults
    are skipped with a warning.
    """
    if stale_days is not None and stale_days < 1:
        raise InputError("--stale-days must be at least 1")
    with run.active():
        opened = run.open(sources)
        auditable = [source for source in opened if isinstance(source, Audits)]
        skipped = [source for source in opened if not isinstance(source, Audits)]
        for source in skipped:
            release(source)
        if skipped and (sources or not auditable):
            # Named on the command line, a key file source is a mistake; among the config's
            # defaults it is only not what an audit reads.
            for source in auditable:
                release(source)
            raise InputError(
                f"{skipped[0].name}: only directory sources (ad, entra) can be audited; key "
                "files know only the computers that have keys"
            )
        result = AuditResult(Coverage(stale_days=stale_days), fail_on_missing=fail_on_missing)
        result.warnings += [
            f"{source.name}: skipped: key files know only the computers that have keys, so "
            "only directory sources (ad, entra) are audited"
            for source in skipped
        ]

        def read(source: Audits, warn: Warn) -> None:
            label = f"{source.name}: computers read"
            result.coverage.add(run.interaction.progress(source.iter_escrow(warn), label))

        for each in auditable:
            answer = ask(each, read)
            result.warnings.extend(answer.warnings)
            result.sources.append(answer.status)
    return result
