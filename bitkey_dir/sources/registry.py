"""Find source implementations by type name, importing only the one that is asked for.

Built-in types live in this package. Third-party types register under the entry-point group
``bitkey_dir.sources`` (``mytype = "my_package.module:MySource"``); their packages are imported
only when a configured source names that type, so a broken or slow plugin costs nothing to
users who do not use it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

from bitkey_dir.core.errors import ConfigError, InputError
from bitkey_dir.core.model import shown
from bitkey_dir.runtime.config import Config, Settings

if TYPE_CHECKING:
    from bitkey_dir.sources.base import Source, SourceFactory

ENTRY_POINT_GROUP: Final = "bitkey_dir.sources"
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
    from importlib.metadata import entry_points  # scanning installed packages is slow: only here

    found = entry_points(group=ENTRY_POINT_GROUP, name=type_name)
    if not found:
        known = ", ".join(f'"{t}"' for t in BUILTIN_TYPES)
        raise ConfigError(
            f"{where}.type: unknown source type {shown(type_name)} (built in: {known}; "
            f"plugins register under the entry-point group {ENTRY_POINT_GROUP})"
        )
    entry = next(iter(found))
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

    chosen = specs or list(config.default_sources)
    if not chosen:
        raise InputError(
            "no source to search: give --source PATH|NAME, or list default sources in "
            f"{config.path} ([defaults] sources = [...])"
        )
    unique = list(dict.fromkeys(chosen))
    opened: list[Source] = []
    for spec in unique:
        source = open_source(config, spec)
        opened += source.parts() if isinstance(source, HasParts) else [source]
    return opened


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
