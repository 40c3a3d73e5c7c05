"""Entra ID export of 2,000 keys against the Graph emulator with 50 ms latency and 429s.

    .venv/bin/python benchmarks/entra_export.py [--keys 2000] [--latency 0.05] [--throttled 40]

Runs ``bitkey-dir export`` (app-only sign-in) while the emulator answers ``--throttled`` of the
``$batch`` items with 429 and a Retry-After, then checks that the file holds every key exactly
once with its right password. Beside it: one sequential ``GET …/recoveryKeys/{id}?$select=key``
per key, the naive way, measured on 100 keys and scaled to the whole tenant (running it for
2,000 keys would take minutes and prove nothing more).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.lab.graph_emulator import GraphEmulator  # noqa: E402

CLI = Path(sys.executable).with_name("bitkey-dir")
SAMPLE = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--throttled", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bitkey-entra-export-"))
    with GraphEmulator(work / "graph") as graph:
        app = graph.add_app(
            public_client=False,
            secret="bench-secret",
            app_roles=["BitlockerKey.Read.All", "Device.Read.All"],
        )
        devices = [graph.add_device(f"PC-{n:05d}") for n in range(args.keys * 10 // 14)]
        keys = [graph.add_recovery_key(devices[n % len(devices)]) for n in range(args.keys)]
        graph.latency = args.latency
        config = work / "entra.toml"
        config.write_text(
            f'[sources.cloud]\ntype = "entra"\ntenant_id = "{graph.tenant_id}"\n'
            f'client_id = "{app.client_id}"\nauth = "client-secret"\n'
            f'authority_host = "{graph.base_url}"\ngraph_url = "{graph.graph_url}"\n'
            f'ca_file = "{graph.ca_file}"\n'
        )
        env = {
            **os.environ,
            "BITKEY_DIR_CLIENT_SECRET": "bench-secret",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        graph.add_fault(
            r"/recoveryKeys/", status=429, times=args.throttled, retry_after=1, in_batch=True
        )
        output = work / "export.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [str(CLI), "--config", str(config), "export", "--source", "cloud", "-o", str(output)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"export: exit {proc.returncode}: {proc.stderr}")
        exported = json.loads(output.read_text())["keys"]
        expected = {key.id.upper(): key.key for key in keys}
        got = [(record["key_id"], record["recovery_password"]) for record in exported]
        lost = len(set(expected) - {key_id for key_id, _ in got})
        doubled = len(got) - len({key_id for key_id, _ in got})
        wrong = sum(1 for key_id, password in got if expected.get(key_id) != password)
        throttled = graph.count(r"/recoveryKeys/", method="GET") - len(keys)
        batches = graph.count(r"^/v1\.0/\$batch$")
        sequential = _sequential_sample(graph, app.client_id, keys[:SAMPLE]) * len(keys) / SAMPLE

    print(
        f"Graph emulator, {args.latency * 1000:.0f} ms latency per request, {len(keys)} keys "
        f"on {len(devices)} devices, {args.throttled} batch items answered 429 (Retry-After 1)\n"
    )
    print(
        f"bitkey-dir export            {wall:6.2f} s wall, "
        f"{after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime:5.2f} s CPU, "
        f"peak RSS {after.ru_maxrss / 1024:.0f} MB"
    )
    print(f"  $batch requests            {batches}")
    print(f"  item retries after 429     {throttled}")
    print(
        f"  keys in the file           {len(got)} (lost {lost}, doubled {doubled}, wrong {wrong})"
    )
    print(f"one GET per key, sequential  {sequential:6.2f} s (measured on {SAMPLE}, scaled)")
    print(f"speed-up                     {sequential / wall:6.1f}x")


def _sequential_sample(graph: GraphEmulator, client_id: str, keys: list) -> float:  # type: ignore[type-arg]
    """Seconds for one GET per key, one after another, over a kept-alive HTTPS connection."""
    app = graph.apps[client_id]
    token = graph.mint_access_token(app, roles=["BitlockerKey.Read.All"])
    context = ssl.create_default_context(cafile=str(graph.ca_file))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    start = time.perf_counter()
    for key in keys:
        request = urllib.request.Request(  # noqa: S310 - the emulator's https URL
            f"{graph.graph_v1}/informationProtection/bitlocker/recoveryKeys/{key.id}?$select=key",
            headers={"Authorization": f"Bearer {token}"},
        )
        with opener.open(request, timeout=10) as answer:
            answer.read()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
