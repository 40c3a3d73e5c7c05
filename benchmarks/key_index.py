"""The Key ID index at scale, against the HTTPS Graph emulator (50 ms per request, 20 keys a page).

    .venv/bin/python benchmarks/key_index.py [--keys 100000] [--tenants 50] [--per-tenant 2000]
        [--latency 0.05] [--runs 7] [--skip-cold] [--in-flight 8]

``--tenants 0`` skips the second estate.

Two estates, each looked up with `bitkey-dir find --key-id <8 digits>` as whole processes:

1. one tenant with ``--keys`` generated keys (2 a device): the lookup without an index (cold:
   every page of the tenant's keys is listed); the three refreshes, each into its own index
   file: `index refresh --how full` (the key listing one page after another, its floor the
   pages times the latency), `--how devices` (every device's keys, 20 devices a $batch,
   ``batches_in_flight`` at once), then `--how changes` on that index with nothing changed;
   both indexes compared row by row (key IDs, devices, names, dates); then the lookup with
   the index (warm, median of ``--runs``);
2. ``--tenants`` tenants of ``--per-tenant`` keys each behind one multi-tenant app
   (``tenant_ids``): `index refresh` of every tenant, then the warm lookup of a key in the
   last tenant.

The app signs in with a client secret after `bitkey-dir login` (the tests' file keyring), so
a lookup's token comes from the encrypted token cache as it would on a helpdesk machine.
Wall times are process start to exit; requests are what the emulator served (sign-in
included).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.keyring_env import file_keyring_env, login  # noqa: E402
from examples.lab.graph_emulator import GraphEmulator  # noqa: E402

CLI = Path(sys.executable).with_name("bitkey-dir")
INDEX_ENV = "BITKEY_DIR_INDEX"
TIME = Path("/usr/bin/time")
SECRET = "bench-secret"
ROLES = ["BitlockerKey.Read.All", "Device.Read.All"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--per-tenant", type=int, default=2_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--page", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-cold", action="store_true", help="skip the no-index lookup")
    parser.add_argument("--in-flight", type=int, default=8, help="batches_in_flight")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bitkey-index-bench-"))
    with GraphEmulator(work / "graph") as graph:
        graph.recovery_keys_page_size = args.page
        print(
            f"Graph emulator: {args.latency * 1000:.0f} ms per request, {args.page} keys a "
            f"page; lookups are whole processes, wall time from start to exit\n"
        )
        big_tenant(graph, work, args)
        if args.tenants:
            print()
            many_tenants(graph, work, args)


def big_tenant(graph: GraphEmulator, work: Path, args: argparse.Namespace) -> None:
    app = graph.add_app(public_client=False, secret=SECRET, app_roles=ROLES)
    graph.add_generated_keys(args.keys, seed=1, keys_per_device=2)
    wanted = graph.generated_key_id(args.keys * 2 // 3)
    config = write_config(
        work / "big.toml", graph, app.client_id, [graph.tenant_id], args.in_flight
    )
    env = environment(work / "big-home")
    login(CLI, config, "cloud", SECRET, env)
    graph.latency = args.latency
    pages = -(-args.keys // args.page)
    print(
        f"1. one tenant, {args.keys:,} keys on {-(-args.keys // 2):,} devices; looking up "
        f"{wanted[:8]}; the full listing's floor: {pages:,} pages x "
        f"{args.latency * 1000:.0f} ms = {pages * args.latency:.1f} s"
    )
    if not args.skip_cold:
        report(
            "find, no index (cold)",
            [run(graph, config, env, "find", "-k", wanted[:8], "--no-index")],
        )
    full, by_device = work / "full.sqlite3", work / "by-device.sqlite3"
    refresh = ("index", "refresh", "--how")
    full_env, device_env = {**env, INDEX_ENV: str(full)}, {**env, INDEX_ENV: str(by_device)}
    listed = run(graph, config, full_env, *refresh, "full")
    report("index refresh --how full (page by page)", [listed], rss=True)
    fanned = run(graph, config, device_env, *refresh, "devices")
    report(f"index refresh --how devices ({args.in_flight} batches)", [fanned], rss=True)
    print(
        f"   {'':<40} {listed.seconds / fanned.seconds:8.1f}x faster; "
        f"{fanned.seconds / (pages * args.latency):.2f} of the floor; same rows: "
        f"{same_rows(full, by_device)}",
        flush=True,
    )
    quiet = run(graph, config, device_env, *refresh, "changes")
    report("index refresh --how changes (none)", [quiet], rss=True)
    print(
        f"   {'':<40} {quiet.seconds / listed.seconds:8.3f} of the full listing's time, "
        f"{quiet.seconds / fanned.seconds:.3f} of the refresh by device",
        flush=True,
    )
    again = run(graph, config, device_env, *refresh, "devices")
    report("index refresh --how devices (cursor held)", [again], rss=True)
    print(
        f"   {'':<40} {again.seconds / (pages * args.latency):8.2f} of the floor; same rows: "
        f"{same_rows(full, by_device)}",
        flush=True,
    )
    env = device_env
    warm = [run(graph, config, env, "find", "-k", wanted[:8]) for _ in range(args.runs)]
    report(f"find with the index (warm, {args.runs} runs)", warm)
    graph.latency = 0


def many_tenants(graph: GraphEmulator, work: Path, args: argparse.Namespace) -> None:
    app = graph.add_app(
        "bitkey-dir msp", public_client=False, secret=SECRET, app_roles=ROLES, multi_tenant=True
    )
    tenants = []
    for n in range(args.tenants):
        tenant = graph.add_tenant(f"customer{n:03d}.onmicrosoft.com")
        tenant.consent(app, app_roles=ROLES)
        tenant.add_generated_keys(args.per_tenant, seed=100 + n, keys_per_device=2)
        tenant.recovery_keys_page_size = args.page
        tenants.append(tenant)
    wanted = tenants[-1].generated_key_id(args.per_tenant // 2)
    config = write_config(
        work / "msp.toml", graph, app.client_id, [tenant.tenant_id for tenant in tenants]
    )
    env = environment(work / "msp-home")
    login(CLI, config, "cloud", SECRET, env)
    graph.latency = args.latency
    for tenant in tenants:
        tenant.latency = args.latency
    total = args.tenants * args.per_tenant
    print(
        f"2. {args.tenants} tenants x {args.per_tenant:,} keys ({total:,}); looking up {wanted[:8]}"
    )
    report("index refresh", [run(graph, config, env, "index", "refresh")], rss=True)
    warm = [run(graph, config, env, "find", "-k", wanted[:8]) for _ in range(args.runs)]
    report(f"find with the index (warm, {args.runs} runs)", warm)


class Ran:
    def __init__(self, seconds: float, rss_kib: int, requests: int, items: int) -> None:
        self.seconds = seconds
        self.rss_kib = rss_kib
        self.requests = requests  # HTTP requests
        self.items = items  # requests inside $batch requests


def run(graph: GraphEmulator, config: Path, env: dict[str, str], *args: str) -> Ran:
    graph.clear_requests()
    # The peak RSS a child of this (large) process reports starts at this process's own:
    # GNU time, a small process, runs the command and reports its peak alone.
    measured = Path(tempfile.mkstemp(prefix="bitkey-rss-")[1])
    timing = ["/usr/bin/time", "-f", "%M", "-o", str(measured)] if TIME.exists() else []
    start = time.perf_counter()
    process = subprocess.Popen(
        [*timing, str(CLI), "--config", str(config), *args, "-f", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {process.returncode}: {errors.decode()}")
    served = graph.requests
    items = sum(1 for record in served if record.via_batch)
    peak = int(measured.read_text().split()[-1]) if timing else usage.ru_maxrss
    measured.unlink()
    return Ran(seconds, peak, len(served) - items, items)


def report(label: str, runs: list[Ran], *, rss: bool = False) -> None:
    seconds = [ran.seconds for ran in runs]
    line = f"   {label:<40} {statistics.median(seconds):8.2f} s"
    if len(runs) > 1:
        line += f" (best {min(seconds):.2f})"
    line += f"  {runs[-1].requests:>6,} requests"
    if runs[-1].items:
        line += f" ({runs[-1].items:,} in $batch)"
    if rss:
        line += f"  peak RSS {runs[-1].rss_kib / 1024:.0f} MiB"
    print(line, flush=True)


def same_rows(one: Path, other: Path) -> str:
    """Whether two index files hold the same keys, devices, names and dates."""
    query = "SELECT key_id, computer, lower(device_id), created, deleted FROM keys"
    with sqlite3.connect(one) as a, sqlite3.connect(other) as b:
        left, right = set(a.execute(query)), set(b.execute(query))
    if left == right:
        return f"yes ({len(left):,} keys)"
    return f"NO ({len(left - right):,} only in the first, {len(right - left):,} in the second)"


def write_config(
    path: Path, graph: GraphEmulator, client_id: str, tenants: list[str], in_flight: int = 8
) -> Path:
    tenant_line = (
        f'tenant_id = "{tenants[0]}"'
        if len(tenants) == 1
        else "tenant_ids = [" + ", ".join(f'"{t}"' for t in tenants) + "]"
    )
    path.write_text(
        '[defaults]\nsources = ["cloud"]\n[keyring]\nallow_plaintext = true\n'
        f'[sources.cloud]\ntype = "entra"\n{tenant_line}\nclient_id = "{client_id}"\n'
        f'auth = "client-secret"\nauthority_host = "{graph.base_url}"\n'
        f'graph_url = "{graph.graph_url}"\nca_file = "{graph.ca_file}"\n'
        f"batches_in_flight = {in_flight}\n",
        encoding="utf-8",
    )
    return path


def environment(home: Path) -> dict[str, str]:
    base = {
        **os.environ,
        "BITKEY_DIR_TRAIL": str(home / "trail.jsonl"),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    return file_keyring_env(base, home)


if __name__ == "__main__":
    main()
