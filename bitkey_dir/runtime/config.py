"""The TOML configuration: which sources exist, which are used by default, and their settings.

Every error names the file, the key and what was expected, on one line, because the person
reading it is fixing a config file in an editor, not reading a traceback. It quotes the bad
value only where that cannot show a secret: never the value of a key that holds or may hold
one (a password, a client secret, the user name, the client ID: secrets get pasted there),
never the user and password part of a URL, and at most 40 characters of anything else.
"""

from __future__ import annotations

import errno
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from bitkey_dir.core.env import CONFIG_ENV
from bitkey_dir.core.errors import ConfigError
from bitkey_dir.runtime import platform

APP_NAME: Final = "bitkey-dir"
CONFIG_LIMIT: Final = 1024 * 1024  # a config of sources is a few KiB; far more is a mistake
_SOURCE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TOP_LEVEL: Final = ("defaults", "keyring", "sources", "serve")
_KEYRING_KEYS: Final = ("allow_plaintext",)
_DEFAULTS_KEYS: Final = ("sources", "require_reason")

T = TypeVar("T")


def default_config_path() -> Path:
    """The per-user config file in the platform's config dir."""
    from platformdirs import user_config_path  # platformdirs is only needed when a path is asked

    return user_config_path(APP_NAME, appauthor=False) / "config.toml"


def state_dir() -> Path:
    """The per-user state folder: the access trail and the token caches live here."""
    from platformdirs import user_state_path

    return user_state_path(APP_NAME, appauthor=False)


def private_folder(folder: Path) -> Path:
    """``folder``, created if needed, that no other user may change: bitkey-dir's own folders
    (the state folder and those below it) are made mode 0700 whatever the umask, and a
    folder everybody may write to (without the sticky bit) is refused, since any user could
    put a file of theirs in place of the trail or a token cache. A folder its group may write
    to is accepted: that is how a team shares one trail.

    Raises OSError, or PermissionError naming the problem.
    """
    own = state_dir()
    ours = folder == own or folder.is_relative_to(own)
    missing = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    for created in reversed(missing):
        if ours or created == folder:
            platform.make_private_folder(created)
        else:
            created.mkdir(mode=0o700, exist_ok=True)
    if ours and folder not in missing:  # one just made is private already
        platform.keep_private(folder)
    # Group write is a deliberate share (a team's trail); write for everyone is not.
    planted = platform.others_may_plant(folder)
    if planted:
        raise PermissionError(
            errno.EPERM, f"other users may write to the folder {folder} ({planted})"
        )
    return folder


def config_path(explicit: Path | None = None) -> tuple[Path, bool]:
    """The config file to use and whether the user named it (--config or the environment)."""
    if explicit is not None:
        return explicit, True
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env), True
    return default_config_path(), False


