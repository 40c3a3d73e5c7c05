"""bitkey_dir.Client: every command as a method, sources kept open between calls and never shared
between threads, errors in Python's terms, and the same trail and policy as the command line."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import bitkey_dir
from bitkey_dir import BitkeyError, Client, ExitCode, KeyId, RecoveryKey, api
from bitkey_dir.core.errors import InputError
from bitkey_dir.runtime.config import load_config
from tests.command_line import invoke, trail_entries
from tests.conftest import EXAMPLES, ROOT
from tests.library import stand_ins
from tests.library.stand_ins import KNOWN_ID, KNOWN_PASSWORD, Ledger

KEYS = EXAMPLES / "keys"
THREADS = 8


def samples_config(folder: Path, *, require_reason: bool = False) -> Path:
    path = folder / "samples.toml"
    path.write_text(
        f'[defaults]\nsources = ["samples"]\nrequire_reason = {str(require_reason).lower()}\n'
        f'[sources.samples]\ntype = "file"\npath = "{KEYS}"\n',
        encoding="utf-8",
    )
    return path


# -- the package ------------------------------------------------------------------------------


def test_the_package_offers_the_client_and_its_values() -> None:
    from bitkey_dir import client
    from bitkey_dir.core import errors, model

    assert bitkey_dir.Client is client.Client
    assert (bitkey_dir.RecoveryKey, bitkey_dir.KeyId) == (model.RecoveryKey, model.KeyId)
    assert (bitkey_dir.BitkeyError, bitkey_dir.ExitCode) == (errors.BitkeyError, errors.ExitCode)
    assert set(bitkey_dir.__all__) >= {"Client", "RecoveryKey", "KeyId", "BitkeyError"}
    assert (RecoveryKey, KeyId, ExitCode.AUTH) == (model.RecoveryKey, model.KeyId, 3)


def test_importing_the_package_imports_none_of_the_library() -> None:
    code = "import sys, bitkey_dir; print(sorted(m for m in sys.modules if m[:10] == 'bitkey_dir'))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "['bitkey_dir']"


# -- calls ------------------------------------------------------------------------------------


def test_find_writes_the_trail_line_the_api_writes_naming_the_method(trail_file: Path) -> None:
    api.find_keys(key_id="063EA4E1", sources=[str(KEYS)], reason="INC-1")
    (by_api,) = trail_entries()
    trail_file.unlink()
    with Client() as client:
        result = client.find(key_id="063EA4E1", sources=[KEYS], reason="INC-1")
    (by_client,) = trail_entries()
    assert [str(key.key_id) for key in result.keys] == [KNOWN_ID]
    assert result.exit_code == ExitCode.FOUND
    assert by_api["command"][1] == "bitkey_dir.api.find_keys"
    assert by_client["command"][1] == "bitkey_dir.Client.find"
    drop = ("time", "command")
    assert {k: v for k, v in by_client.items() if k not in drop} == {
        k: v for k, v in by_api.items() if k not in drop
    }


@pytest.mark.parametrize("kind", ["str", "path", "parsed", "environment"])
def test_config_is_a_str_a_path_a_parsed_config_or_found_as_the_command_finds_it(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = samples_config(tmp_path)
    given: object = {"str": str(path), "path": path, "parsed": load_config(path)}.get(kind)
    if kind == "environment":
        monkeypatch.setenv("BITKEY_DIR_CONFIG", str(path))
    with Client(config=given) as client:  # type: ignore[arg-type]
        assert client.config.path == path
        assert [str(k.key_id) for k in client.find(key_id="063EA4E1").keys] == [KNOWN_ID]


def test_the_config_is_read_once(tmp_path: Path) -> None:
    path = samples_config(tmp_path)
    with Client(config=path) as client:
        path.write_text("not TOML [", encoding="utf-8")
        assert client.find(key_id="063EA4E1").exit_code == ExitCode.FOUND
        path.unlink()
        assert client.find(key_id="063EA4E1").exit_code == ExitCode.FOUND


def test_a_config_that_is_not_there_is_refused_when_the_client_is_made(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="config file not found"):
        Client(config=tmp_path / "missing.toml")


def test_every_command_is_a_method(tmp_path: Path, trail_file: Path) -> None:
    config = samples_config(tmp_path)
    with Client(config=config) as client:
        client.find(key_id="063EA4E1", reason="INC-2")
        assert [(s.name, s.type, s.default) for s in client.sources()] == [
            ("samples", "file", True)
        ]
        listing = client.trail(limit=5)
        assert [entry["reason"] for entry in listing.entries] == ["INC-2"]
        assert listing.path == trail_file
        assert client.verify(KNOWN_PASSWORD).valid
        wrong = client.verify(KNOWN_PASSWORD.replace("716078", "716079"))
        assert (wrong.valid, wrong.bad_groups) == (False, (3,))
        assert [done.keys for done in client.refresh_index().refreshed] == [7]
        assert [row.source for row in client.index_status().rows] == ["samples"]
        assert client.find(key_id="063EA4E1").index.used == ["samples"]
        assert client.clear_index() == ["samples"]
        assert client.diagnose().exit_code == ExitCode.FOUND
        rotated = client.rotate(key_id=KNOWN_ID, reason="INC-3")
        assert [r.outcome for r in rotated.rotations] == ["by hand"]
        disclosed = client.disclosed()
        assert [str(d.key_id) for d in disclosed.disclosures] == [KNOWN_ID]
        out = tmp_path / "keys.json"
        exported = client.export(source="samples", output=out, reason="DR")
        assert (exported.failure, exported.keys) == (None, 7)
        assert [row.source for row in client.auth_status().sources] == ["samples"]
        with pytest.raises(InputError, match="only directory sources"):
            client.audit(sources=["samples"])
        with pytest.raises(InputError, match="keeps no audit log"):
            client.reads(since="24h", sources=["samples"])
    commands = {entry["command"][1] for entry in trail_entries()}
    assert commands == {
        "bitkey_dir.Client.find",
        "bitkey_dir.Client.rotate",
        "bitkey_dir.Client.export",
    }


def test_one_source_may_be_named_without_a_list() -> None:
    with Client() as client:
        assert client.find(key_id="063EA4E1", sources=str(KEYS)).exit_code == ExitCode.FOUND
        assert client.find(key_id="063EA4E1", sources=KEYS).exit_code == ExitCode.FOUND


# -- sources kept open ------------------------------------------------------------------------


def test_a_source_is_opened_once_reused_and_closed_with_the_client(
    stand_in_config: Path, ledger: Ledger
) -> None:
    with Client(config=stand_in_config) as client:
        for _ in range(3):
            assert [str(k.key_id) for k in client.find(key_id="063EA4E1").keys] == [KNOWN_ID]
        (one,) = ledger.opened
        assert (one.asked, one.closed) == (3, 0)
        assert "1 sources open" in repr(client)
    assert one.closed == 1
    assert "closed" in repr(client)


def test_each_thread_asks_a_source_of_its_own(stand_in_config: Path, ledger: Ledger) -> None:
    with Client(config=stand_in_config) as client:

        def find(_: int) -> list[str]:
            result = client.find(key_id="063EA4E1", sources=["two"])
            assert result.exit_code == ExitCode.FOUND
            return [str(key.key_id) for key in result.keys]

        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(find, range(4 * THREADS)))
        assert answers == [[KNOWN_ID]] * (4 * THREADS)
        assert ledger.shared == []
        assert 1 <= len(ledger.opened) <= THREADS
        assert sum(source.asked for source in ledger.opened) == 4 * THREADS
        assert ledger.unclosed() == [s.name for s in ledger.opened]  # kept for the next call
    assert ledger.unclosed() == []
    assert [source.closed for source in ledger.opened] == [1] * len(ledger.opened)
    assert ledger.after_close == []


def test_a_failed_source_is_closed_not_kept(stand_in_config: Path, ledger: Ledger) -> None:
    with Client(config=stand_in_config) as client:
        for _ in range(2):
            result = client.find(key_id="063EA4E1", sources=["one", "down"])
            assert [s.status for s in result.sources] == ["ok", "failed"]
        one, down, down_again = ledger.opened
        assert (one.closed, one.asked) == (0, 2)
        assert (down.closed, down_again.closed) == (1, 1)


def test_a_call_that_raises_closes_what_it_opened(stand_in_config: Path, ledger: Ledger) -> None:
    with Client(config=stand_in_config) as client:
        with pytest.raises(InputError, match="only directory sources"):
            client.audit(sources=["one"])
        (one,) = ledger.opened
        assert one.closed == 1
        assert client.find(key_id="063EA4E1").exit_code == ExitCode.FOUND
        assert len(ledger.opened) == 2


def test_the_parts_of_a_source_are_lent_and_closed_each(
    stand_in_config: Path, ledger: Ledger
) -> None:
    with Client(config=stand_in_config) as client:
        for _ in range(2):
            result = client.find(key_id="063EA4E1", sources=["parted"])
            assert [s.name for s in result.sources] == ["parted/a", "parted/b"]
        assert [(s.name, s.asked, s.closed) for s in ledger.opened] == [
            ("parted/a", 2, 0),
            ("parted/b", 2, 0),
        ]
    assert [s.closed for s in ledger.opened] == [1, 1]


def test_a_source_with_slots_is_kept_like_any_other(stand_in_config: Path) -> None:
    # Nothing is set on a lent source: it is released, not closed, by the operation.
    with Client(config=stand_in_config) as client:
        for _ in range(2):
            client.find(key_id="063EA4E1", sources=["slotted"])
        assert [source.closed for source in stand_ins.Slotted.opened] == [0]
    assert [source.closed for source in stand_ins.Slotted.opened] == [1]


def test_the_one_call_functions_keep_nothing_open(stand_in_config: Path, ledger: Ledger) -> None:
    for _ in range(2):
        assert api.find_keys(key_id="063EA4E1", config=stand_in_config).keys
    assert [source.closed for source in ledger.opened] == [1, 1]


# -- closing ----------------------------------------------------------------------------------


def test_closing_twice_is_harmless_and_a_closed_client_says_so() -> None:
    client = Client()
    client.close()
    client.close()
    with pytest.raises(RuntimeError, match=r"Client is closed: find\(\) needs a new one"):
        client.find(key_id="063EA4E1", sources=[KEYS])
    with pytest.raises(RuntimeError, match="closed"):
        client.verify(KNOWN_PASSWORD)
    with pytest.raises(RuntimeError, match="closed"), client:
        pass


def test_a_client_nobody_closed_closes_its_sources_when_collected(
    stand_in_config: Path, ledger: Ledger
) -> None:
    import gc

    client = Client(config=stand_in_config)
    client.find(key_id="063EA4E1")
    del client
    gc.collect()
    assert ledger.unclosed() == []


# -- threads and event loops ------------------------------------------------------------------


def test_threads_share_one_client_over_key_files(trail_file: Path) -> None:
    ids = [KNOWN_ID, "A1A6BCDE-3A12-4C64-BE02-FF05B7C1DCE2", "90010259-98DA-44BF-B559-2F89B3FB95EE"]
    with Client() as client:

        def find(n: int) -> tuple[str, list[str]]:
            wanted = ids[n % len(ids)]
            result = client.find(key_id=wanted[:8], sources=[KEYS], reason=f"T-{n}")
            return wanted, [str(key.key_id) for key in result.keys]

        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(find, range(4 * THREADS)))
    assert [keys for _, keys in answers] == [[wanted] for wanted, _ in answers]
    entries = trail_entries()
    assert sorted(e["reason"] for e in entries) == sorted(f"T-{n}" for n in range(4 * THREADS))


def test_a_call_inside_a_running_event_loop(stand_in_config: Path, ledger: Ledger) -> None:
    async def main() -> tuple[list[str], list[list[str]]]:
        with Client(config=stand_in_config) as client:
            inline = client.find(key_id="063EA4E1", sources=[str(KEYS)])
            threaded = await asyncio.gather(
                *(asyncio.to_thread(client.find, key_id="063EA4E1") for _ in range(4))
            )
        return [str(k.key_id) for k in inline.keys], [
            [str(k.key_id) for k in r.keys] for r in threaded
        ]

    inline, threaded = asyncio.run(main())
    assert inline == [KNOWN_ID]
    assert threaded == [[KNOWN_ID]] * 4
    assert ledger.shared == []
    assert ledger.unclosed() == []


# -- words and secrets ------------------------------------------------------------------------


def test_errors_name_parameters_where_the_command_names_options(tmp_path: Path) -> None:
    out = tmp_path / "keys.json"
    out.write_text("{}", encoding="utf-8")
    command = invoke("export", "-s", KEYS, "-o", out)
    assert f"{out} exists: give --force to replace it" in command.err
    with Client() as client:
        with pytest.raises(InputError) as refused:
            client.export(source=str(KEYS), output=out)
        assert refused.value.message == f"{out} exists: give force=True to replace it"
        assert str(refused.value) == refused.value.message
        assert refused.value.exit_code == ExitCode.BAD_INPUT
        with pytest.raises(InputError, match=r"^stale_days must be at least 1$"):
            client.audit(stale_days=0)
        with pytest.raises(InputError, match=r"^give exactly one of key_id and computer$"):
            client.find(sources=[KEYS])
        with pytest.raises(InputError, match=r"^key_package needs key_id"):
            client.find(computer="PC-0042", sources=[KEYS], key_package=tmp_path / "k.bin")


def test_warnings_and_source_errors_name_parameters(tmp_path: Path) -> None:
    pytest.importorskip("pyrage")
    from bitkey_dir.runtime import encryption

    recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
    assert encryption.parse_recipient(recipient)
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    with Client() as client:
        client.export(source=str(KEYS), output=sealed / "keys.age", encrypt_to=[recipient])
        result = client.find(key_id="063EA4E1", sources=[sealed, KEYS])
    assert [s.status for s in result.sources] == ["denied", "ok"]
    assert "give identities=FILE (or identity_file" in (result.sources[0].error or "")
    assert not [w for w in result.warnings if "--" in w]


def test_no_secret_in_the_clients_repr_or_errors(
    tmp_path: Path, stand_in_config: Path, ledger: Ledger
) -> None:
    secret = "Hunter-2-Secret"
    with Client(config=stand_in_config) as client:
        found = client.find(key_id="063EA4E1")
        assert found.keys[0].recovery_password is not None
        with pytest.raises(BitkeyError) as refused:
            client.login("signing", secret="Wr0ng-Secret")
        with pytest.raises(InputError) as no_passphrase:
            client.export(source="one", output=tmp_path / "k.age", passphrase="")
        with pytest.raises(InputError) as pasted:
            client.find(key_id="063EA4E1", reason=f"user read {KNOWN_PASSWORD}")
        if importlib.util.find_spec("pyrage"):
            client.export(source="one", output=tmp_path / "k.age", passphrase=secret)
        shown = [repr(client), str(client)]
    for error in (refused.value, no_passphrase.value, pasted.value):
        shown += [str(error), repr(error), error.hint or ""]
    assert pasted.value.message.startswith("reason looks like it holds a recovery password")
    for text in shown:
        assert KNOWN_PASSWORD not in text
        assert KNOWN_PASSWORD.replace("-", "") not in text
        assert secret not in text
        assert "Wr0ng-Secret" not in text


# -- signing in -------------------------------------------------------------------------------


class Asking:
    """An interaction with somebody to ask, who answers every prompt with ``answer``."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    def notice(self, message: str) -> None:
        pass

    def instructions(self, text: str) -> None:
        pass

    def can_prompt(self) -> bool:
        return True

    def secret(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answer

    def progress(self, items: Any, label: str) -> Any:
        return iter(items)


@pytest.mark.usefixtures("file_keyring")
def test_login_takes_the_secret_given_or_asks_the_interaction(
    stand_in_config: Path, ledger: Ledger
) -> None:
    with Client(config=stand_in_config) as client:
        client.find(key_id="063EA4E1", sources=["signing"])
        done = client.login("signing", secret="Given-1")
        assert (done.source, done.message) == ("signing", "signed in as helpdesk")
        with pytest.raises(InputError, match="give secret=, or an interaction that can prompt"):
            client.login("signing")
        assert client.logout("signing").removed == ["the password of helpdesk"]
        assert [row.status.account for row in client.auth_status(sources="signing").sources] == [
            "helpdesk"
        ]
        with pytest.raises(InputError, match="has no credentials to store"):
            client.login("one", secret="x")
    asking = Asking("Typed-2")
    with Client(config=stand_in_config, interaction=asking) as client:
        client.login("signing")
    assert stand_ins.Signing.given == ["Given-1", "Typed-2"]
    assert asking.prompts == ["The password of helpdesk (signing): "]
    # What was kept signed in before a login is closed by it, not reused.
    assert ledger.unclosed() == []


def test_no_environment_leaks_between_tests() -> None:
    assert "BITKEY_DIR_CONFIG" not in os.environ


# -- core dumps -------------------------------------------------------------------------------

CORE_PROBE = """
import json, logging, resource, sys
from bitkey_dir import Client
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
soft = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
seen = [resource.getrlimit(resource.RLIMIT_CORE)]
with Client(config=sys.argv[1]) as client:
    client.sources()
    seen.append(resource.getrlimit(resource.RLIMIT_CORE))
    client.find(key_id="063EA4E1")
    seen.append(resource.getrlimit(resource.RLIMIT_CORE))
    resource.setrlimit(resource.RLIMIT_CORE, seen[0])  # the host takes it back
    client.find(key_id="063EA4E1")
    seen.append(resource.getrlimit(resource.RLIMIT_CORE))
print(json.dumps(seen))
"""


@pytest.mark.skipif(importlib.util.find_spec("resource") is None, reason="needs resource (POSIX)")
def test_a_client_that_reads_passwords_turns_core_dumps_off_once(tmp_path: Path) -> None:
    config = samples_config(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", CORE_PROBE, str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BITKEY_DIR_TRAIL": str(tmp_path / "trail.jsonl")},
    )
    before, listed, found, again = (tuple(limits) for limits in json.loads(done.stdout))
    if before[0] == 0:
        pytest.skip("core dumps are forbidden here already (hard limit 0)")
    assert listed == before  # nothing read yet: the host's limit stands
    assert found == (0, before[1])  # the soft limit only: the host may raise it again
    assert again == before  # once per process: what the host chose afterwards stands
    assert done.stderr.count("core dumps are off from now on") == 1
    assert KNOWN_PASSWORD not in done.stdout + done.stderr
