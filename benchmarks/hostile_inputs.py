"""A corpus of hostile and broken inputs, run against `bitkey-dir` as whole processes.

    .venv/bin/python benchmarks/hostile_inputs.py [--timeout 15] [--verbose]

Each case is a command line with its files, configs and environment, and the exit codes
that would be right. Every run is classified: a traceback, a hang (no exit within the
time-out), an internal error (exit 70), a wrong exit code, raw control characters or bidi
overrides from data in output meant for people, a spreadsheet formula at the start of a CSV
cell, or fine. Prints one line per case that is not fine, then the totals.

Needs no directory server: the sources are key files, exports, configs and a loopback port
that accepts connections and never answers. Run as root, a case that needs an unreadable
file drops the capability to read what it may not (setpriv).
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).with_name("bitkey-dir")
KEY_ID = "063EA4E1-220C-4293-BA01-4754620A96E7"
PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"
# C0 (but tab and newline) and C1 controls, and the bidi overrides and isolates.
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def windows_key_file(key_id: str = KEY_ID, password: str = PASSWORD) -> bytes:
    text = (
        "BitLocker Drive Encryption recovery key\r\n\r\n"
        "To verify that this is the correct recovery key, compare the start of the following "
        "identifier with the identifier value displayed on your PC.\r\n\r\n"
        f"Identifier:\r\n\r\n\t{key_id}\r\n\r\n"
        "If the above identifier matches the one displayed by your PC, then use the following "
        "key to unlock your drive.\r\n\r\n"
        f"Recovery Key:\r\n\r\n\t{password}\r\n"
    )
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


@dataclass
class Case:
    name: str
    argv: list[str]
    expected: tuple[int, ...]
    setup: Callable[[Path], None] = lambda work: None
    env: dict[str, str] = field(default_factory=dict)
    human: bool = True  # output meant for people: no raw controls from data
    csv_file: str | None = None  # a CSV the command writes, checked for formulas
    unprivileged: bool = False  # run without root's power to read any file
    stdin: bytes = b""


class NeverAnswers:
    """A TCP port that accepts connections and never says a word (a hung DC)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)


ENTRA = (
    '[sources.cloud]\ntype = "entra"\ntenant_id = "00000000-0000-0000-0000-000000000001"\n'
    'client_id = "00000000-0000-0000-0000-000000000002"\nauth = "client-secret"\n'
)