class Settings:
    """One ``[sources.NAME]`` table, read with typed getters that fail with a precise message."""

    def __init__(self, table: Mapping[str, object], where: str, base_dir: Path) -> None:
        self._table = dict(table)
        # "FILE: sources.NAME", or "--source URL": its user and password are not repeated.
        self._where = without_userinfo(where)
        # Keys every source has, read by the config itself rather than by the source.
        self._used: set[str] = {"type", *INDEX_AGES}
        self.base_dir = base_dir

    def __contains__(self, key: str) -> bool:
        return key in self._table

    def error(self, key: str, expected: str) -> ConfigError:
        value = self._table.get(key)
        got = f", got {_describe(value, key)}" if key in self._table else ""
        return ConfigError(f"{self._where}.{key}: expected {expected}{got}")

    def item_error(self, key: str, item: object, expected: str) -> ConfigError:
        """One bad entry of a list, named: "servers: "ldaps//dc1": expected …"."""
        return ConfigError(f"{self._where}.{key}: {_describe(item, key)}: expected {expected}")

    def _get(self, key: str, kind: type[T], expected: str, default: T) -> T:
        self._used.add(key)
        if key not in self._table:
            return default
        value = self._table[key]
        # bool is an int in Python; a config that says `timeout = true` is still wrong.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, expected)
        return value

    def string(self, key: str, default: str | None = None) -> str | None:
        return self._get(key, str, "a string", default)

    def required_string(self, key: str, expected: str = "a string") -> str:
        value = self.string(key)
        if value is None or not value.strip():
            raise ConfigError(f"{self._where}: missing key '{key}' ({expected})")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return self._get(key, bool, "true or false", default)

    def integer(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        expected = (
            f"a whole number >= {minimum}"
            if maximum is None
            else f"a whole number from {minimum} to {maximum}"
        )
        value = self._get(key, int, expected, default)
        if value < minimum or (maximum is not None and value > maximum):
            raise self.error(key, expected)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        expected = "one of " + ", ".join(f'"{c}"' for c in choices)
        value = self._get(key, str, expected, default)
        if value not in choices:
            raise self.error(key, expected)
        return value

    def string_list(self, key: str, *, allow_single: bool = True) -> list[str]:
        """A list of strings; a single string is accepted where one item is the common case."""
        self._used.add(key)
        value = self._table.get(key, [])
        if allow_single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "a list of non-empty strings")
        return list(value)

    def existing_file(self, key: str, what: str) -> Path | None:
        """A path to an existing regular file (relative: from the config file's folder), or
        None when the key is absent; checked now, so that a typo is a config error, not a
        failure in the middle of a lookup."""
        from bitkey_dir.runtime.small_files import NotReadable, check_regular_file

        text = self.string(key)
        if text is None:
            return None
        path = self.base_dir / Path(text).expanduser()
        try:
            check_regular_file(path, what=what)
        except NotReadable as exc:
            raise ConfigError(f"{self._where}.{key}: {exc.message}") from None
        return path

    def path_list(self, key: str) -> list[Path]:
        """Paths, with ``~`` expanded and relative paths taken from the config file's folder."""
        return [self.base_dir / Path(p).expanduser() for p in self.string_list(key)]

    def value(self, key: str) -> object:
        """The raw value (None when absent), for a key that takes more than one type; the
        caller checks it and raises ``error(key, ...)``."""
        self._used.add(key)
        return self._table.get(key)

    def tables(self, key: str) -> dict[str, Settings]:
        """Named sub-tables, ``[sources.NAME.KEY."name"]``, each read with the same getters;
        their errors name the whole path (``sources.corp.domains."child.corp".servers``)."""
        self._used.add(key)
        value = self._table.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise self.error(key, f'tables such as [{self._where.split(": ")[-1]}.{key}."name"]')
        return {
            name: Settings(table, f'{self._where}.{key}."{name}"', self.base_dir)
            for name, table in value.items()
        }

    def reject_unknown(self) -> None:
        """Call after reading every known key: a typo such as `sever` must not pass silently."""
        unknown = sorted(set(self._table) - self._used)
        if unknown:
            known = ", ".join(sorted(self._used))
            raise ConfigError(f"{self._where}: unknown key '{unknown[0]}' (known keys: {known})")


@dataclass(frozen=True)
class SourceConfig:
    name: str
    type: str
    settings: Settings
    index_max_age: float | None = None  # seconds; the Key ID index is refreshed when older
    # Seconds between refreshes that list every device's keys, and the whole key listing
    # (sources that list keys by device: the others always list everything).
    index_devices_age: float = 3600.0
    index_full_age: float = 86400.0


