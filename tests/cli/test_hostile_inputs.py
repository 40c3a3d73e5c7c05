"""Hostile and broken inputs end with one line and a documented exit code: never a hang, an
unbounded read, an internal error or a traceback (benchmarks/hostile_inputs.py runs the same
kinds of input as whole processes and counts them)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitkey_dir.runtime import small_files
from tests.command_line import invoke, invoke_with
from tests.conftest import EXAMPLES
from tests.unit.helpers import KEY_ID, PASSWORD, utf16_le_bom, windows_key_file

KEYS = str(EXAMPLES / "keys")
AD = (
    '[sources.dc]\ntype = "ad"\nservers = ["ldaps://127.0.0.1:9"]\nuser = "helpdesk@corp.example"\n'
)


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("bitkey-dir: error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.timeout(20)
@pytest.mark.parametrize("where", ["/dev/zero", "folder"])
def test_a_config_that_is_not_a_file_is_bad_input(where: str, tmp_path: Path) -> None:
    path = {"/dev/zero": Path("/dev/zero"), "folder": tmp_path}[where]
    done = invoke_with(path, "sources")
    assert done.code == 2
    assert "expected a TOML config file" in one_error(done.err)


@pytest.mark.timeout(20)
def test_a_config_fifo_nobody_writes_to_is_bad_input_after_a_while(
    fifo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(small_files, "PIPE_WAIT", 0.5)
    done = invoke_with(fifo, "sources")
    assert done.code == 2
    assert one_error(done.err) == (
        f"bitkey-dir: error: the config file {fifo} is a pipe that sent nothing within 0.5 seconds"
    )
    assert done.elapsed < 5


@pytest.mark.timeout(20)
def test_a_config_fifo_that_never_ends_is_bad_input(
    fifo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(small_files, "PIPE_WAIT", 0.5)
    writer = threading.Thread(target=_write_and_hold, args=(fifo, b"[defaults]\n", 2.0))
    writer.start()
    try:
        done = invoke_with(fifo, "sources")
    finally:
        writer.join()
    assert done.code == 2
    assert "is a pipe that did not end within 0.5 seconds" in one_error(done.err)


def _write_and_hold(path: Path, data: bytes, hold: float) -> None:
    with path.open("wb", buffering=0) as pipe:
        pipe.write(data)
        time.sleep(hold)


@pytest.mark.timeout(20)
def test_a_config_pipe_is_read_within_its_bound(tmp_path: Path) -> None:
    fifo = tmp_path / "big.fifo"
    os.mkfifo(fifo)
    data = b"# " + b"x" * (2 * 1024 * 1024) + b"\n"
    writer = threading.Thread(target=_write_and_hold, args=(fifo, data, 0.0), daemon=True)
    writer.start()
    done = invoke_with(fifo, "sources")
    assert done.code == 2
    assert "larger than 1024 KiB" in one_error(done.err)


def test_a_config_nested_beyond_reason_is_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "nested.toml"
    config.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    done = invoke_with(config, "sources")
    assert done.code == 2
    assert "nested too deeply" in one_error(done.err)


def test_a_huge_config_is_not_read(tmp_path: Path) -> None:
    config = tmp_path / "big.toml"
    config.write_text("# " + "x" * (2 * 1024 * 1024) + "\n")
    done = invoke_with(config, "sources")
    assert done.code == 2
    assert "larger than 1024 KiB" in one_error(done.err)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('ca_file = "missing.pem"', "the CA bundle"),
        ("page_size = 1000000000", "a whole number from 1 to 100000"),
        ("page_size = 0", "a whole number from 1 to 100000"),
        ("timeout = 1000000000", "a whole number from 1 to 3600"),
        ('servers = ["ldaps://dc1", "ldaps//dc2"]', '"ldaps//dc2": expected'),
    ],
)
def test_settings_out_of_range_are_config_errors(
    tmp_path: Path, setting: str, message: str
) -> None:
    config = tmp_path / "config.toml"
    text = AD.replace('servers = ["ldaps://127.0.0.1:9"]\n', "") if "servers" in setting else AD
    config.write_text(text + setting + "\n")
    done = invoke_with(config, "sources")
    assert done.code == 2
    assert message in one_error(done.err)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("flag", ["--identity", "--encrypt-to"])
@pytest.mark.parametrize("where", ["/dev/zero", "fifo"])
def test_key_files_that_are_not_files_are_bad_input(
    tmp_path: Path, fifo: Path, flag: str, where: str
) -> None:
    pyrage = pytest.importorskip("pyrage")
    path = str(fifo) if where == "fifo" else where
    if flag == "--identity":
        sealed = tmp_path / "sealed"
        sealed.mkdir()
        public = pyrage.x25519.Identity.generate().to_public()
        (sealed / "keys.age").write_bytes(pyrage.encrypt(b'{"keys": []}', [public]))
        done = invoke("find", "-k", KEY_ID[:8], "-s", sealed, "--identity", path)
    else:
        done = invoke("export", "-s", KEYS, "-o", tmp_path / "out.json", "--encrypt-to", path)
    assert done.code == 2
    assert "not a regular file" in one_error(done.err)
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("limit", ["1e23", "1" + "0" * 30, "0", "-1"])
def test_a_trail_limit_out_of_range_is_bad_input(limit: str) -> None:
    assert invoke("trail", "-n", limit).code == 2


@pytest.fixture
def deep(tmp_path: Path) -> Iterator[Path]:
    """Folders 1,200 deep, a key file at the bottom; removed with rm, since pytest's own
    clean-up (shutil.rmtree) recurses too deep for them."""
    top = tmp_path / "deep"
    folder = str(top)
    os.mkdir(folder)
    for _ in range(1200):
        folder += "/d"
        os.mkdir(folder)
    Path(folder, "k.TXT").write_bytes(utf16_le_bom(windows_key_file(KEY_ID, PASSWORD)))
    yield top
    subprocess.run(["/bin/rm", "-rf", str(top)], check=False)


def test_folders_deeper_than_recursion_allows_are_read(deep: Path) -> None:
    done = invoke("find", "-k", KEY_ID[:8], "-s", deep, "-f", "key")
    assert (done.code, done.out) == (0, PASSWORD + "\n")


@pytest.mark.timeout(10)
def test_a_pattern_made_to_backtrack_answers_at_once(tmp_path: Path) -> None:
    export = tmp_path / "names" / "export.json"
    export.parent.mkdir()
    record = f'{{"key_id": "{KEY_ID}", "recovery_password": "{PASSWORD}", "computer": '
    export.write_text(f'{{"keys": [{record}"{"a" * 200}"}}]}}')
    done = invoke("find", "-c", "*a" * 60 + "*b", "-s", export.parent)
    assert done.code == 1
    done = invoke("find", "-c", "*a" * 60 + "*", "-s", export.parent, "-f", "key")
    assert (done.code, done.out) == (0, PASSWORD + "\n")


@pytest.mark.timeout(20)
def test_an_age_file_with_thousands_of_recipients_is_not_tried(tmp_path: Path) -> None:
    pyrage = pytest.importorskip("pyrage")
    folder = tmp_path / "bomb"
    folder.mkdir()
    public = [pyrage.x25519.Identity.generate().to_public() for _ in range(1500)]
    (folder / "keys.age").write_bytes(pyrage.encrypt(b'{"keys": []}', public))
    identity = tmp_path / "identity.txt"
    identity.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    done = invoke("find", "-k", KEY_ID[:8], "-s", folder, "--identity", identity)
    assert done.code == 3
    assert "not tried" in one_error(done.err)


def test_an_internal_error_with_debug_on_shows_the_traceback_and_still_exits_70(
    tmp_path: Path,
) -> None:
    import sys

    from tests.conftest import ROOT

    probe = (
        "import sys\n"
        "import bitkey_dir.ops.lookup as lookup\n"
        "def broken(*args, **kwargs):\n    raise RuntimeError('a bug')\n"
        "lookup.find = broken\n"
        f"sys.argv = ['bitkey-dir', 'find', '-k', '063EA4E1', '-s', {KEYS!r}]\n"
        "from bitkey_dir.cli import main\nmain()\n"
    )
    for debug, shows in (("1", "Traceback"), ("", "internal error (RuntimeError)")):
        done = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, "PYTHONPATH": str(ROOT), "BITKEY_DIR_DEBUG": debug},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 70, done.stderr  # never 1, which means "not found"
        assert shows in done.stderr