def cases(hung_port: int) -> list[Case]:
    keys = str(ROOT / "examples" / "keys")
    deep = "*a" * 30 + "*b"

    def hostile_names(work: Path) -> None:
        write(work / "hostile" / "PC\x1b]0;owned\x07\x1b[2J" / "k.TXT", windows_key_file())
        write(
            work / "hostile" / "export.json",
            '{"keys": [{"key_id": "3CEAAF30-8142-48EA-91D9-3080F9B439FC", "recovery_password":'
            ' "000011-000022-000033-000044-000055-000066-000077-000088", "computer": '
            '"=HYPERLINK(\\"http://x\\")\\u202eEXE.TXT\\u009b31m", "location": "+1-2"}]}',
        )

    def age_bomb(work: Path) -> None:
        import pyrage

        # A real age file to 1,500 recipients: trying an identity against each is quadratic.
        public = [pyrage.x25519.Identity.generate().to_public() for _ in range(1500)]
        write(work / "bomb" / "keys.age", pyrage.encrypt(b'{"keys": []}', public))
        write(work / "identity.txt", str(pyrage.x25519.Identity.generate()) + "\n")

    def small_export(work: Path) -> None:
        import pyrage

        public = pyrage.x25519.Identity.generate().to_public()
        write(work / "sealed" / "keys.age", pyrage.encrypt(b'{"keys": []}', [public]))

    def long_names(work: Path) -> None:
        record = f'{{"key_id": "{KEY_ID}", "recovery_password": "{PASSWORD}", "computer": '
        write(work / "names" / "export.json", f'{{"keys": [{record}"{"a" * 60}"}}]}}')

    def fifo(name: str) -> Callable[[Path], None]:
        def make(work: Path) -> None:
            os.mkfifo(work / name)

        return make

    def nested_toml(work: Path) -> None:
        write(work / "nested.toml", "a = " + "[" * 100_000 + "]" * 100_000 + "\n")

    def config(text: str) -> Callable[[Path], None]:
        def make(work: Path) -> None:
            write(work / "c.toml", text.replace("WORK", str(work)))

        return make

    def deep_folders(work: Path) -> None:
        folder = str(work / "deep")
        os.mkdir(folder)
        for _ in range(1200):  # one by one: pathlib's mkdir(parents=True) recurses
            folder += "/d"
            os.mkdir(folder)
        Path(folder, "k.TXT").write_bytes(windows_key_file())

    def unreadable(work: Path) -> None:
        write(work / "locked" / "PC-1" / "k.TXT", windows_key_file())
        (work / "locked" / "PC-1" / "k.TXT").chmod(0)

    def trail_link(work: Path) -> None:
        write(work / "other.txt", "someone else's file\n")
        (work / "link.jsonl").symlink_to(work / "other.txt")
        write(work / "c.toml", "[defaults]\nrequire_reason = true\n")

    def deep_and_config(work: Path) -> None:
        write(work / "c.toml", "[defaults]\nrequire_reason = true\n")

    ad = (
        '[sources.dc]\ntype = "ad"\nservers = ["ldaps://127.0.0.1:{port}"]\n'
        'user = "helpdesk@corp.example"\ntimeout = 2\n'
    )
    return [
        Case("Key ID with filter syntax", ["find", "-k", "*)(cn=*", "-s", keys], (2,)),
        Case("empty Key ID", ["find", "-k", "", "-s", keys], (2,)),
        Case("100,000-character Key ID", ["find", "-k", "A" * 100_000, "-s", keys], (2,)),
        Case("Key ID not UTF-8", ["find", "-k", "063EA4E1\udcff", "-s", keys], (2,)),
        Case("name with a terminal escape", ["find", "-c", "PC\x1b[2J", "-s", keys], (2,)),
        Case(
            "backtracking wildcard",
            ["find", "-c", deep, "-s", "WORK/names"],
            (1,),
            setup=long_names,
        ),
        Case(
            "escape sequences in a folder name (table)",
            ["find", "-k", KEY_ID[:8], "-s", "WORK/hostile", "-f", "table"],
            (0,),
            setup=hostile_names,
        ),
        Case(
            "escape sequences in a folder name (phone)",
            ["find", "-k", KEY_ID[:8], "-s", "WORK/hostile", "-f", "phone"],
            (0,),
            setup=hostile_names,
        ),
        Case(
            "formula and bidi in a name (find CSV)",
            ["find", "-k", "3CEAAF30", "-s", "WORK/hostile", "-f", "csv"],
            (0,),
            setup=hostile_names,
            human=False,
            csv_file="-",
        ),
        Case(
            "formula and bidi in a name (export CSV)",
            ["export", "-s", "WORK/hostile", "-o", "WORK/out.csv", "-f", "csv"],
            (0,),
            setup=hostile_names,
            csv_file="WORK/out.csv",
        ),
        Case(
            "age file with 1,500 recipients",
            ["find", "-k", KEY_ID[:8], "-s", "WORK/bomb", "-i", "WORK/identity.txt"],
            (3,),
            setup=age_bomb,
        ),
        Case("config is /dev/zero", ["--config", "/dev/zero", "sources"], (2,)),
        Case("config is a FIFO", ["--config", "WORK/fifo", "sources"], (2,), setup=fifo("fifo")),
        Case(
            "config nested 100,000 deep",
            ["--config", "WORK/nested.toml", "sources"],
            (2,),
            setup=nested_toml,
        ),
        Case(
            "AD source with a missing ca_file",
            ["--config", "WORK/c.toml", "sources"],
            (2,),
            setup=config(ad.format(port=1) + 'ca_file = "WORK/missing.pem"\n'),
        ),
        Case(
            "page_size of a billion",
            ["--config", "WORK/c.toml", "sources"],
            (2,),
            setup=config(ad.format(port=1) + "page_size = 1000000000\n"),
        ),
        Case(
            "timeout of a billion seconds",
            ["--config", "WORK/c.toml", "find", "-k", KEY_ID, "-s", "dc"],
            (2,),
            setup=config(ad.replace("timeout = 2", "timeout = 1000000000").format(port=1)),
            env={"BITKEY_DIR_PASSWORD": "Not-Used-1"},
        ),
        Case(
            "a DC that never answers",
            ["--config", "WORK/c.toml", "find", "-k", KEY_ID, "-s", "dc"],
            (4,),
            setup=config(ad.format(port=hung_port)),
            env={"BITKEY_DIR_PASSWORD": "Not-Used-1"},
        ),
        Case(
            "--identity /dev/zero",
            ["find", "-k", KEY_ID[:8], "-s", "WORK/sealed", "-i", "/dev/zero"],
            (2,),
            setup=small_export,
        ),
        Case(
            "--identity is a FIFO",
            ["find", "-k", KEY_ID[:8], "-s", "WORK/bomb", "-i", "WORK/fifo"],
            (2,),
            setup=lambda work: (age_bomb(work), fifo("fifo")(work)),
        ),
        Case(
            "--encrypt-to /dev/zero",
            ["export", "-s", keys, "-o", "WORK/out.json", "--encrypt-to", "/dev/zero"],
            (2,),
        ),
        Case(
            "--encrypt-to a FIFO",
            ["export", "-s", keys, "-o", "WORK/out.json", "--encrypt-to", "WORK/fifo"],
            (2,),
            setup=fifo("fifo"),
        ),
        Case("trail -n 1e23", ["trail", "-n", "1e23"], (2,)),
        Case("trail -n 10**30", ["trail", "-n", "1" + "0" * 30], (2,)),
        Case(
            "folders 1,200 deep",
            ["find", "-k", KEY_ID[:8], "-s", "WORK/deep"],
            (0,),
            setup=deep_folders,
        ),
        Case(
            "a key file nobody may read",
            ["find", "-k", KEY_ID[:8], "-s", "WORK/locked"],
            (4,),
            setup=unreadable,
            unprivileged=True,
        ),
        Case(
            "a password pasted into --reason",
            ["find", "-k", KEY_ID[:8], "-s", keys, "-r", f"user read {PASSWORD}"],
            (2,),
        ),
        Case(
            "trail is /dev/null with require_reason",
            ["--config", "WORK/c.toml", "find", "-k", KEY_ID[:8], "-s", keys, "-r", "T-1"],
            (4,),
            setup=deep_and_config,
            env={"BITKEY_DIR_TRAIL": "/dev/null"},
        ),
        Case(
            "trail is a FIFO",
            ["find", "-k", KEY_ID[:8], "-s", keys],
            (0, 4),
            setup=fifo("trail.fifo"),
            env={"BITKEY_DIR_TRAIL": "WORK/trail.fifo"},
        ),
        Case(
            "trail is a link with require_reason",
            ["--config", "WORK/c.toml", "find", "-k", KEY_ID[:8], "-s", keys, "-r", "T-1"],
            (4,),
            setup=trail_link,
            env={"BITKEY_DIR_TRAIL": "WORK/link.jsonl"},
        ),
        Case("export -o -", ["export", "-s", keys, "-o", "-"], (0, 2), human=False),
        Case(
            "login --source NAME",
            ["--config", "WORK/c.toml", "login", "--source", "dc"],
            (3,),  # accepted, then: no keyring to store the password in
            setup=config(ad.format(port=1)),
        ),
        Case("rotate --wait 0", ["rotate", "-k", KEY_ID, "-s", keys, "--wait", "0"], (2,)),
        Case("rotate --wait -5", ["rotate", "-k", KEY_ID, "-s", keys, "--wait", "-5"], (2,)),
        Case("rotate --wait a year", ["rotate", "-k", KEY_ID, "-s", keys, "-w", "31536000"], (2,)),
        Case("rotate --wait not a number", ["rotate", "-k", KEY_ID, "-s", keys, "-w", "x"], (2,)),
        Case("find --wait without --rotate", ["find", "-k", KEY_ID, "-s", keys, "-w", "30"], (2,)),
        Case(
            "find --rotate --wait a year",
            ["find", "-k", KEY_ID, "-s", keys, "--rotate", "-w", "31536000"],
            (2,),
        ),
        Case(
            "rotate 8 digits of two hostile names",
            ["rotate", "-k", KEY_ID[:8], "-s", "WORK/twins"],
            (2,),
            setup=lambda work: [
                write(work / "twins" / f"PC\x1b[2J\u202e{n}" / "k.TXT", windows_key_file(key_id))
                for n, key_id in enumerate((KEY_ID, KEY_ID[:9] + "9D3A-4F5E-8B2C-ABCDEFABCDEF"))
            ],
        ),
        Case(
            "rights grant: a principal in no accepted form",
            ["--config", "WORK/c.toml", "rights", "grant", "--ou", "OU=a,DC=x", "-p", "*)(cn=*"],
            (2,),
            setup=config(ad.format(port=1)),
        ),
        Case(
            "rights grant: a principal with a terminal escape",
            ["--config", "WORK/c.toml", "rights", "grant", "--ou", "OU=a,DC=x", "-p", "X\\\x1b[2J"],
            (2,),
            setup=config(ad.format(port=1)),
        ),
        Case(
            "rights grant: no --ou",
            ["--config", "WORK/c.toml", "rights", "grant", "-p", "CORP\\helpdesk"],
            (2,),
            setup=config(ad.format(port=1)),
        ),
        Case(
            "rights show of a hung DC",
            ["--config", "WORK/c.toml", "rights", "show", "--ou", "OU=\u201c$(calc)\u201d,DC=x"],
            (4,),
            setup=config(ad.format(port=hung_port)),
            env={"BITKEY_DIR_PASSWORD": "not-a-real-secret"},
        ),
        Case(
            "rights revoke --what-if of a key file source",
            ["rights", "revoke", "-s", keys, "--ou", "OU=a,DC=x", "-p", "S-1-5-11", "--what-if"],
            (2,),
        ),
        Case("config is /dev/null", ["--config", "/dev/null", "find", "-k", KEY_ID[:8]], (2,)),
        Case(
            "config is /dev/null, source given",
            ["--config", "/dev/null", "find", "-k", KEY_ID[:8], "-s", keys],
            (0,),
            env={"BITKEY_DIR_CONFIG": "/dev/null"},
        ),
        Case("reads of key files only", ["reads", "-s", keys], (2,)),
        Case("reads --since 0001-01-01", ["reads", "--since", "0001-01-01"], (2,)),
        Case(
            "config with a password in a server URL",
            ["--config", "WORK/c.toml", "sources"],
            (2,),
            setup=config(ad.format(port=1).replace("ldaps://", "ldaps://admin:Hunter2Secret@")),
        ),
        *index_cases(keys),
        Case(
            "DCs from DNS without ca_file",
            ["--config", "WORK/c.toml", "find", "-k", KEY_ID[:8], "-s", "dc"],
            (2,),
            setup=config('[sources.dc]\ntype = "ad"\ndomain = "corp.example"\nuser = "a@b"\n'),
        ),
        Case(
            "discovery_allowed that is no DNS name",
            ["--config", "WORK/c.toml", "find", "-k", KEY_ID[:8], "-s", "dc"],
            (2,),
            setup=config(ad.format(port=1) + 'discovery_allowed = ["\x1b[2J*"]\n'),
        ),
        Case(
            "one BITKEY_DIR_PASSWORD for two accounts",
            ["--config", "WORK/c.toml", "doctor"],
            (2,),
            setup=config(
                ad.format(port=1)
                + ad.format(port=1)
                .replace("[sources.dc]", "[sources.dc2]")
                .replace("helpdesk@", "other@")
            ),
            env={"BITKEY_DIR_PASSWORD": "Not-Shown-4242"},
        ),
        *serve_cases(ad.format(port=1), config),
        *entra_serve_cases(config),
        Case("index refresh --how of no kind", ["index", "refresh", "--how", "sideways"], (2,)),
        Case(
            "index refresh --how full of a path given ad hoc",
            ["index", "refresh", "--how", "full", "-s", keys],
            (2,),
        ),
        Case(
            "batches_in_flight of a thousand",
            ["--config", "WORK/c.toml", "index", "refresh", "--how", "devices"],
            (2,),
            setup=config(ENTRA + "batches_in_flight = 1000\n"),
        ),
        Case(
            "batches_in_flight that is a word",
            ["--config", "WORK/c.toml", "index", "refresh"],
            (2,),
            setup=config(ENTRA + 'batches_in_flight = "many"\n'),
        ),
        Case(
            "index_full_age of forever",
            ["--config", "WORK/c.toml", "index", "status"],
            (2,),
            setup=config(ENTRA + 'index_full_age = "forever"\n'),
        ),
        Case(
            "index_devices_age of ten years",
            ["--config", "WORK/c.toml", "index", "refresh", "--due"],
            (2,),
            setup=config(ENTRA + 'index_devices_age = "3650d"\n'),
        ),
    ]


