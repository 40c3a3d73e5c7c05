"""Every console example in README.md and docs/ is what the commands really print.

A ``console`` block is preceded by ``<!-- checked: ENV -->``, naming where its commands run:

``files``  the repository root, with the bundled key files and exports;
``lab``    the same, with the lab DC of ``examples/lab/start`` running (started here, as the
           README says, and stopped at the end); ``examples/lab/lab.toml`` in a command is
           the config that start wrote, and the DC's address is shown as 127.0.0.53;
``entra``  the same with ``examples/lab/start --entra``: the Entra lab, shown on its default
           port, 127.0.0.1:8443.

A keyring stands in for the system's (tests/keyring_backends), as a person at a desktop has
one; every environment starts with it empty.

Each ``$ `` line runs through bash on a pseudo-terminal (so defaults are a terminal's, and
stdout and stderr interleave as a person sees them), and what follows it, up to the next
``$ `` line, is the expected screen. ``…`` in the expected text stands for any text within
a line (dates, durations, paths of the reader's machine). Progress lines that a terminal
overwrites are overwritten here too.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from tests.conftest import ROOT, select_keyring
from tests.integration.fixtures import lab_started, require_samba

pytestmark = pytest.mark.integration

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!-- checked: ([a-z-]+) -->\n```console\n(.*?)```", re.DOTALL)
LAB_HOST = "127.0.0.53"  # as the documents show it
ENTRA_ADDRESS = "127.0.0.1:8443"
ENVIRONMENTS = ("files", "lab", "entra")


@dataclass(frozen=True)
class Step:
    command: str
    expected: list[str]


@dataclass(frozen=True)
class Example:
    document: str
    line: int
    environment: str
    steps: tuple[Step, ...]

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def examples() -> list[Example]:
    found = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in MARKER.finditer(text):
            steps: list[Step] = []
            for line in match.group(2).splitlines():
                if line.startswith("$ "):
                    steps.append(Step(line[2:], []))
                else:
                    assert steps, f"{path.name}: output before any command"
                    steps[-1].expected.append(line)
            line_number = text.count("\n", 0, match.start()) + 1
            found.append(
                Example(str(path.relative_to(ROOT)), line_number, match.group(1), tuple(steps))
            )
    return found


EXAMPLES = examples()


def test_every_console_example_is_checked() -> None:
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"```console\n", text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            line = text.count("\n", 0, match.start()) + 1
            assert before.startswith("<!-- checked: "), (
                f"{path.name}:{line}: a console example names no environment to check it in "
                "(<!-- checked: files|lab|entra -->); commands without output are ```sh blocks"
            )
    assert {example.environment for example in EXAMPLES} <= set(ENVIRONMENTS)
    assert len(EXAMPLES) >= 5


def screen(raw: str) -> list[str]:
    """What a terminal shows for ``raw``: CR returns to the line's start, ESC [K erases."""
    lines = []
    for physical in raw.replace("\r\n", "\n").split("\n"):
        shown = ""
        for part in re.split(r"(\r|\x1b\[K)", physical):
            if part == "\r":
                shown = ""  # later text overwrites; ESC [K then clears what is left
            elif part == "\x1b[K":
                pass
            else:
                shown += part
        lines.append(shown.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(expected: list[str], shown: list[str]) -> bool:
    if len(expected) != len(shown):
        return False
    for want, got in zip(expected, shown, strict=True):
        pattern = ".*?".join(re.escape(part) for part in want.rstrip().split("…"))
        if not re.fullmatch(pattern, got):
            return False
    return True


def run_on_a_terminal(command: str, cwd: Path, env: dict[str, str]) -> tuple[list[str], int]:
    child = pexpect.spawn(
        "bash",
        ["-c", command],
        cwd=str(cwd),
        env=env,
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(50, 200),
        timeout=120,
    )
    raw = child.read()
    child.close()
    code = child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)
    return screen(raw), code


def environment() -> dict[str, str]:
    env = dict(os.environ)  # the isolated HOME, trail and keyring of tests/conftest.py
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["TERM"] = "xterm"
    env.pop("BITKEY_DIR_PASSWORD", None)
    return env


@dataclass
class Lab:
    config: Path
    shown_as: dict[str, str]  # what the lab printed → what the documents show instead


def start_lab(work: Path, *options: str, ready: str, address: str) -> Iterator[Lab]:
    """``examples/lab/start OPTIONS``, as the README gives it, until the generator is closed;
    ``address`` finds the address it chose in what it printed."""
    config = work / "lab.toml"
    with lab_started(*options, "--workdir", str(work / "lab"), "--config", str(config)) as (
        process,
        said,
    ):
        found = re.search(address, said)
        assert found, said
        yield Lab(config, {found.group(1): ready})
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The AD lab, a Samba DC (root: it binds ports 88, 389 and 636)."""
    require_samba()
    yield from start_lab(
        tmp_path_factory.mktemp("docs-lab"),
        ready=LAB_HOST,
        address=r"Starting the lab DC on (127\.0\.0\.\d+)",
    )


@pytest.fixture(scope="module")
def entra_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The Entra lab: the Graph emulator with its sample tenant (no root needed)."""
    yield from start_lab(
        tmp_path_factory.mktemp("docs-entra"),
        "--entra",
        ready=ENTRA_ADDRESS,
        address=r"The Entra lab is running on https://(127\.0\.0\.1:\d+)",
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_the_example_shows_what_the_command_prints(
    example: Example, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    select_keyring(monkeypatch, "StandInKeyring")
    monkeypatch.setenv(
        "BITKEY_DIR_TEST_KEYRING_FILE", str(Path(os.environ["HOME"]) / "keyring.json")
    )
    env = environment()
    used: Lab | None = None
    if example.environment == "lab":
        used = request.getfixturevalue("lab")
    elif example.environment == "entra":
        used = request.getfixturevalue("entra_lab")
    for step in example.steps:
        command = step.command
        if used is not None:
            command = command.replace("examples/lab/lab.toml", str(used.config))
        shown, code = run_on_a_terminal(command, ROOT, env)
        for real, documented in (used.shown_as if used else {}).items():
            shown = [line.replace(real, documented) for line in shown]
        text = "\n".join(shown)
        assert code in (0, 1, 2, 3, 4), f"$ {step.command}\n{text}"
        assert "Traceback" not in text
        assert matches(step.expected, shown), (
            f"{example}: $ {step.command}\n--- documented\n"
            + "\n".join(step.expected)
            + "\n--- printed\n"
            + text
        )


def test_the_matcher_can_see_a_difference() -> None:
    assert matches(["a … c"], ["a bb c"])
    assert not matches(["a … c"], ["a bb d"])
    assert not matches(["a"], ["a", "b"])
    assert screen("progress: 1\r\x1b[Kdone\r\nnext\r\n") == ["done", "next"]
    assert screen("keys listed: 1\r\x1b[Klab: 5 keys\n") == ["lab: 5 keys"]
