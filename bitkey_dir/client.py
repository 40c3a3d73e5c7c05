"""bitkey_dir.Client: every bitkey-dir command as a method, over sources kept open between calls.

>>> from bitkey_dir import Client
>>> with Client(config="bitkey-dir.toml") as client:  # doctest: +SKIP
...     result = client.find(key_id="063EA4E1", reason="INC-4711")
...     again = client.find(computer="PC-0042", reason="INC-4712")  # the same connection

The config is read once, when the Client is made. A source named in a call (or a default one)
is opened on first use and kept until :meth:`Client.close`, so that the next call reuses its
LDAP connection or its sign-in. A Client may be called from several threads at once: each
call then has sources of its own, never one another call is using. Calls block; from a running
event loop, ``await asyncio.to_thread(client.find, ...)`` keeps the loop free.

Everything else is what the commands do, through the same operations: each revealed key and
each export is in the access trail before it is returned or written, ``require_reason`` is
enforced, and each result carries the exit code the command would have ended with. Nothing is
printed and nobody is asked unless an ``interaction`` that prompts is given: notices go to the
``bitkey_dir`` logger. Bad input and refused policy raise
:class:`~bitkey_dir.core.errors.BitkeyError`; a source that fails is in ``result.sources``
and ``result.exit_code``, so one failing directory never hides another's answer. Messages and
warnings name parameters, not the command's options (``force=True``, not ``--force``).
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bitkey_dir.core.errors import BitkeyError, InputError
from bitkey_dir.core.wording import reword
from bitkey_dir.runtime.interaction import QUIET, Interaction

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from bitkey_dir.core.model import PasswordCheck, Query
    from bitkey_dir.core.rights import Action
    from bitkey_dir.ops.audit import AuditResult
    from bitkey_dir.ops.disclosure import DisclosureResult
    from bitkey_dir.ops.doctor import DoctorResult
    from bitkey_dir.ops.export import ExportResult, Format
    from bitkey_dir.ops.index import IndexReport, RefreshResult
    from bitkey_dir.ops.inventory import SourceInfo
    from bitkey_dir.ops.lookup import LookupResult
    from bitkey_dir.ops.reads import ReadsResult
    from bitkey_dir.ops.rights import ChangeResult, RightsResult
    from bitkey_dir.ops.rotate import RotateResult
    from bitkey_dir.ops.run import Run
    from bitkey_dir.ops.signin import AuthReport, Login, Logout
    from bitkey_dir.ops.trail import TrailListing
    from bitkey_dir.runtime.config import Config
    from bitkey_dir.runtime.credentials import Secret, Wanted

__all__ = ["Client"]

T = TypeVar("T")
PathName = str | os.PathLike[str]
# A source name, a path to key files or an ldaps:// URL, or several of them.
Sources = PathName | Iterable[PathName]


class Client:
    """bitkey-dir's commands over one config, with sources kept open between calls.

    ``config``: a config file (``str`` or path), a parsed
    :class:`~bitkey_dir.runtime.config.Config`, or None for the file the command would use
    (``BITKEY_DIR_CONFIG``, else the platform's). ``interaction``: who is told and asked
    things (default: Quiet, which logs notices and never prompts); it must bear calls from
    several threads if the Client is called from several.
    """

    def __init__(
        self, *, config: PathName | Config | None = None, interaction: Interaction | None = None
    ) -> None:
        from bitkey_dir.ops.pool import SourcePool
        from bitkey_dir.runtime.config import Config, load_config

        try:
            parsed = (
                config
                if isinstance(config, Config)
                else load_config(Path(config) if config is not None else None)
            )
        except BitkeyError as exc:
            reword(exc)
            raise
        self._config = parsed
        self._interaction = interaction or QUIET
        self._pool = SourcePool(parsed)
        # Sources left open by a Client nobody closed are closed when it is collected.
        self._closing = weakref.finalize(self, self._pool.close)

    @property
    def config(self) -> Config:
        """The configuration, as read when the Client was made."""
        return self._config

    def __repr__(self) -> str:
        state = "closed" if self._pool.closed else f"{self._pool.held()} sources open"
        return f"<bitkey_dir.Client config={str(self._config.path)!r} ({state})>"

    def __enter__(self) -> Self:
        self._check_open("with")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every source kept open (one in use by a call is closed when that call
        ends). Closing again does nothing; any other call after this raises RuntimeError."""
        self._closing()

    # -- keys ---------------------------------------------------------------------------

    def find(
        self,
        *,
        key_id: str | None = None,
        computer: str | None = None,
        sources: Sources = (),
        include_deleted: bool = False,
        reason: str | None = None,
        identities: Iterable[PathName] = (),
        use_index: bool = True,
        key_package: PathName | None = None,
        then_rotate: bool = False,
        wait: float | None = None,
    ) -> LookupResult:
        """Keys by Key ID (full, or 8 or more digits) or computer name (``*`` matches any
        characters), from ``sources`` (names, key file paths, ldaps:// URLs; default: the
        config's default sources). Each key revealed is in the access trail first.

        ``identities`` decrypt encrypted exports. The Key ID index narrows the search
        unless ``use_index`` is false. With ``key_package`` (a new file), the one key
        ``key_id`` names has its key package written there (``result.key_package``, or
        ``result.package_problem`` saying why not).

        With ``then_rotate`` (as `bitkey-dir find --rotate`), once the reveal is in the
        trail, exactly the keys whose password was revealed are rotated, each in the source
        that held it: ``result.rotations`` holds one RotateResult per key and source, and
        ``result.exit_code`` stays the lookup's unless a rotation failed (3 for a missing
        right, else 4). Nothing is rotated unless a password was found. ``wait`` (seconds,
        with ``then_rotate``) follows each rotation up as :meth:`rotate` does."""
        from bitkey_dir.ops import lookup

        names = _names(sources)
        keys = [Path(identity) for identity in identities]
        package = Path(key_package) if key_package is not None else None

        def work(run: Run) -> LookupResult:
            query = _query(key_id, computer, include_deleted)
            return lookup.find(
                run,
                query,
                names,
                reason=reason,
                identities=keys,
                use_index=use_index,
                key_package=package,
                then_rotate=then_rotate,
                wait=wait,
            )

        _holds_passwords()
        # Identities and key packages make a new source from the one opened (with_identities,
        # with_key_packages), closed by the lookup itself: such a call keeps nothing.
        return self._call("find", work, keep_sources=not keys and package is None)

    def export(
        self,
        *,
        source: str,
        output: PathName,
        fmt: Format = "json",
        reason: str | None = None,
        encrypt_to: Iterable[str] = (),
        passphrase: str | None = None,
        force: bool = False,
        key_packages: bool = False,
        include_deleted: bool = False,
    ) -> ExportResult:
        """Every key of ``source`` to the file ``output`` (mode 0600, appearing only when
        complete), encrypted to age or SSH public keys (``encrypt_to``: keys or files
        holding one) or with ``passphrase``; with ``key_packages``, each key's package too.

        A source or file that fails is ``result.failure`` (nothing written); a key exported
        without its password makes ``result.exit_code`` 3.
        """
        from bitkey_dir.ops import export

        recipients = list(encrypt_to)
        target = Path(output)

        def work(run: Run) -> ExportResult:
            with run.active():
                sealed = export.sealing(recipients, passphrase)
            result = export.export(
                run,
                source,
                target,
                fmt=fmt,
                encryption=sealed,
                force=force,
                reason=reason,
                include_deleted=include_deleted,
                key_packages=key_packages,
            )
            if result.failure is not None and run.pool is not None:
                run.pool.spoil()  # the source may have failed half-way: not kept
            return result

        _holds_passwords()
        # Key packages are read through a new source (with_key_packages): nothing to keep.
        return self._call("export", work, keep_sources=not key_packages)

    def rotate(
        self,
        *,
        key_id: str | None = None,
        computer: str | None = None,
        sources: Sources = (),
        reason: str | None = None,
        wait: float | None = None,
    ) -> RotateResult:
        """Have disclosed keys replaced: through Intune for Entra devices, with manage-bde
        steps elsewhere (``result.rotations``); one trail line per device. A Key ID prefix
        matching keys of several devices raises InputError and rotates nothing.

        With ``wait`` (seconds), as `bitkey-dir rotate --wait`, each rotation Intune was
        asked for is followed up until it is done (``rotation.progress.new_key_ids``),
        failed or not supported, or the time is up (still "pending"); KeyboardInterrupt
        meanwhile raises WaitInterrupted (exit code 130): the rotation may still complete."""
        from bitkey_dir.ops import rotate

        names = _names(sources)

        def work(run: Run) -> RotateResult:
            query = _query(key_id, computer)
            return rotate.rotate(run, query, names, reason=reason, wait=wait)

        return self._call("rotate", work)

    def verify(self, password: str) -> PasswordCheck:
        """Whether ``password``, as a user reads it back, is a well-formed recovery password
        and if not, which group is wrong. Asks no source; the password is not kept."""
        from bitkey_dir.core.model import check_password

        return self._call("verify", lambda run: check_password(password), keep_sources=False)

    # -- reports ------------------------------------------------------------------------

    def audit(
        self, *, sources: Sources = (), stale_days: int | None = None, fail_on_missing: bool = False
    ) -> AuditResult:
        """Escrow coverage of directory sources (default: the config's): per computer, its
        keys and the newest one's date (``result.coverage``). Reads no password."""
        from bitkey_dir.ops import audit

        names = _names(sources)

        def work(run: Run) -> AuditResult:
            return audit.audit(run, names, stale_days=stale_days, fail_on_missing=fail_on_missing)

        return self._call("audit", work)

    def disclosed(self, *, sources: Sources = (), fail_on_valid: bool = False) -> DisclosureResult:
        """Every key the trail says was revealed, and whether it was rotated since or is
        still valid (`bitkey-dir audit --disclosed`)."""
        from bitkey_dir.ops import disclosure

        names = _names(sources)

        def work(run: Run) -> DisclosureResult:
            return disclosure.disclosed(run, names, fail_on_valid=fail_on_valid)

        return self._call("disclosed", work)

    def reads(self, *, since: str | datetime = "7d", sources: Sources = ()) -> ReadsResult:
        """Key reads the directories recorded since ``since`` (a span such as "7d" or
        "24h", a date, or a datetime; UTC when it names no zone), each matched with the
        trail."""
        from datetime import UTC

        from bitkey_dir.ops import reads

        names = _names(sources)
        text = since.isoformat() if isinstance(since, datetime) else since

        def work(run: Run) -> ReadsResult:
            start = reads.parse_since(text, datetime.now(UTC))
            return reads.reads(run, names, start)

        return self._call("reads", work)

    def diagnose(self, *, sources: Sources = ()) -> DoctorResult:
        """What `bitkey-dir doctor` checks, per source (default: every configured one):
        servers, certificates, sign-in, rights, files. ``result.exit_code`` is 0 healthy,
        3 a right missing, 4 unreachable. Opens sources of its own: it checks connecting."""
        from bitkey_dir.ops import doctor

        names = _names(sources)
        return self._call("diagnose", lambda run: doctor.diagnose(run, names), keep_sources=False)

    def trail(self, *, limit: int = 20) -> TrailListing:
        """The access trail's last ``limit`` entries, oldest first, and how many of its
        lines could not be read."""
        from bitkey_dir.ops.trail import recent

        if limit < 1:
            raise InputError(f"limit={limit}: give 1 or more")
        return self._call("trail", lambda run: recent(limit), keep_sources=False)

    def sources(self) -> list[SourceInfo]:
        """The configured sources in the config's order, as `bitkey-dir sources` lists
        them: name, type, whether searched by default, and where (never a secret)."""
        from bitkey_dir.ops.inventory import configured_sources

        return self._call("sources", configured_sources, keep_sources=False)

    # -- who may read keys -------------------------------------------------------------

    def rights(self, *, ou: str | None = None, sources: Sources = ()) -> RightsResult:
        """Who may see and read keys, as `bitkey-dir rights show`: AD below ``ou`` (default:
        the whole domain), through which ACE; Entra through which role."""
        from bitkey_dir.ops import rights

        names = _names(sources)
        return self._call("rights", lambda run: rights.show(run, names, ou), keep_sources=False)

    def grant_rights(
        self,
        principal: str,
        *,
        ou: str,
        key_packages: bool = False,
        what_if: bool = False,
        source: str | None = None,
    ) -> ChangeResult:
        """Add the ACEs a helpdesk needs on ``ou`` for ``principal`` (name@domain,
        DOMAIN\\name or a SID), as `rights grant`; ``what_if`` changes nothing."""
        return self._change_rights("grant", principal, ou, key_packages, what_if, source)

    def revoke_rights(
        self,
        principal: str,
        *,
        ou: str,
        key_packages: bool = False,
        what_if: bool = False,
        source: str | None = None,
    ) -> ChangeResult:
        """Remove exactly those ACEs (with ``key_packages``, only the key packages' one)."""
        return self._change_rights("revoke", principal, ou, key_packages, what_if, source)

    def _change_rights(self, action: Action, principal: str, ou: str, *flags: Any) -> ChangeResult:
        from bitkey_dir.core.rights import RightsRequest
        from bitkey_dir.ops import rights

        key_packages, what_if, source = flags
        request = RightsRequest(action, ou, principal, key_packages, what_if)
        work = lambda run: rights.change(run, request, source)  # noqa: E731
        return self._call(f"{action}_rights", work, keep_sources=False)

    # -- the Key ID index ---------------------------------------------------------------

    def refresh_index(
        self, *, sources: Sources = (), due_only: bool = False, how: str = "auto"
    ) -> RefreshResult:
        """Every key of ``sources`` (default: all) into the Key ID index, never a password;
        ``due_only``: those older than ``index_max_age``; ``how``: docs/COMMANDS.md."""
        from bitkey_dir.ops import index

        work = lambda run: index.refresh(run, _names(sources), due_only=due_only, how=how)  # noqa: E731
        return self._call("refresh_index", work)

    def index_status(self) -> IndexReport:
        """Each configured source's part of the Key ID index: when refreshed, how many keys."""
        from bitkey_dir.ops import index

        return self._call("index_status", index.status)

    def clear_index(self, *, sources: Sources = ()) -> list[str]:
        """Drop ``sources`` from the Key ID index (all of it when none is named); the names
        dropped."""
        from bitkey_dir.ops import index

        names = _names(sources)
        return self._call("clear_index", lambda run: index.clear(run, names), keep_sources=False)

    # -- signing in ---------------------------------------------------------------------

    def login(self, source: str, *, secret: str | None = None) -> Login:
        """Sign in to ``source`` once and keep its credential in the keyring, proved with a
        real bind or sign-in first. ``secret`` is the password or client secret; without
        it the interaction is asked (the default one asks nobody: InputError)."""
        from bitkey_dir.ops import signin

        def read_secret(wanted: Wanted) -> Secret:
            from bitkey_dir.runtime import credentials

            given = secret
            if given is None and credentials.can_prompt():
                given = credentials.ask(wanted)
            if not given:
                raise InputError(
                    f"no {credentials.noun(wanted)} for {wanted.source}: give secret=, or an "
                    "interaction that can prompt; nothing stored"
                )
            return credentials.Secret(given, "prompt")

        try:
            return self._call(
                "login", lambda run: signin.login(run, source, read_secret), keep_sources=False
            )
        finally:
            self._pool.forget()  # what is kept signed in with the credential stored before

    def logout(self, source: str) -> Logout:
        """Remove the stored password or client secret and the saved tokens of ``source``."""
        from bitkey_dir.ops import signin

        try:
            return self._call("logout", lambda run: signin.logout(run, source), keep_sources=False)
        finally:
            self._pool.forget()  # what is kept would go on signed in

    def auth_status(self, *, sources: Sources = ()) -> AuthReport:
        """Per source (default: every configured one): the account, what is stored, the
        tokens and when they expire; and the keyring in use. Never a secret."""
        from bitkey_dir.ops import signin

        names = _names(sources)
        return self._call("auth_status", lambda run: signin.status(run, names), keep_sources=False)

    # -- how each call runs -------------------------------------------------------------

    def _trail_name(self, method: str) -> str:
        """What the access trail's "command" names for a call of ``method``."""
        return f"bitkey_dir.Client.{method}"

    def _check_open(self, method: str) -> None:
        if not self._closing.alive:
            raise RuntimeError(f"this bitkey_dir.Client is closed: {method}() needs a new one")

    def _call(self, method: str, work: Callable[[Run], T], *, keep_sources: bool = True) -> T:
        """``work`` over a run of this Client's config and interaction, its sources borrowed
        from the pool (or, without ``keep_sources``, opened and closed by the operation);
        what it raises and returns in Python's terms."""
        from bitkey_dir.ops.outcome import in_python_terms
        from bitkey_dir.ops.run import Run

        self._check_open(method)
        # The trail's "command": which program called which method.
        command = (sys.argv[0] if sys.argv and sys.argv[0] else "python", self._trail_name(method))
        try:
            if not keep_sources:
                return in_python_terms(work(Run(self._config, self._interaction, command)))
            with self._pool.lend() as lending:
                run = Run(self._config, self._interaction, command, lending)
                return in_python_terms(work(run))
        except BitkeyError as exc:
            reword(exc)
            raise


def _holds_passwords() -> None:
    """Recovery passwords are about to be read into this process: no core dump from now on
    (once per process, the soft limit only; runtime/hardening.py says why)."""
    from bitkey_dir.runtime.hardening import no_core_dumps_from_now

    no_core_dumps_from_now()


def _names(sources: Sources) -> list[str]:
    """Source names from one or several; a lone string is one source, not its letters."""
    if isinstance(sources, str | os.PathLike):
        return [os.fspath(sources)]
    return [os.fspath(source) for source in sources]


def _query(key_id: str | None, computer: str | None, include_deleted: bool = False) -> Query:
    from bitkey_dir.core.model import ComputerName, KeyId, Query

    return Query(
        key_id=KeyId.parse(key_id) if key_id is not None else None,
        computer=ComputerName.parse(computer) if computer is not None else None,
        include_deleted=include_deleted,
    )