def index_cases(keys: str) -> list[Case]:
    """`BITKEY_DIR_INDEX` naming what is no index, or a damaged one: one line, never a
    traceback, and `index clear` removes nothing but an index."""
    index_at = {"BITKEY_DIR_INDEX": "WORK/index.sqlite3"}

    def fifo(work: Path) -> None:
        os.mkfifo(work / "index.sqlite3")

    def dangling(work: Path) -> None:
        (work / "index.sqlite3").symlink_to(work / "nowhere" / "index.sqlite3")

    def text(work: Path) -> None:
        write(work / "index.sqlite3", "meeting notes, not an index\n")

    def damaged(work: Path) -> None:
        write(work / "c.toml", f'[sources.share]\ntype = "file"\npath = ["{keys}"]\n')
        data = bytearray(b"SQLite format 3\x00" + bytes(84) + b"\x00garbage" * 512)
        data[68:72] = (0x424B4958).to_bytes(4, "big")  # the index's application ID
        (work / "index.sqlite3").write_bytes(bytes(data))

    share = ["--config", "WORK/c.toml"]
    return [
        Case("index clear: a FIFO", ["index", "clear"], (2,), setup=fifo, env=index_at),
        Case(
            "index clear: a dangling link", ["index", "clear"], (2,), setup=dangling, env=index_at
        ),
        Case(
            "index status: a dangling link", ["index", "status"], (2,), setup=dangling, env=index_at
        ),
        Case("index clear: a text file", ["index", "clear"], (2,), setup=text, env=index_at),
        Case(
            "find: the index a FIFO",
            ["find", "-k", KEY_ID[:8], "-s", keys],
            (0,),
            setup=fifo,
            env=index_at,
        ),
        Case(
            "find: a damaged index",
            [*share, "find", "-k", KEY_ID[:8], "-s", "share"],
            (0,),
            setup=damaged,
            env=index_at,
        ),
        Case(
            "index status: a damaged index",
            [*share, "index", "status"],
            (4,),
            setup=damaged,
            env=index_at,
        ),
        Case(
            "index refresh: a damaged index",
            [*share, "index", "refresh"],
            (4,),
            setup=damaged,
            env=index_at,
        ),
        # Only the command a command line names is built: what is a command's name and what
        # is not must not change what runs.
        Case("--config without its value", ["--config"], (2,)),
        Case("a command's name as --config's value", ["--config", "export"], (2,)),
        Case("a command after --", ["--", "export", "-o", "x.json"], (2,)),
        Case("a command's name with a terminal escape", ["exp\x1b[2Jort"], (2,)),
        Case("help after --config", ["--config", "--help", "export"], (2,)),
    ]


