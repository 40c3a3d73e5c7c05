"""Find source implementations by type name, importing only the one that is asked for.

Built-in types live in this package. Third-party types register under the entry-point group
``bitkey_dir.sources.v1`` (``mytype = "my_package.module:MySource"``), which names the version
of the contract (docs/SOURCES.md) they were written for; their packages are imported only when
a configured source names that type, so a broken or slow plugin costs nothing to users who do
not use it.

Plugins written before the groups had versions register under ``bitkey_dir.sources``. That
group still works, the same way, but is asked second: a type named in both is the versioned
group's (a plugin that also supports older bitkey-dir releases registers its class in both),
and one found only in the old group loads with a DeprecationWarning, which Python shows to
the plugin's own tests and hides from people running the command line.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

from bitkey_dir.core.errors import ConfigError, InputError
from bitkey_dir.core.model import shown
from bitkey_dir.runtime.config import Config, Settings, without_userinfo

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from bitkey_dir.sources.base import Source, SourceFactory

#: The group plugins register under: version 1 of the source contract.
ENTRY_POINT_GROUP: Final = "bitkey_dir.sources.v1"
#: The group of plugins written before the contract had a version; asked after the other.
LEGACY_ENTRY_POINT_GROUP: Final = "bitkey_dir.sources"
BUILTIN_TYPES: Final = {
    "ad": "bitkey_dir.sources.ad.source:ADSource",
    "entra": "bitkey_dir.sources.entra.source:EntraSource",
    "file": "bitkey_dir.sources.files.source:FileSource",
}


def _import(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def load_source_type(type_name: str, where: str) -> SourceFactory:
    """The factory for ``type_name``; ``where`` says which config table asked, for errors."""
    if type_name in BUILTIN_TYPES:
        return cast("SourceFactory", _import(BUILTIN_TYPES[type_name]))
    entry = _registered(type_name)
    if entry is None:
        known = ", ".join(f'"{t}"' for t in BUILTIN_TYPES)
        raise ConfigError(
            f"{where}.type: unknown source type {shown(type_name)} (built in: {known}; "
            f"plugins register under the entry-point group {ENTRY_POINT_GROUP})"
        )
    try:
        factory = entry.load()
    except Exception as exc:  # a plugin's import error must not become a traceback
        raise ConfigError(
            f"{where}.type: the plugin for {shown(type_name)} ({entry.value}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not callable(getattr(factory, "from_settings", None)):
        raise ConfigError(
            f"{where}.type: the plugin for {shown(type_name)} ({entry.value}) has no "
            "from_settings(name, settings) method"
        )
    return cast("SourceFactory", factory)


def _registered(type_name: str) -> EntryPoint | None:
    """The installed entry point for ``type_name``: the versioned group's, else the old
    group's (with a DeprecationWarning for the plugin's author), else None."""
    from importlib.metadata import entry_points  # scanning installed packages is slow: only here

    installed = entry_points()  # one scan serves both groups
    found = installed.select(group=ENTRY_POINT_GROUP, name=type_name)
    if found:
        return next(iter(found))
    found = installed.select(group=LEGACY_ENTRY_POINT_GROUP, name=type_name)
    if not found:
        return None
    entry = next(iter(found))
    plugin = entry.dist.name if entry.dist is not None else entry.value
    warnings.warn(
        f"the source type {shown(type_name)} ({plugin}) is registered under the entry-point "
        f"group {LEGACY_ENTRY_POINT_GROUP}; register it under {ENTRY_POINT_GROUP}, the group "
        "of the contract it is tested against",
        DeprecationWarning,
        stacklevel=3,
    )
    return entry


def open_source(config: Config, spec: str) -> Source:
    """A source named in the config, one part of one (``NAME/PART``: a tenant), or given
    ad hoc: a path to key files or an export, or an ldaps:// URL."""
    whole, _, part = spec.partition("/")
    if part and whole in config.sources and not Path(spec).exists():
        return _part(open_source(config, whole), spec)
    if spec in config.sources:
        source_config = config.sources[spec]
        where = f"{config.path}: sources.{spec}"
        factory = load_source_type(source_config.type, where)
        return factory.from_settings(spec, source_config.settings)
    if spec.lower().startswith(("ldaps://", "ldap://")):
        from bitkey_dir.sources.ad.source import ADSource

        if without_userinfo(spec) != spec:
            # Said here, without the part that may hold a password: never repeated back.
            raise InputError(
                f"--source {without_userinfo(spec)}: expected a URL with only a scheme, a host "
                "and an optional port (the account and its password are asked for apart)"
            )

        return ADSource.from_url(spec)
    path = Path(spec).expanduser()
    if spec and path.exists():
        from bitkey_dir.sources.files.source import FileSource

        return FileSource.from_settings(
            spec, Settings({"type": "file", "path": [str(path)]}, f"--source {spec}", Path())
        )
    configured = ", ".join(config.sources) or f"none configured in {config.path}"
    raise InputError(
        f"unknown source {shown(spec)}: not a configured source name ({configured}) "
        "and not an existing file or folder or an ldaps:// URL"
    )


def open_sources(config: Config, specs: list[str]) -> list[Source]:
    """The sources to ask: those given with --source, else the configured defaults; a
    source with parts (tenants) is its parts."""
    from bitkey_dir.sources.base import HasParts

    chosen = specs or list(config.searched)
    if not chosen:
        raise no_source(config)
    unique = list(dict.fromkeys(chosen))
    opened: list[Source] = []
    for spec in unique:
        source = open_source(config, spec)
        opened += source.parts() if isinstance(source, HasParts) else [source]
    return opened


def no_source(config: Config) -> InputError:
    """What every command says when no source is named and the config names no default:
    the same words whichever command it is (one source configured is the default)."""
    names = list(config.sources)
    if not names:
        return InputError(
            "no source to search: give --source PATH|NAME, or configure one in "
            f"{config.path} ([sources.NAME])"
        )
    listed = ", ".join(shown(name) for name in names[:5]) + (", …" if len(names) > 5 else "")
    return InputError(
        f"no source to search: give --source PATH|NAME, or list default sources in "
        f"{config.path} ([defaults] sources = [...]); it configures {len(names)} sources "
        f"({listed}) and names none as the default"
    )


def _part(source: Source, spec: str) -> Source:
    from bitkey_dir.sources.base import HasParts

    parts = source.parts() if isinstance(source, HasParts) else []
    wanted = [part for part in parts if part.name.lower() == spec.lower()]
    if not wanted:
        source.close()
        names = ", ".join(part.name for part in parts) or f"{source.name} has no parts"
        raise InputError(f"unknown source {shown(spec)} (its parts: {names})")
    for part in parts:
        if part is not wanted[0]:
            part.close()
    return wanted[0]