@dataclass(frozen=True)
class Config:
    path: Path
    exists: bool
    default_sources: tuple[str, ...] = ()
    require_reason: bool = False
    allow_plaintext_keyring: bool = False
    sources: Mapping[str, SourceConfig] = field(default_factory=dict)
    # [serve], the helpdesk portal's table: read by bitkey_dir/portal/settings.py only.
    serve: Mapping[str, object] = field(default_factory=dict)

    @property
    def searched(self) -> tuple[str, ...]:
        """The sources a command asks when none is named: ``[defaults] sources``, else the
        one source configured. With several and no defaults, none: every command then says
        so in the same words (sources/registry.py), rather than guessing which was meant."""
        if self.default_sources:
            return self.default_sources
        return tuple(self.sources) if len(self.sources) == 1 else ()


# Keys whose value is, or is often by mistake, a secret: a password typed as the user name
# ("admin:Pa55"), a client secret pasted as the client ID.
_SECRET_KEY: Final = re.compile(
    r"pass|pwd|secret|token|credential|private|cookie|^user$|^username$|^client_id$", re.I
)
# Up to the last "@": a password typed into a URL may hold "/", "?", "#" or "@" itself.
# A scheme starts where no scheme character precedes it: without the look-behind, every
# position of a long host name starts a scan to its end (100,000 characters: 15 seconds).
_USERINFO: Final = re.compile(r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)\S*@")
_SHOWN: Final = 40
_NOT_SHOWN: Final = "a value not shown here (it may be a secret)"
_SYMBOLS: Final = frozenset("!#$%&*+=?^~|;<>(){}[]'\"`,@")


def _password_like(text: str) -> bool:
    """A word of 8 or more characters with letters, digits and symbols, such as people
    choose for passwords (a URL's are taken out first): shown nowhere, in whatever key."""
    if "://" in text or len(text) < 8 or any(c.isspace() for c in text):
        return False
    return (
        any(c.isalpha() for c in text)
        and any(c.isdigit() for c in text)
        and any(c in _SYMBOLS for c in text)
    )


def without_userinfo(text: str) -> str:
    """``text`` with the user and password part of any URL in it left out."""
    return _USERINFO.sub(r"\g<scheme>…@", text)


def _describe(value: object, key: str = "") -> str:
    """``value`` for an error message, never a secret (see the module's doc)."""
    if isinstance(value, str | int | float) and _SECRET_KEY.search(key):
        return _NOT_SHOWN
    if isinstance(value, str):
        redacted = without_userinfo(value)
        shown = redacted if len(redacted) <= _SHOWN else redacted[:_SHOWN] + "…"
        return _NOT_SHOWN if _password_like(redacted) else f'"{shown}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    kinds = {dict: "a table", list: "a list"}
    return next((name for kind, name in kinds.items() if isinstance(value, kind)), repr(value))


