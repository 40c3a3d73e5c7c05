"""Keys in files: folders of saved key files, manage-bde output, and bitkey-dir's own output.

Config (``type = "file"``):

``path``
    A file or folder, or a list of them; folders are read recursively. Relative paths are
    taken from the config file's folder.
``max_file_size``
    Files larger than this many bytes are skipped with a warning (default 64 MiB).
``computer_from``
    Where the computer name of a Windows key file or manage-bde output comes from, since the
    files themselves do not say: ``"none"`` (default), ``"folder"`` (the parent folder's name,
    for shares laid out as ``PC-0042/BitLocker Recovery Key ….TXT``) or ``"filename"`` (the
    name without extension, as ``manage-bde … > %COMPUTERNAME%.txt`` scripts write it).
    JSON and CSV records carry their own computer name.
``identity_file``
    age secret keys or an SSH private key that decrypt age-encrypted exports (also
    ``find --identity FILE``); exports encrypted with a passphrase take it from
    ``BITKEY_DIR_EXPORT_PASSPHRASE`` or a prompt. The plaintext stays in memory.

Every unreadable, binary, oversized or malformed file gives one warning and is skipped. A
lookup by Key ID parses only the files that contain the ID's first 8 digits, so it warns about
malformed files only when they could hold the key asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

from bitkey_dir.core.errors import AuthError, SourceError
from bitkey_dir.core.model import Query, RecoveryKey
from bitkey_dir.runtime.config import Settings
from bitkey_dir.runtime.encryption import is_encrypted
from bitkey_dir.sources.base import Warn
from bitkey_dir.sources.files import walk
from bitkey_dir.sources.files.parsers import NotText, Parsed, parse_bytes

if TYPE_CHECKING:
    from bitkey_dir.core.reports import Check

DEFAULT_MAX_FILE_SIZE: Final = 64 * 1024 * 1024
COMPUTER_FROM: Final = ("none", "folder", "filename")
_RECORD_KINDS: Final = frozenset({"json", "csv"})


def _size(n: int) -> str:
    return f"{n / 1024**2:g} MiB" if n >= 1024**2 else f"{n} bytes"


@dataclass
class _Unlocking:
    """What decrypting exports takes, loaded or asked for once in a source's life."""

    identities: list[Any] | None = None  # pyrage identities from identity_file(s)
    passphrase: str | None = field(default=None, repr=False)
    asked: bool = False  # for the passphrase: the environment, or the person, once
    origin: str = "typed"  # where the passphrase came from, to say which one did not fit


