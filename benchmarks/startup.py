"""Start-up and file-lookup figures for bitkey-dir, beside a minimal Typer app on this machine.

    .venv/bin/python benchmarks/startup.py [--runs 21] [--files 10000]

Prints the median and best wall time of whole processes (start to exit) for:
``--version``, ``--help`` and ``find --key-id`` on examples/keys, each next to a minimal Typer
app doing the same (the framework's own floor); whether start-up imported any directory
client; and ``find --key-id`` over a generated folder of N key files in mixed encodings.
"""

from __future__ import annotations

import argparse
import codecs
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "examples" / "keys"
CLI = Path(sys.executable).with_name("bitkey-dir")

MINIMAL_APP = '''
import re
from pathlib import Path
import typer

app = typer.Typer(add_completion=False)

def _version(value: bool) -> None:
    if value:
        typer.echo("minimal 0")
        raise typer.Exit()

@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True)):
    """A bare app."""

@app.command()
def find(key_id: str = typer.Option(..., "--key-id"), source: str = typer.Option(..., "--source")):
    """Scan files for an ID: the least any file lookup must do."""
    pattern = re.compile(re.escape(key_id), re.IGNORECASE)
    for path in sorted(Path(source).rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            text = data.decode("utf-16") if data[:2] in (b"\\xff\\xfe", b"\\xfe\\xff") else (
                data.decode("utf-8", "replace"))
            if pattern.search(text):
                typer.echo(path)

app()
'''

WIN8 = (
    "BitLocker Drive Encryption recovery key\n\nIdentifier:\n\n\t{id}\n\n"
    "Recovery Key:\n\n\t{password}\n\n"
)


def timed(argv: list[str], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples)


def heavy_imports(argv: list[str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, check=False
    )
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    return sorted(names & {"ldap3", "msal", "msgraph", "kiota_abstractions", "azure"})


def generate(folder: Path, count: int) -> str:
    rnd = random.Random(7)
    encodings = ["utf-16", "utf-8-sig", "utf-8", "utf-16-be-bom"]
    wanted = ""
    for n in range(count):
        key_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4)).upper()
        password = "-".join(f"{11 * rnd.randrange(65536):06d}" for _ in range(8))
        text = WIN8.format(id=key_id, password=password).replace("\n", "\r\n")
        encoding = encodings[n % len(encodings)]
        data = (
            codecs.BOM_UTF16_BE + text.encode("utf-16-be")
            if encoding == "utf-16-be-bom"
            else text.encode(encoding)
        )
        sub = folder / f"site{n % 50:02d}" / f"PC-{n:05d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"BitLocker Recovery Key {key_id}.TXT").write_bytes(data)
        if n == count // 2:
            wanted = key_id[:8]
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        minimal = Path(tmp) / "minimal.py"
        minimal.write_text(MINIMAL_APP)
        floor = [sys.executable, str(minimal)]
        cases = [
            ("--version", ["--version"]),
            ("--help", ["--help"]),
            ("find --key-id (samples)", ["find", "--key-id", "063EA4E1", "--source", str(SAMPLES)]),
        ]
        print(f"{'command':<26}{'bitkey-dir':>22}{'minimal Typer app':>22}{'difference':>14}")
        print(f"{'':<26}{'median / best (ms)':>22}{'median / best (ms)':>22}{'median (ms)':>14}")
        for label, argv in cases:
            ours = timed([str(CLI), *argv], args.runs)
            base = timed([*floor, *argv], args.runs)
            print(
                f"{label:<26}{ours[0] * 1000:>13.0f} / {ours[1] * 1000:<6.0f}"
                f"{base[0] * 1000:>13.0f} / {base[1] * 1000:<6.0f}"
                f"{(ours[0] - base[0]) * 1000:>+12.0f}"
            )
        for label, argv in cases[:2]:
            found = heavy_imports(["-m", "bitkey_dir", *argv])
            print(f"directory clients imported by {label}: {', '.join(found) or 'none'}")

        folder = Path(tmp) / "share"
        start = time.perf_counter()
        wanted = generate(folder, args.files)
        print(f"\ngenerated {args.files} key files in {time.perf_counter() - start:.1f} s")
        argv = ["find", "--key-id", wanted, "--source", str(folder), "--format", "key"]
        ours = timed([str(CLI), *argv], 5)
        base = timed([*floor, "find", "--key-id", wanted, "--source", str(folder)], 5)
        print(
            f"find --key-id over {args.files} files: bitkey-dir median {ours[0]:.2f} s "
            f"(best {ours[1]:.2f} s); minimal scan median {base[0]:.2f} s"
        )


if __name__ == "__main__":
    main()
