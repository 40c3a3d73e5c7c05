"""Entra ID lookups against the HTTPS Graph emulator with 50 ms of latency per request.

    .venv/bin/python benchmarks/entra_lookup.py [--runs 11] [--latency 0.05]

Counts the Graph requests and identity-platform requests each ``bitkey-dir find`` makes and
the process-start-to-exit wall time (median), signing in as an app with a client secret,
twice over:

- without a keyring (keyring's ``fail`` backend, the secret in the environment): every run
  fetches the OpenID discovery document and a token;
- after ``bitkey-dir login``, with the tests' file-backed keyring selected through
  keyringrc.cfg: the token and discovery answer come from the encrypted token cache. A real
  keyring (Secret Service over D-Bus, Keychain) adds its own per-call cost, not measured here.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bitkey-entra-bench-"))
    with GraphEmulator(work / "graph") as graph:
        app = graph.add_app(
            public_client=False,
            secret="bench-secret",
            app_roles=["BitlockerKey.Read.All", "Device.Read.All"],
        )
        target = graph.add_device("PC-0042")
        keys = [graph.add_recovery_key(target) for _ in range(3)]
        for n in range(200):  # other devices' keys, so that a prefix lookup lists pages
            graph.add_recovery_key(graph.add_device(f"PC-{n:04d}-X"))
        graph.latency = args.latency
        config = work / "entra.toml"
        config.write_text(
            f'[defaults]\nsources = ["cloud"]\n[keyring]\nallow_plaintext = true\n'
            f'[sources.cloud]\ntype = "entra"\n'
            f'tenant_id = "{graph.tenant_id}"\nclient_id = "{app.client_id}"\n'
            f'auth = "client-secret"\nauthority_host = "{graph.base_url}"\n'
            f'graph_url = "{graph.graph_url}"\nca_file = "{graph.ca_file}"\n'
        )
        base_env = {
            **os.environ,
            "BITKEY_DIR_TRAIL": str(work / "trail.jsonl"),
            "NO_PROXY": "127.0.0.1,localhost",
        }
        without_keyring = {
            **base_env,
            "BITKEY_DIR_CLIENT_SECRET": "bench-secret",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        signed_in = file_keyring_env(base_env, work / "home")
        login(CLI, config, "cloud", "bench-secret", signed_in)
        cases = [
            ("find --key-id (full GUID)", ["--key-id", keys[0].id]),
            ("find --key-id (8 digits)", ["--key-id", keys[0].id[:8]]),
            ("find --computer PC-0042", ["--computer", "PC-0042"]),
        ]
        print(
            f"Graph emulator with {args.latency * 1000:.0f} ms latency per request, "
            f"{len(graph.recovery_keys)} keys in the tenant, {args.runs} runs each\n"
        )
        for title, env in (("no keyring", without_keyring), ("after login", signed_in)):
            print(f"{title}:")
            print(f"  {'lookup':<28}{'Graph requests':>16}{'sign-in requests':>18}{'wall ms':>18}")
            print(f"  {'':<28}{'':>16}{'':>18}{'median / best':>18}")
            for label, query in cases:
                _measure(graph, config, env, label, query, args.runs)
            print()


def _measure(
    graph: GraphEmulator,
    config: Path,
    env: dict[str, str],
    label: str,
    query: list[str],
    runs: int,
) -> None:
    samples = []
    graph_requests = sign_in = 0
    for _ in range(runs):
        graph.clear_requests()
        start = time.perf_counter()
        proc = subprocess.run(
            [str(CLI), "--config", str(config), "find", *query, "-f", "key"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{label}: exit {proc.returncode}: {proc.stderr}")
        graph_requests = graph.count(r"^/v1\.0/", via_batch=False)
        sign_in = len(graph.requests) - graph.count(r"^/v1\.0/")
    print(
        f"  {label:<28}{graph_requests:>16}{sign_in:>18}"
        f"{statistics.median(samples) * 1000:>11.0f} / {min(samples) * 1000:<5.0f}"
    )


if __name__ == "__main__":
    main()