def serve_cases(ad: str, config: Callable[[str], Callable[[Path], None]]) -> list[Case]:
    """`serve` refusing what would serve keys badly, before it listens (none may start)."""
    serve = ad + '\n[serve]\nsign_in = ["dc"]\nsessions = "WORK/s.sqlite"\n'
    loop = ["--listen", "127.0.0.1:1"]

    def not_pem(work: Path) -> None:
        config(serve)(work)
        write(work / "cert.pem", "-----BEGIN CERTIFICATE-----\nnot one\n")

    def case(name: str, args: list[str], text: str = serve, **more: Any) -> Case:
        setup = more.pop("setup", config(text))
        return Case(
            f"serve: {name}", ["--config", "WORK/c.toml", "serve", *args], (2,), setup, **more
        )

    def pipe(work: Path) -> None:
        config(serve)(work)
        os.mkfifo(work / "fifo")

    tls = ["--tls-cert", "WORK/cert.pem", "--tls-key", "WORK/cert.pem"]
    fifo = "WORK/fifo"
    return [
        case("--listen that is no HOST:PORT", ["--listen", "nonsense"]),
        case("--listen port 99999", ["--listen", "127.0.0.1:99999"]),
        case("--listen of 100,000 characters", ["--listen", "a" * 100_000 + ":1"]),
        case("--listen with a terminal escape", ["--listen", "\x1b[2J\x1b]0;x\x07:1"]),
        case("plain HTTP on a non-loopback address", ["--listen", "0.0.0.0:1"]),
        case(
            "a missing certificate file",
            [*loop, "--tls-cert", "WORK/no.pem", "--tls-key", "WORK/no.key"],
        ),
        case(
            "a certificate that is /dev/zero",
            [*loop, "--tls-cert", "/dev/zero", "--tls-key", "/dev/zero"],
        ),
        case("a certificate that is not PEM", [*loop, *tls], setup=not_pem),
        case(
            "a FIFO as the certificate", [*loop, "--tls-cert", fifo, "--tls-key", fifo], setup=pipe
        ),
        case("--tls-cert without --tls-key", [*loop, "--tls-cert", "/etc/hostname"]),
        case("no [serve] table", loop, ad),
        case("sign_in naming no source", loop, ad + '\n[serve]\nsign_in = ["nope"]\n'),
        case("a syslog that is no URL", loop, serve + 'syslog = "host:514"\n'),
        case("an advanced list of numbers", loop, serve + "advanced = [1, 2]\n"),
        case("BITKEY_DIR_PASSWORD set", loop, env={"BITKEY_DIR_PASSWORD": "not-a-real-secret"}),
    ]


