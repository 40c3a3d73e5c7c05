"""Start the labs on loopback, for trying bitkey-dir: a Samba AD DC and an emulator of Entra ID
(Microsoft Graph and the identity platform), each with sample BitLocker keys.

``examples/lab/start`` starts the AD lab (as root: Samba binds ports 88, 389 and 636);
``--entra`` the Entra lab alone (no root: it binds a high port); ``--ad --entra`` both. It
writes ``examples/lab/lab.toml`` with their sources and keeps them running until Ctrl-C,
Ctrl-D or SIGTERM.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import importlib.util
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from examples.lab.graph_emulator import GraphEmulator
    from examples.lab.samba_dc import SambaDC

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parent.parent


class LabError(Exception):
    """A lab cannot start: the message says why and what to do."""


def _shown(path: Path) -> str:
    """A path as the user can paste it: relative to the current folder when inside it."""
    try:
        return shlex.quote(str(path.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(path))


def _require(*modules: str) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        names = " ".join(missing)
        raise LabError(f"the lab needs the Python packages {names}: .venv/bin/pip install {names}")


@contextmanager
def _ad_lab(work: Path, host: str | None) -> Iterator[SambaDC]:
    _require("ldap3", "cryptography")
    from examples.lab import ad
    from examples.lab.samba_dc import SambaDC, SambaDCError, free_loopback_host

    shutil.rmtree(work / "dc", ignore_errors=True)
    try:
        host = host or free_loopback_host([f"127.0.0.{n}" for n in range(53, 64)])
        print(f"Starting the lab DC on {host} (the first start provisions: ~10 s)...", flush=True)
        dc = SambaDC.start(
            work / "dc",
            host=host,
            realm=ad.REALM,
            domain=ad.DOMAIN,
            template_cache=work / "templates",
        )
    except SambaDCError as exc:
        raise LabError(f"cannot start the lab DC: {exc}") from exc
    try:
        dc.seed(ad.SAMPLE)
        yield dc
    finally:
        print("Stopping the lab DC.", file=sys.stderr)
        dc.stop()


@contextmanager
def _entra_lab(work: Path, port: int) -> Iterator[GraphEmulator]:
    _require("cryptography")
    from examples.lab import entra
    from examples.lab.graph_emulator import GraphEmulator

    shutil.rmtree(work / "entra", ignore_errors=True)

    def emulator(at: int) -> GraphEmulator:
        return GraphEmulator(
            work / "entra", tenant_id=entra.TENANT_ID, tenant_domain=entra.TENANT_DOMAIN, port=at
        )

    print(f"Starting the Entra lab on 127.0.0.1:{port}...", flush=True)
    try:
        graph = emulator(port).start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise LabError(f"cannot start the Entra lab on port {port}: {exc}") from exc
        graph = emulator(0).start()
        print(f"Port {port} is taken: the Entra lab uses {graph.port} instead.", flush=True)
    stopping = threading.Event()
    try:
        # How long a client waits between two polls for a device code's approval.
        graph.device_code_interval = 2
        entra.seed(graph)
        entra.approve_device_codes(graph, stopping)
        yield graph
    finally:
        stopping.set()
        print("Stopping the Entra lab.", file=sys.stderr)
        graph.stop()


def _config(dc: SambaDC | None, graph: GraphEmulator | None) -> str:
    from examples.lab import ad, entra

    # `find` without --source asks the AD lab when there is one: its instructions rely on it.
    default = ad.SOURCE if dc is not None else entra.SOURCE
    parts = [
        "# Written by examples/lab/start for the lab; rewritten on every start.\n",
        f'[defaults]\nsources = ["{default}"]\n',
    ]
    if dc is not None:
        parts.append(ad.config(dc))
    if graph is not None:
        parts.append(entra.config(graph))
    return "\n".join(parts)


def _instructions(dc: SambaDC | None, graph: GraphEmulator | None, config: Path) -> str:
    from examples.lab import ad, entra

    cli = REPO / ".venv" / "bin" / "bitkey-dir"
    bitkey = f"{_shown(cli) if cli.exists() else 'bitkey-dir'} --config {_shown(config)}"
    parts = []
    if dc is not None:
        parts.append(ad.instructions(dc, _shown(config), bitkey))
    if graph is not None:
        parts.append(entra.instructions(graph, _shown(config), bitkey))
    parts.append("\nStop the lab with Ctrl-C (or Ctrl-D on a terminal, or SIGTERM).\n")
    return "".join(parts)


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait_for_the_end() -> None:
    if sys.stdin.isatty():
        while sys.stdin.readline():  # until Ctrl-D
            pass
    else:  # under nohup, a script or a service manager: until a signal
        while True:
            signal.pause()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ad", action="store_true", help="start the AD lab (the default)")
    parser.add_argument("--entra", action="store_true", help="start the Entra lab")
    parser.add_argument(
        "--host", help="the DC's loopback address (default: 127.0.0.53 or a free one)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8443,
        help="the Entra lab's port on 127.0.0.1 (default: %(default)s, or a free one if taken)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bitkey-dir-lab",
        help="the labs' files and the DC's provisioned template (default: %(default)s)",
    )
    parser.add_argument("--config", type=Path, default=HERE / "lab.toml", help="config to write")
    args = parser.parse_args()
    with_ad = args.ad or not args.entra
    if with_ad and os.geteuid() != 0:
        print(
            "The lab DC needs root (ports 88, 389, 636): sudo examples/lab/start"
            + (" --ad --entra" if args.entra else "")
            + "; the Entra lab alone does not: examples/lab/start --entra",
            file=sys.stderr,
        )
        return 2
    work: Path = args.workdir.absolute()
    work.mkdir(mode=0o755, exist_ok=True)
    if work.is_symlink() or work.stat().st_uid != os.geteuid():
        print(f"{work} is not a folder of ours; choose another --workdir", file=sys.stderr)
        return 2
    with open(work / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"A lab is already running from {work}.", file=sys.stderr)
            return 2
        signal.signal(signal.SIGTERM, _stop_on_signal)
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # nohup means: keep running
            signal.signal(signal.SIGHUP, _stop_on_signal)
        try:
            with ExitStack() as labs:
                dc = labs.enter_context(_ad_lab(work, args.host)) if with_ad else None
                graph = labs.enter_context(_entra_lab(work, args.port)) if args.entra else None
                config: Path = args.config.resolve()
                config.write_text(_config(dc, graph), encoding="utf-8")
                print(_instructions(dc, graph, config), flush=True)
                _wait_for_the_end()
        except LabError as exc:
            print(f"Cannot start the lab: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
