"""Active Directory lookups against the lab DC, beside ldapsearch doing the same search.

    sudo .venv/bin/python benchmarks/ad_lookup.py [--runs 21]

Starts the lab's Samba AD DC (examples/lab) on a free loopback address, then measures
process-start-to-exit wall time (median and best) of ``bitkey-dir find`` by full Key ID, by
the 8 digits of the recovery screen and by computer name, as the delegated helpdesk account,
with the LDAP operations each used (from ``-v``), the password coming from the environment;
and once more by full Key ID with the password stored by ``bitkey-dir login`` in a keyring.
``ldapsearch`` runs the first search of each lookup with the same filter over the same LDAPS
connection setup, as the floor.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.keyring_env import file_keyring_env, login  # noqa: E402
from bitkey_dir.core.model import ComputerName, KeyId  # noqa: E402
from bitkey_dir.sources.ad.filters import computer_filter, key_id_filter  # noqa: E402
from examples.lab.ad import HELPDESK, PC_0042_NEW, SAMPLE  # noqa: E402
from examples.lab.samba_dc import SambaDC, free_loopback_host  # noqa: E402

CLI = Path(sys.executable).with_name("bitkey-dir")
OPERATIONS = re.compile(r"(\d+) bind, (\d+) search, (\d+) extended")


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float, str]:
    samples, stderr = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:4])}... exited {proc.returncode}: {proc.stderr}")
        stderr = proc.stderr
    return statistics.median(samples), min(samples), stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the lab DC needs root (ports 88, 389, 636)")

    work = Path(tempfile.mkdtemp(prefix="bitkey-ad-bench-"))
    host = free_loopback_host([f"127.0.0.{n}" for n in range(64, 80)])
    dc = SambaDC.start(
        work / "dc",
        host=host,
        realm="CORP.EXAMPLE.COM",
        domain="CORP",
        template_cache=Path(tempfile.gettempdir()) / "bitkey-dir-lab" / "templates",
    )
    try:
        dc.seed(SAMPLE)
        user = f"{HELPDESK.name}@{dc.realm.lower()}"
        config = work / "bench.toml"
        config.write_text(
            f'[defaults]\nsources = ["lab"]\n[keyring]\nallow_plaintext = true\n'
            f'[sources.lab]\ntype = "ad"\n'
            f'servers = ["{dc.ldaps_url}"]\n'
            f'ca_file = "{dc.ca_file}"\nbase_dn = "{dc.base_dn}"\nuser = "{user}"\n'
        )
        env = {
            **os.environ,
            "BITKEY_DIR_PASSWORD": HELPDESK.password,
            "LDAPTLS_CACERT": str(dc.ca_file),
        }
        env["BITKEY_DIR_TRAIL"] = str(work / "trail.jsonl")
        full = str(uuid.UUID(PC_0042_NEW.key_id)).upper()
        cases = [
            ("find --key-id (full GUID)", ["--key-id", full], key_id_filter(KeyId.parse(full))),
            (
                "find --key-id (8 digits)",
                ["--key-id", full[:8]],
                key_id_filter(KeyId.parse(full[:8])),
            ),
            (
                "find --computer PC-0042",
                ["--computer", "PC-0042"],
                computer_filter(ComputerName.parse("PC-0042")),
            ),
        ]
        print(f"lab DC {dc.ldaps_url}, {args.runs} runs each, as {user}\n")
        print(
            f"{'lookup':<28}{'bitkey-dir ms':>16}{'LDAP operations':>28}"
            f"{'ldapsearch ms':>16}{'ratio':>7}"
        )
        print(f"{'':<28}{'median / best':>16}{'':>28}{'median / best':>16}")
        for label, query, ldap_filter in cases:
            argv = [str(CLI), "-v", "--config", str(config), "find", *query, "-f", "key"]
            ours = timed(argv, env, args.runs)
            found = OPERATIONS.search(ours[2])
            ops = f"{found[1]} bind, {found[2]} search" if found else "?"
            if found and int(found[3]):
                ops += f", {found[3]} extended"
            reference = [
                "ldapsearch", "-LLL", "-x", "-H", dc.ldaps_url, "-D", user,
                "-w", HELPDESK.password, "-b", dc.base_dn, "-E", "pr=1000/noprompt",
                ldap_filter, "msFVE-RecoveryPassword",
            ]  # fmt: skip
            floor = timed(reference, env, args.runs)
            print(
                f"{label:<28}{ours[0] * 1000:>8.0f} / {ours[1] * 1000:<5.0f}{ops:>28}"
                f"{floor[0] * 1000:>8.0f} / {floor[1] * 1000:<5.0f}{ours[0] / floor[0]:>7.1f}"
            )
        keyring_env = file_keyring_env({**env, "LDAPTLS_CACERT": str(dc.ca_file)}, work / "home")
        login(CLI, config, "lab", HELPDESK.password, keyring_env)
        argv = [str(CLI), "--config", str(config), "find", *cases[0][1], "-f", "key"]
        with_keyring = timed(argv, keyring_env, args.runs)
        label = "  (password from keyring)"
        print(f"{label:<28}{with_keyring[0] * 1000:>8.0f} / {with_keyring[1] * 1000:<5.0f}")
        print(
            "\nldapsearch runs one search (the first of the lookup); a computer lookup also "
            "searches below each computer found."
        )
    finally:
        dc.stop()


if __name__ == "__main__":
    main()