def entra_serve_cases(config: Callable[[str], Callable[[Path], None]]) -> list[Case]:
    """`serve` with an Entra sign-in source whose [serve] or source table is wrong or hostile."""
    cloud = (
        '[sources.cloud]\ntype = "entra"\ntenant_id = "contoso.onmicrosoft.com"\n'
        'client_id = "11111111-2222-3333-4444-555555555555"\nauth = "client-secret"\n'
    )
    serve = cloud + '\n[serve]\nsign_in = ["cloud"]\nsessions = "WORK/s.sqlite"\n'
    loop = ["--config", "WORK/c.toml", "serve", "--listen", "127.0.0.1:1"]

    def case(name: str, text: str) -> Case:
        return Case(f"serve, Entra: {name}", loop, (2,), setup=config(text))

    return [
        case("no public_url", serve),
        case("public_url with a path", serve + 'public_url = "https://h/portal"\n'),
        case("public_url in plain HTTP", serve + 'public_url = "http://helpdesk.corp"\n'),
        case("public_url with an escape", serve + 'public_url = "https://h\x1b[2J"\n'),
        case(
            "public_url of 100,000 characters", serve + f'public_url = "https://{"h" * 100_000}"\n'
        ),
        case("public_url with a port too big", serve + 'public_url = "https://h:999999"\n'),
        case("public_url with a password", serve + 'public_url = "https://u:Not-Shown-1@h"\n'),
        case(
            "a device-code source signing agents in",
            serve.replace('"client-secret"', '"device-code"') + 'public_url = "https://h"\n',
        ),
        case(
            "entra_rotation that is a word",
            serve + 'public_url = "https://h"\nentra_rotation = "yes\x1b[2J"\n',
        ),
        case(
            "entra_rotation with no Entra source signing in",
            '[sources.dc]\ntype = "ad"\ndomain = "corp.example.com"\n\n[serve]\n'
            'sign_in = ["dc"]\nsessions = "WORK/s.sqlite"\nentra_rotation = true\n',
        ),
    ]


