"""ops/pool.py: what a Run borrows from a pool goes back when the operation ends, and is closed
instead when it failed, sat idle too long, or sign-in changed. Without a pool a Run opens and
closes its sources as it always has."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import KeyId, Query
from bitkey_dir.ops import lookup
from bitkey_dir.ops.pool import SourcePool
from bitkey_dir.ops.run import Run
from bitkey_dir.runtime.config import load_config
from tests.conftest import EXAMPLES
from tests.library import stand_ins
from tests.library.stand_ins import KNOWN_ID, Ledger

QUERY = Query(key_id=KeyId.parse(KNOWN_ID[:8]))


def find(pool: SourcePool, *sources: str) -> list[str]:
    with pool.lend() as lending:
        result = lookup.find(Run(pool.config, pool=lending), QUERY, sources, use_index=False)
    return [status.status for status in result.sources]


def test_without_a_pool_each_operation_opens_and_closes(
    stand_in_config: Path, ledger: Ledger
) -> None:
    run = Run(load_config(stand_in_config))
    for _ in range(2):
        lookup.find(run, QUERY, ["one"], use_index=False)
    assert [(source.asked, source.closed) for source in ledger.opened] == [(1, 1), (1, 1)]


def test_a_lent_source_goes_back_at_the_end_of_the_operation(
    stand_in_config: Path, ledger: Ledger
) -> None:
    pool = SourcePool(load_config(stand_in_config))
    assert find(pool, "one") == ["ok"]
    assert find(pool, "one") == ["ok"]
    (one,) = ledger.opened
    assert (one.asked, one.closed, pool.held()) == (2, 0, 1)
    assert "close" not in vars(one)  # not lent: its own close again
    pool.close()
    assert (one.closed, pool.held()) == (1, 0)
    with pytest.raises(RuntimeError, match="closed"):
        find(pool, "one")


def test_a_source_idle_too_long_is_closed_and_another_opened(
    stand_in_config: Path, ledger: Ledger
) -> None:
    pool = SourcePool(load_config(stand_in_config), keep_idle=0.0)
    find(pool, "one")
    find(pool, "one")
    first, second = ledger.opened
    assert (first.closed, second.closed) == (1, 0)
    pool.close()


def test_after_a_sign_in_change_nothing_kept_is_reused(
    stand_in_config: Path, ledger: Ledger
) -> None:
    pool = SourcePool(load_config(stand_in_config))
    find(pool, "one")
    with pool.lend() as lending:
        (lent,) = Run(pool.config, pool=lending).open(["one"])
        pool.forget()  # while lent: closed when it comes back
        assert ledger.opened[0].closed == 0
    assert ledger.opened[0].closed == 1
    find(pool, "one")
    assert [source.closed for source in ledger.opened] == [1, 0]
    pool.close()
    assert lent is ledger.opened[0]


def test_a_source_lent_when_the_pool_closes_is_closed_when_it_comes_back(
    stand_in_config: Path, ledger: Ledger
) -> None:
    pool = SourcePool(load_config(stand_in_config))
    with pool.lend() as lending:
        Run(pool.config, pool=lending).open_one("one")
        pool.close()
        assert ledger.opened[0].closed == 0  # still in use
    assert ledger.opened[0].closed == 1


def test_sources_are_the_defaults_unless_named(stand_in_config: Path) -> None:
    pool = SourcePool(load_config(stand_in_config))
    with pool.lend() as lending:
        run = Run(pool.config, pool=lending)
        assert [source.name for source in run.open([])] == ["one"]
        assert [source.name for source in run.open(["two", "two", "parted"])] == [
            "two",
            "parted/a",
            "parted/b",
        ]
    pool.close()
    empty = stand_ins.config_file(stand_in_config.parent, defaults=())
    pool = SourcePool(load_config(empty))
    with pytest.raises(InputError, match="no source to search"), pool.lend() as lending:
        Run(pool.config, pool=lending).open([])
    pool.close()


def test_the_only_configured_source_is_lent_when_none_is_named(tmp_path: Path) -> None:
    path = tmp_path / "one.toml"
    path.write_text(f'[sources.samples]\ntype = "file"\npath = "{EXAMPLES / "keys"}"\n')
    pool = SourcePool(load_config(path))
    with pool.lend() as lending:
        assert [source.name for source in Run(pool.config, pool=lending).open([])] == ["samples"]
    pool.close()