@dataclass
class _Troubles:
    """Files that might hold keys but could not be used: reported once the answer is known,
    as warnings beside keys that were found, else as the failure they are."""

    undecrypted: list[tuple[str, str]] = field(default_factory=list)  # path, why
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # path, why

    def cannot_read(self, path: str, why: str) -> None:
        self.unreadable.append((path, why))

    def take(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        taken = (self.undecrypted, self.unreadable)
        self.undecrypted, self.unreadable = [], []
        return taken


@dataclass(frozen=True)
class FileSource:
    """Reads every file below the configured paths on each query; nothing is cached."""

    type_name: ClassVar[str] = "file"

    name: str
    paths: tuple[Path, ...]
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    computer_from: str = "none"
    identity_files: tuple[Path, ...] = ()
    _unlocking: _Unlocking = field(default_factory=_Unlocking, repr=False, compare=False)
    _troubles: _Troubles = field(default_factory=_Troubles, repr=False, compare=False)

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> FileSource:
        paths = settings.path_list("path")
        if not paths:
            raise settings.error("path", "a file or folder, or a list of them")
        source = cls(
            name=name,
            paths=tuple(paths),
            max_file_size=settings.integer("max_file_size", DEFAULT_MAX_FILE_SIZE, minimum=1),
            computer_from=settings.choice("computer_from", COMPUTER_FROM, "none"),
            identity_files=tuple(settings.path_list("identity_file")),
        )
        settings.reject_unknown()
        return source

    def describe(self) -> str:
        return ", ".join(str(p) for p in self.paths)

    def with_identities(self, identities: Sequence[Path]) -> FileSource:
        """``find --identity``: also try these keys on encrypted exports."""
        return replace(
            self, identity_files=(*self.identity_files, *identities), _unlocking=_Unlocking()
        )

    def folder_holding(self, path: Path) -> Path | None:
        """The configured file or folder that is or holds ``path``, else None."""
        target = path.expanduser().resolve()
        for root in self.paths:
            folder = root.expanduser().resolve()
            if target == folder or target.is_relative_to(folder):
                return root
        return None

    def close(self) -> None:
        """Nothing stays open between files."""

    def diagnose(self, warn: Warn) -> list[Check]:
        """Each path readable, the key files found, the files skipped and why."""
        from bitkey_dir.sources.files import diagnosis

        return diagnosis.diagnose(
            self.paths, max_file_size=self.max_file_size, identity_files=bool(self.identity_files)
        )

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        # A file without the first 8 digits of the Key ID cannot hold the key: skip parsing it.
        # (Every way of writing the ID, dashed or not, has those 8 digits in a row.)
        wanted = (
            re.compile(re.escape(query.key_id.short), re.IGNORECASE)
            if query.key_id is not None
            else None
        )
        found: list[RecoveryKey] = []
        for path, parsed in self._parse_all(warn, wanted):
            keys = self._place(path, parsed)
            found.extend(key for key in keys if query.matches(key))
            for damaged, problem in parsed.damaged:
                placed = self._place_one(path, parsed, damaged)
                if query.matches(placed):
                    warn(f"{path}: Key ID {placed.key_id}: {problem}; not used")
        self._settle(warn, strict=not found)
        return found

    def _settle(self, warn: Warn, *, strict: bool) -> None:
        """Say which files could not be used. Beside keys that were found they are warnings;
        otherwise the answer cannot be trusted: a key may be in one of them, so that is an
        error (3 for an export nothing could decrypt, 4 for a file that cannot be read), not
        "not found", and an export must not silently miss their keys."""
        undecrypted, unreadable = self._troubles.take()
        if not strict:
            for path, why in undecrypted:
                warn(f"{path}: skipped, {why}")
            for path, why in unreadable:
                warn(f"{path}: skipped, cannot read it ({why})")
            return
        if undecrypted and unreadable:
            warn(_unreadable(self._named(unreadable)))
        if undecrypted:
            raise AuthError(_undecrypted(self._named(undecrypted)))
        if unreadable:
            raise SourceError(_unreadable(self._named(unreadable)))

    def _named(self, troubles: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The paths as a person reads them after "NAME: ": the source's own path (a file
        given with --source) is already said, so it is "this file"."""
        return [("it" if path == self.name else path, why) for path, why in troubles]

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        for path, parsed in self._parse_all(warn):
            yield from self._place(path, parsed)
            for damaged, problem in parsed.damaged:
                warn(f"{path}: Key ID {damaged.key_id}: {problem}; not used")
        self._settle(warn, strict=True)  # an export of a backup must not silently miss keys

    def _place(self, path: str, parsed: Parsed) -> list[RecoveryKey]:
        return [self._place_one(path, parsed, key) for key in parsed.keys]

    def _place_one(self, path: str, parsed: Parsed, key: RecoveryKey) -> RecoveryKey:
        if parsed.kind in _RECORD_KINDS:
            # An export already says where the key came from; keep that.
            return replace(key, source=self.name, location=key.location or path)
        location = f"{path} ({key.location})" if key.location else path
        computer = key.computer
        if computer is None and self.computer_from == "folder":
            computer = os.path.basename(os.path.dirname(path)) or None
        elif computer is None and self.computer_from == "filename":
            computer = os.path.splitext(os.path.basename(path))[0] or None
        return replace(key, source=self.name, location=location, computer=computer)

    def _parse_all(
        self, warn: Warn, wanted: re.Pattern[str] | None = None
    ) -> Iterator[tuple[str, Parsed]]:
        for path in walk.files(self.paths, warn, self._troubles.cannot_read):
            parsed = self._parse_file(path, warn, wanted)
            if parsed is None:
                continue
            for problem in parsed.problems:
                warn(f"{path}: {problem}")
            yield path, parsed

    def _parse_file(self, path: str, warn: Warn, wanted: re.Pattern[str] | None) -> Parsed | None:
        try:
            data = walk.read(path, self.max_file_size)
        except walk.NotRegular:
            warn(f"{path}: skipped, not a regular file")
            return None
        except walk.TooBig:
            warn(
                f"{path}: skipped, larger than {_size(self.max_file_size)} "
                f"(raise max_file_size in the source's config to read it)"
            )
            return None
        except OSError as exc:
            self._troubles.cannot_read(path, exc.strerror or type(exc).__name__)
            return None
        if is_encrypted(data):
            try:
                data = self._decrypt(data)
            except AuthError as exc:  # a bad identity file itself is bad input: it propagates
                self._troubles.undecrypted.append((path, exc.message))
                return None
        try:
            return parse_bytes(data, wanted)
        except NotText as exc:
            hint = " (a .BEK startup key is not a recovery password)" if _is_bek(path) else ""
            warn(f"{path}: skipped, {exc}{hint}")
            return None

    def _decrypt(self, data: bytes) -> bytes:
        from bitkey_dir.runtime import encryption

        unlocking = self._unlocking
        if unlocking.identities is None:
            loaded: list[Any] = []
            for path in self.identity_files:
                loaded += encryption.load_identities(path)
            unlocking.identities = loaded
        passphrase = None
        if encryption.uses_passphrase(data):  # never asked for a file only a key opens
            if not unlocking.asked:
                from_env = os.environ.get(encryption.PASSPHRASE_ENV)
                unlocking.passphrase = encryption.passphrase_from_env_or_prompt(confirm=False)
                unlocking.origin = f"in {encryption.PASSPHRASE_ENV}" if from_env else "typed"
                unlocking.asked = True
            passphrase = unlocking.passphrase
        return encryption.decrypt(data, unlocking.identities, passphrase, origin=unlocking.origin)


def _undecrypted(troubles: list[tuple[str, str]]) -> str:
    (path, why), more = troubles[0], len(troubles) - 1
    if not more:
        return f"{'' if path == 'it' else path + ' '}could not be decrypted: {why}"
    return f"{len(troubles)} encrypted exports could not be decrypted ({path}: {why}; {more} more)"


def _unreadable(troubles: list[tuple[str, str]]) -> str:
    (path, why), more = troubles[0], len(troubles) - 1
    if not more:
        return f"cannot read {path} ({why}): a key in it would be missed"
    return f"cannot read {len(troubles)} files or folders ({path}: {why}; {more} more)"


def _is_bek(path: str) -> bool:
    return path.lower().endswith(".bek")