@dataclass
class Outcome:
    case: Case
    code: int | None
    out: str
    err: str
    seconds: float
    problems: list[str]


def run(case: Case, timeout: float, tree: Path | None = None) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix="bitkey-hostile-"))
    home = work / "home"
    home.mkdir()
    try:
        case.setup(work)
        argv = [arg.replace("WORK", str(work)) for arg in case.argv]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_STATE_HOME": str(home / ".local/state"),
            "BITKEY_DIR_TRAIL": str(work / "trail.jsonl"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            **({"PYTHONPATH": str(tree)} if tree else {}),
            **{k: v.replace("WORK", str(work)) for k, v in case.env.items()},
        }
        prefix: list[str] = []
        if case.unprivileged and os.geteuid() == 0:
            drop = "-dac_override,-dac_read_search"
            prefix = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", "--"]
        command = [*prefix, str(CLI), *argv]
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [os.fsencode(part) for part in command],
                input=case.stdin,
                capture_output=True,
                env=env,
                timeout=timeout,
                check=False,
                cwd=work,
            )
        except subprocess.TimeoutExpired:
            return Outcome(case, None, "", "", timeout, ["hang"])
        seconds = time.monotonic() - started
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        problems = []
        if "Traceback" in err:
            problems.append("traceback")
        if proc.returncode == 70:
            problems.append("exit 70")
        elif proc.returncode not in case.expected:
            problems.append(f"exit {proc.returncode}, expected {case.expected}")
        shown = err + (out if case.human else "")
        if UNSAFE.search(shown.replace("\r\x1b[K", "")):
            problems.append("raw control or bidi characters in output")
        if case.csv_file:
            text = out if case.csv_file == "-" else _read(case.csv_file.replace("WORK", str(work)))
            cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
            if any(cell.startswith(FORMULA_START) for cell in cells):
                problems.append("a CSV cell starts a formula")
        if argv[:1] == ["export"] and "-" in argv and (work / "-").exists():
            problems.append("wrote a clear-text file named '-'")
        return Outcome(case, proc.returncode, out, err, seconds, problems)
    finally:
        # rm, not shutil.rmtree: the 1,200 folders deep case is too deep for its recursion.
        subprocess.run(["/bin/chmod", "-R", "u+rwx", str(work)], check=False)
        subprocess.run(["/bin/rm", "-rf", str(work)], check=False)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--tree", type=Path, help="run the bitkey_dir of this checkout (an older commit, say)"
    )
    options = parser.parse_args()
    hung = NeverAnswers()
    outcomes = [run(case, options.timeout, options.tree) for case in cases(hung.port)]
    for outcome in outcomes:
        if outcome.problems or options.verbose:
            status = "; ".join(outcome.problems) or "fine"
            print(f"{outcome.case.name:<45} {outcome.seconds:6.1f} s  {status}")
            if options.verbose and outcome.problems:
                print("    " + outcome.err.strip().splitlines()[-1][:150] if outcome.err else "")
    totals = {
        "inputs": len(outcomes),
        "traceback": sum("traceback" in o.problems for o in outcomes),
        "hang": sum("hang" in o.problems for o in outcomes),
        "exit 70": sum("exit 70" in o.problems for o in outcomes),
        "wrong exit code": sum(
            any(p.startswith("exit ") and p != "exit 70" for p in o.problems) for o in outcomes
        ),
        "raw control/bidi shown": sum(
            any("raw control" in p for p in o.problems) for o in outcomes
        ),
        "CSV formula": sum(any("formula" in p for p in o.problems) for o in outcomes),
        "fine": sum(not o.problems for o in outcomes),
    }
    print()
    print(" | ".join(totals))
    print(" | ".join(str(value) for value in totals.values()))


if __name__ == "__main__":
    main()
