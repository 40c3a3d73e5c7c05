"""The configured sources, each one's settings checked by building it."""

from __future__ import annotations

from dataclasses import dataclass

from bitkey_dir.ops.pool import release
from bitkey_dir.ops.run import Run


@dataclass(frozen=True)
class SourceInfo:
    name: str
    type: str
    default: bool  # searched when no source is named
    where: str  # the source's own one-line description, never a secret


def configured_sources(run: Run) -> list[SourceInfo]:
    """Every ``[sources.NAME]`` table, in the config's order; a bad one raises ConfigError."""
    from bitkey_dir.sources import registry

    config = run.config
    infos = []
    with run.active():
        for name, source_config in config.sources.items():
            source = registry.open_source(config, name)
            try:
                where = source.describe()
            finally:
                release(source)
            infos.append(SourceInfo(name, source_config.type, name in config.searched, where))
    return infos