def load_config(explicit: Path | None = None) -> Config:
    """Read and validate the config; a missing default file means an empty configuration."""
    from bitkey_dir.runtime.small_files import NotReadable, read_small_file

    path, named = config_path(explicit)
    try:
        raw = read_small_file(path, limit=CONFIG_LIMIT, what="the config file", pipes=True)
    except NotReadable as exc:
        if exc.problem == "missing":
            if named:
                raise ConfigError(f"{path}: config file not found") from None
            return Config(path=path, exists=False)
        if exc.problem == "folder":
            raise ConfigError(f"{path}: is a folder, expected a TOML config file") from None
        if exc.problem == "special":
            raise ConfigError(f"{path}: not a regular file, expected a TOML config file") from None
        if exc.problem == "silent":
            raise ConfigError(exc.message) from None
        if exc.problem == "too big":
            limit = CONFIG_LIMIT // 1024
            raise ConfigError(f"{path}: larger than {limit} KiB, not a config file") from None
        raise ConfigError(f"{path}: cannot read the config file ({exc.detail})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    # A config from a pipe (--config <(…)) has no folder of its own: its relative paths are
    # taken from the current one.
    return parse_config(data, path, None if path.is_file() else Path())


def parse_config(data: Mapping[str, object], path: Path, base_dir: Path | None = None) -> Config:
    """The config ``data`` read from ``path``; relative paths in it are taken from
    ``base_dir`` (default: the file's folder)."""
    for key in data:
        if key not in _TOP_LEVEL:
            raise ConfigError(
                f"{path}: unknown top-level key '{key}' "
                "(expected [defaults], [keyring], [serve] and [sources.NAME])"
            )
    sources = _parse_sources(
        data.get("sources", {}), path, path.parent if base_dir is None else base_dir
    )
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: defaults: expected a table [defaults]")
    for key in defaults:
        if key not in _DEFAULTS_KEYS:
            raise ConfigError(
                f"{path}: defaults.{key}: unknown key (known keys: {', '.join(_DEFAULTS_KEYS)})"
            )
    names = defaults.get("sources", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: defaults.sources: expected a list of source names")
    for name in names:
        if name not in sources:
            known = ", ".join(sources) or "none are defined"
            raise ConfigError(
                f"{path}: defaults.sources: no [sources.{name}] table (defined: {known})"
            )
    require_reason = defaults.get("require_reason", False)
    if not isinstance(require_reason, bool):
        raise ConfigError(f"{path}: defaults.require_reason: expected true or false")
    serve = data.get("serve", {})
    if not isinstance(serve, dict):
        raise ConfigError(f"{path}: serve: expected a table [serve]")
    return Config(
        path=path,
        exists=True,
        default_sources=tuple(names),
        require_reason=require_reason,
        allow_plaintext_keyring=_allow_plaintext(data.get("keyring", {}), path),
        sources=sources,
        serve=serve,
    )


def _allow_plaintext(table: object, path: Path) -> bool:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: keyring: expected a table [keyring]")
    for key in table:
        if key not in _KEYRING_KEYS:
            raise ConfigError(
                f"{path}: keyring.{key}: unknown key (known keys: {', '.join(_KEYRING_KEYS)})"
            )
    allow = table.get("allow_plaintext", False)
    if not isinstance(allow, bool):
        raise ConfigError(f"{path}: keyring.allow_plaintext: expected true or false")
    return allow


def _parse_sources(tables: object, path: Path, base_dir: Path) -> dict[str, SourceConfig]:
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: sources: expected tables such as [sources.corp]")
    sources: dict[str, SourceConfig] = {}
    for name, table in tables.items():
        where = f"{path}: sources.{name}"
        if not _SOURCE_NAME.fullmatch(name):
            raise ConfigError(
                f"{where}: source names use letters, digits, '.', '_' and '-' (at most 64)"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table [sources.{name}]")
        source_type = table.get("type")
        if not isinstance(source_type, str) or not source_type:
            raise ConfigError(f'{where}: missing key \'type\' (expected "ad", "entra" or "file")')
        ages = {key: _duration(table.get(key), f"{where}.{key}") for key in INDEX_AGES}
        settings = Settings(table, where, base_dir)
        sources[name] = SourceConfig(
            name,
            source_type,
            settings,
            ages["index_max_age"],
            index_devices_age=_or(ages["index_devices_age"], SourceConfig.index_devices_age),
            index_full_age=_or(ages["index_full_age"], SourceConfig.index_full_age),
        )
    return sources


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


INDEX_AGES: Final = ("index_max_age", "index_devices_age", "index_full_age")
_DURATION: Final = re.compile(r"([0-9]{1,7})\s*([smhd]?)")
_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_LONGEST: Final = 366 * 86400


def _duration(value: object, where: str) -> float | None:
    """A duration such as 3600, "90m", "12h" or "7d" in seconds (None when not given)."""
    if value is None:
        return None
    expected = 'a duration such as "30m", "12h" or "7d" (or seconds), at most a year'
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected {expected}, got {_describe(value)}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip().lower())):
        seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        raise ConfigError(f"{where}: expected {expected}, got {_describe(value)}")
    if not 1 <= seconds <= _LONGEST:
        raise ConfigError(f"{where}: expected {expected}, got {_describe(value)}")
    return float(seconds)
