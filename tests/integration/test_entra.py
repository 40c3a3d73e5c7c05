"""The Entra ID source end to end: `bitkey-dir find` against the Graph emulator.

Every test runs the CLI in-process with a config in tmp_path whose only source, `cloud`, points
its authority_host and graph_url at the emulator (examples/lab/graph_emulator) and trusts
the emulator's CA. Most tests sign in app-only with a client secret; the delegated ones use the
device-code flow, approved from a background thread as a person at the verification page
would. Every run is also checked for what must never happen: a traceback, an internal error, a
recovery password on stderr (or on stdout when nothing was revealed), the client secret or a
token anywhere, a password in the access trail.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from bitkey_dir import __version__
from bitkey_dir.core.records import KEY_FIELDS
from examples.lab.graph_emulator import (
    GraphEmulator,
    RecoveryKey,
    RequestRecord,
    make_client_certificate,
)
from tests.command_line import run_process, trail_entries
from tests.conftest import EXAMPLES, ROOT
from tests.integration.fixtures import (
    BATCH,
    DEVICES,
    FULL,
    GRAPH,
    KEY_GET,
    KEY_LIST,
    KEYS,
    ROLE_NAMES,
    SECRET,
    SECRET_ENV,
    SOURCE,
    TOKEN,
    WRONG_SECRET,
    Entra,
    day,
    device_code_answered,
    entra_record,
    free_port,
    only,
    read_ids,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]

# -- running the CLI ------------------------------------------------------------------------------


def query_of(request: RequestRecord) -> dict[str, str]:
    return dict(parse_qsl(request.query, keep_blank_values=True))


# -- Key ID ---------------------------------------------------------------------------------------


def test_full_key_id_reads_one_key_and_names_its_device(
    entra: Entra, graph: GraphEmulator, trail_file: Path
) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    key = graph.add_recovery_key(pc, created=day(3))
    others = [graph.add_recovery_key(pc, created=day(n)) for n in (1, 2)]
    found = entra.find("--key-id", key.id.upper())
    assert found.code == 0, found.err
    # One read of the key, one small query for its device's name.
    assert found.keys == [entra_record(key, "PC-0042")]
    assert tuple(found.keys[0]) == KEY_FIELDS
    assert found.source == {"name": SOURCE, "status": "ok", "error": None}
    assert graph.count(GRAPH) == 2
    (naming,) = only(graph, DEVICES)
    assert query_of(naming)["$filter"] == f"deviceId eq '{key.device_id}'"
    (request,) = only(graph, KEYS)
    assert request.method == "GET"
    assert request.path.endswith("/" + key.id)
    assert query_of(request) == {"$select": "key"}
    assert read_ids(graph) == [key.id]
    assert others[0].key not in found.out
    # The trail names the revealed key (entra.checks say: and never its password).
    entries = trail_entries()
    assert [entry["key_id"] for entry in entries] == [key.id.upper()]
    assert [entry["principal"] for entry in entries] == [f"app {entra.client_id}"]

    graph.clear_requests()
    again = entra.find("--key-id", "{" + key.id.lower() + "}")
    assert again.keys == found.keys
    assert graph.count(GRAPH) == 2


def test_unknown_full_key_id_is_exit_1(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--key-id", "0063EA4E-0000-4000-8000-000000000000")
    assert found.code == 1, found.err
    assert found.keys == []
    assert found.status == "ok"
    assert "visible to" in found.err  # missing rights look like a missing key: say so
    assert graph.count(GRAPH) == 1
    assert graph.key_reads == []


COLLIDING = ("aaaa1111-2222-4000-8000-000000000001", "aaaa1111-3333-4000-8000-000000000002")


@pytest.fixture
def colliding(entra: Entra, graph: GraphEmulator) -> list[RecoveryKey]:
    """Two keys sharing their first 8 digits, among others, listed two to a page."""
    entra.daemon()
    graph.recovery_keys_page_size = 2
    first, second = graph.add_device("PC-0001"), graph.add_device("LT-0002")
    for n in range(7):
        graph.add_recovery_key(first if n % 2 else second, created=day(n))
    return [
        graph.add_recovery_key(first, key_id=COLLIDING[0], created=day(10)),
        graph.add_recovery_key(second, key_id=COLLIDING[1], created=day(11)),
    ]


def test_prefix_lists_every_page_and_reads_only_the_matching_keys(
    entra: Entra, graph: GraphEmulator, colliding: list[RecoveryKey]
) -> None:
    found = entra.find("--key-id", "AAAA1111")
    assert found.code == 0, found.err
    newer, older = colliding[1], colliding[0]
    assert found.key_ids == [newer.id.upper(), older.id.upper()]  # newest first
    for got, key in zip(found.keys, (newer, older), strict=True):
        assert got["recovery_password"] == key.key
        assert got["device_id"] == key.device_id
        assert got["volume_type"] == "operatingSystemVolume"
    assert "matches 2 different keys" in found.err
    assert "confirm more digits" in found.err
    # 9 keys, 2 to a page: 5 pages of metadata, every one listed.
    listed = only(graph, KEY_LIST)
    assert len(listed) == 5
    assert all(r.status == 200 for r in listed)
    # Only the two matching keys were read, each once.
    assert sorted(read_ids(graph)) == sorted(k.id for k in colliding)


@pytest.mark.parametrize("prefix", ["AAAA1111-3333", "aaaa11113333", "{AAAA1111-333"])
def test_longer_prefix_narrows_to_one_key(
    entra: Entra, graph: GraphEmulator, colliding: list[RecoveryKey], prefix: str
) -> None:
    found = entra.find("--key-id", prefix)
    assert found.code == 0, found.err
    assert found.key_ids == [COLLIDING[1].upper()]
    assert found.keys[0]["recovery_password"] == colliding[1].key
    assert "confirm more digits" not in found.err
    assert read_ids(graph) == [COLLIDING[1]]
    assert graph.count(BATCH) == 0


def test_prefix_matching_nothing_is_exit_1(
    entra: Entra, graph: GraphEmulator, colliding: list[RecoveryKey]
) -> None:
    found = entra.find("--key-id", "AAAA1112")
    assert found.code == 1, found.err
    assert found.status == "ok"
    assert graph.key_reads == []
    assert "visible to" in found.err


# -- computer name --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PC-0042", "pc-0042", "Pc-0042$"])
def test_computer_by_exact_name_any_case(entra: Entra, graph: GraphEmulator, name: str) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    key = graph.add_recovery_key(pc, volume_type="fixedDataVolume")
    graph.add_recovery_key(graph.add_device("PC-00420"))
    graph.add_recovery_key(graph.add_device("PC-004"))
    found = entra.find("--computer", name)
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, "PC-0042")]
    (devices,) = only(graph, DEVICES)
    assert query_of(devices)["$filter"] == f"displayName eq '{name.removesuffix('$')}'"
    (listed,) = only(graph, KEY_LIST)
    assert query_of(listed)["$filter"] == f"deviceId eq '{pc.device_id}'"
    assert read_ids(graph) == [key.id]


def test_computer_with_trailing_wildcard(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    graph.devices_page_size = 2  # the matching devices come on two pages
    keys = {
        name: graph.add_recovery_key(graph.add_device(name), created=day(n))
        for n, name in enumerate(["PC-0042", "PC-0043", "pc-0044", "LAB-0042", "XPC-0042"])
    }
    found = entra.find("--computer", "PC-00*")
    assert found.code == 0, found.err
    assert found.keys == [
        entra_record(keys[name], name) for name in ("pc-0044", "PC-0043", "PC-0042")
    ]  # newest first
    devices = only(graph, DEVICES)
    assert len(devices) == 2
    assert query_of(devices[0])["$filter"] == "startswith(displayName,'PC-00')"
    assert sorted(read_ids(graph)) == sorted(keys[n].id for n in ("PC-0042", "PC-0043", "pc-0044"))

    # A * inside the name: the beginning goes to Graph, the rest is matched here.
    graph.key_reads.clear()
    inner = entra.find("--computer", "PC-*42")
    assert inner.code == 0, inner.err
    assert inner.keys == [entra_record(keys["PC-0042"], "PC-0042")]
    assert read_ids(graph) == [keys["PC-0042"].id]


def test_devices_sharing_a_name_are_all_shown_with_a_warning(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon()
    kiosks = [graph.add_device("KIOSK"), graph.add_device("kiosk")]
    keys = [graph.add_recovery_key(pc, created=day(n)) for n, pc in enumerate(kiosks)]
    graph.add_recovery_key(graph.add_device("KIOSK-2"))
    found = entra.find("--computer", "KIOSK")
    assert found.code == 0, found.err
    assert found.keys == [entra_record(keys[1], "kiosk"), entra_record(keys[0], "KIOSK")]
    assert {key["device_id"] for key in found.keys} == {pc.device_id for pc in kiosks}
    assert "2 devices are named" in found.err
    for pc in kiosks:
        assert pc.device_id in found.err  # in the warning, so the agent can ask which
    assert sorted(read_ids(graph)) == sorted(key.id for key in keys)


def test_a_name_with_quotes_is_an_escaped_literal(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("O'Brien's PC"))
    graph.add_recovery_key(graph.add_device("O"))
    found = entra.find("--computer", "O'Brien's PC")
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, "O'Brien's PC")]
    (devices,) = only(graph, DEVICES)
    assert query_of(devices)["$filter"] == "displayName eq 'O''Brien''s PC'"
    assert devices.status == 200

    wild = entra.find("--computer", "O'Brien*")
    assert wild.code == 0, wild.err
    assert wild.keys == [entra_record(key, "O'Brien's PC")]


HOSTILE = "x' or displayName eq 'y"


def test_odata_in_a_name_matches_no_other_device(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    for name in ("x", "y", "X' or 1 eq 1"):
        graph.add_recovery_key(graph.add_device(name))
    found = entra.find("--computer", HOSTILE)
    assert found.code == 1, found.err
    assert found.keys == []
    assert found.status == "ok"
    assert graph.count(KEYS) == 0
    assert graph.key_reads == []
    assert all(r.status == 200 for r in graph.requests)  # not a syntax error either

    literal = graph.add_recovery_key(graph.add_device(HOSTILE))
    again = entra.find("--computer", HOSTILE)
    assert again.code == 0, again.err
    assert again.keys == [entra_record(literal, HOSTILE)]
    assert read_ids(graph) == [literal.id]

    graph.key_reads.clear()
    wild = entra.find("--computer", "x' or displayName*")
    assert wild.code == 0, wild.err
    assert wild.keys == [entra_record(literal, HOSTILE)]
    assert read_ids(graph) == [literal.id]


@pytest.mark.parametrize("name", ["*-0042", "**", "*PC*"])
def test_leading_wildcard_is_bad_input(entra: Entra, graph: GraphEmulator, name: str) -> None:
    entra.daemon()
    graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--computer", name)
    assert found.code == 2, found.err
    assert graph.count(GRAPH) == 0
    assert graph.key_reads == []
    if name != "**":  # "**" is refused by the CLI already, for every source
        assert "before the first *" in found.err


def test_leading_wildcard_is_refused_before_signing_in(entra: Entra, graph: GraphEmulator) -> None:
    # find.py: "Parsing happens before any source is touched, so bad input costs nothing".
    entra.daemon()
    graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--computer", "*-0042")
    assert found.code == 2, found.err
    assert graph.requests == []  # no sign-in either


def test_unknown_device_is_exit_1_with_a_hint(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--computer", "PC-9999")
    assert found.code == 1, found.err
    assert found.status == "ok"
    assert "no device named PC-9999" in found.err
    assert graph.count(KEYS) == 0


def test_a_device_without_keys_is_exit_1(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    graph.add_device("PC-0042")
    found = entra.find("--computer", "PC-0042")
    assert found.code == 1, found.err
    assert "no recovery keys" in found.err
    assert graph.key_reads == []


def test_a_damaged_password_is_a_warning_never_a_key(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    good = graph.add_recovery_key(pc, created=day(1))
    damaged = "-".join(["000001", *good.key.split("-")[1:]])  # group 1 fails its checksum
    bad = graph.add_recovery_key(pc, key=damaged, created=day(2))
    found = entra.find("--computer", "PC-0042")
    assert found.code == 0, found.err
    assert found.keys == [entra_record(good, "PC-0042")]
    assert bad.id.upper() in found.err
    assert "damaged" in found.err
    assert damaged not in found.out + found.err


@pytest.mark.parametrize(("count", "batches"), [(3, 1), (23, 2)])
def test_several_keys_are_read_through_batch(
    entra: Entra, graph: GraphEmulator, count: int, batches: int
) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    keys = [graph.add_recovery_key(pc, created=day(n)) for n in range(count)]
    found = entra.find("--computer", "PC-0042")
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, "PC-0042") for key in reversed(keys)]
    posts = only(graph, BATCH, method="POST")
    assert len(posts) == batches
    assert all(r.status == 200 for r in posts)
    assert only(graph, KEY_GET, via_batch=False) == []  # no key read outside a batch
    items = only(graph, KEY_GET, via_batch=True)
    assert len(items) == count
    assert all(query_of(r) == {"$select": "key"} for r in items)
    assert sorted(read_ids(graph)) == sorted(key.id for key in keys)


# -- headers --------------------------------------------------------------------------------------


def test_graph_requests_say_who_is_calling(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    for n in range(2):
        graph.add_recovery_key(pc, created=day(n))
    graph.add_recovery_key(graph.add_device("PC-0043"))
    assert entra.find("--computer", "PC-0042").code == 0
    assert entra.find("--key-id", next(iter(graph.recovery_keys))).code == 0
    requests = only(graph, GRAPH)
    assert {r.path.split("/")[2] for r in requests} >= {"devices", "informationProtection"}
    assert any(r.via_batch for r in requests)
    for request in requests:
        assert request.headers["user-agent"].startswith(f"bitkey-dir/{__version__}"), request
        if not request.via_batch:  # batch items carry only what the emulator forwards
            assert request.headers.get("ocp-client-name") == "bitkey-dir", request
            assert request.headers.get("ocp-client-version") == __version__, request


# -- permissions ----------------------------------------------------------------------------------


def test_read_basic_only_is_exit_3_naming_read_all(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon("BitlockerKey.ReadBasic.All", "Device.Read.All")
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--key-id", key.id)
    assert found.code == 3, found.err
    assert found.status == "denied"
    assert "BitlockerKey.Read.All" in found.err
    assert "ReadBasic" in found.err
    (denied,) = only(graph, KEY_GET)
    assert denied.status == 403
    assert denied.request_id in found.err  # what Microsoft support asks for
    assert graph.key_reads == []


def test_read_basic_only_in_a_batch_is_exit_3_with_the_request_id(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon("BitlockerKey.ReadBasic.All", "Device.Read.All")
    pc = graph.add_device("PC-0042")
    for n in range(2):
        graph.add_recovery_key(pc, created=day(n))
    found = entra.find("--computer", "PC-0042")
    assert found.code == 3, found.err
    assert found.status == "denied"
    assert "BitlockerKey.Read.All" in found.err
    items = only(graph, KEY_GET, via_batch=True)
    assert items
    assert {r.status for r in items} == {403}
    assert any(r.request_id in found.err for r in items)
    assert graph.key_reads == []


def test_no_device_read_all_is_exit_3_naming_it(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon("BitlockerKey.Read.All")
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--computer", "PC-0042")
    assert found.code == 3, found.err
    assert found.status == "denied"
    assert "Device.Read.All" in found.err
    (denied,) = only(graph, DEVICES)
    assert denied.status == 403
    assert denied.request_id in found.err
    assert graph.count(KEYS) == 0
    # A Key ID needs no device permission.
    assert entra.find("--key-id", key.id).code == 0


@pytest.mark.usefixtures("file_keyring")
def test_delegated_user_without_role_or_ownership_is_exit_3_naming_the_roles(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.public()
    plain = graph.add_user("plain@contoso.onmicrosoft.com")
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    with device_code_answered(graph, plain):
        assert entra.login(auth="device-code").code == 0
    found = entra.find("--key-id", key.id, auth="device-code")
    assert found.code == 3, found.err
    assert found.status == "denied"
    for role in ROLE_NAMES:
        assert role in found.err
    (denied,) = only(graph, KEY_GET)
    assert denied.status == 403
    assert denied.request_id in found.err
    assert graph.key_reads == []


@pytest.mark.usefixtures("file_keyring")
def test_delegated_owner_reads_the_keys_of_their_device(entra: Entra, graph: GraphEmulator) -> None:
    app = entra.public()
    owner = graph.add_user("owner@contoso.onmicrosoft.com")
    own = graph.add_device("LT-OWNER", owners=[owner])
    keys = [graph.add_recovery_key(own, created=day(n)) for n in range(2)]
    graph.add_recovery_key(graph.add_device("LT-OTHER"))
    with device_code_answered(graph, owner):
        assert entra.login(auth="device-code").code == 0
    found = entra.find("--computer", "LT-OWNER", auth="device-code")
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, "LT-OWNER") for key in reversed(keys)]
    reads = graph.key_reads
    assert sorted(r.key_id for r in reads) == sorted(k.id for k in keys)
    assert {(r.user_principal_name, r.app_id) for r in reads} == {
        (owner.user_principal_name, app.client_id)
    }


# -- throttling -----------------------------------------------------------------------------------


def gap(graph: GraphEmulator, path: str) -> float:
    """Seconds between the first two requests matching `path` (answered times)."""
    first, second = only(graph, path)[:2]
    return second.time - first.time


def test_fractional_retry_after_is_honoured(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    graph.add_fault(KEY_GET, status=429, retry_after=1.5, method="GET", in_batch=False)
    found = entra.find("--key-id", key.id)
    assert found.code == 0, found.err
    assert found.keys[0]["recovery_password"] == key.key
    assert [r.status for r in only(graph, KEY_GET)] == [429, 200]
    waited = gap(graph, KEY_GET)
    assert 1.45 <= waited < 2.9, waited  # 1.5 s, not kiota's backoff of 3 s and more
    assert read_ids(graph) == [key.id]


def test_http_date_retry_after_is_honoured(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    # An HTTP date has whole seconds: this one is 2 to 3 s away when the fault is served.
    graph.add_fault(
        KEY_GET, status=503, retry_after=dt.timedelta(seconds=3), method="GET", in_batch=False
    )
    found = entra.find("--key-id", key.id)
    assert found.code == 0, found.err
    assert [r.status for r in only(graph, KEY_GET)] == [503, 200]
    waited = gap(graph, KEY_GET)
    assert 1.8 <= waited < 3.5, waited  # kiota's backoff alone would be below 1.75 s
    assert read_ids(graph) == [key.id]


def test_throttled_batch_items_are_retried_and_no_key_is_lost(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    keys = [graph.add_recovery_key(pc, created=day(n)) for n in range(4)]
    graph.add_fault(KEY_GET, status=429, times=3, retry_after="0.3", in_batch=True)
    found = entra.find("--computer", "PC-0042")
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, "PC-0042") for key in reversed(keys)]
    assert sorted(read_ids(graph)) == sorted(key.id for key in keys)  # each read once
    posts = only(graph, BATCH)
    assert len(posts) == 2
    assert posts[1].time - posts[0].time >= 0.25
    items = only(graph, KEY_GET, via_batch=True)
    assert [r.status for r in items].count(429) == 3
    assert len(items) == 7


def test_zero_retry_after_retries_at_once(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"), key_id=COLLIDING[0])
    graph.add_fault(KEY_LIST, status=504, retry_after=0, method="GET")
    found = entra.find("--key-id", "AAAA1111")
    assert found.code == 0, found.err
    assert found.key_ids == [key.id.upper()]
    assert [r.status for r in only(graph, KEY_LIST)] == [504, 200]
    waited = gap(graph, KEY_LIST)
    assert waited < 0.6, waited  # "0" is no wait, not kiota's backoff (0.75 s and more)


def test_a_throttled_batch_request_is_retried(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    keys = [graph.add_recovery_key(pc, created=day(n)) for n in range(3)]
    graph.add_fault(BATCH, status=429, retry_after="0.3", method="POST", in_batch=False)
    found = entra.find("--computer", "PC-0042")
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, "PC-0042") for key in reversed(keys)]
    assert [r.status for r in only(graph, BATCH)] == [429, 200]
    assert gap(graph, BATCH) >= 0.28
    assert sorted(read_ids(graph)) == sorted(key.id for key in keys)


@pytest.mark.parametrize("where", ["get", "batch"])
def test_endless_throttling_is_exit_4_after_bounded_retries(
    entra: Entra, graph: GraphEmulator, where: str
) -> None:
    entra.daemon()
    pc = graph.add_device("PC-0042")
    keys = [graph.add_recovery_key(pc, created=day(n)) for n in range(1 if where == "get" else 2)]
    graph.add_fault(KEY_GET, status=429, times=10_000, retry_after="0.1", in_batch=where == "batch")
    if where == "get":
        found = entra.find("--key-id", keys[0].id)
    else:
        found = entra.find("--computer", "PC-0042")
    assert found.code == 4, found.err
    assert found.status == "failed"
    assert found.elapsed < 15
    attempts = only(graph, KEY_GET)
    assert 2 <= len(attempts) <= 11 * len(keys)
    assert {r.status for r in attempts} == {429}
    assert graph.key_reads == []
    if where == "get":
        assert "429" in found.err
        assert attempts[-1].request_id in found.err


# -- signing in -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "aadsts"),
    [("wrong secret", "AADSTS7000215"), ("unknown app", "AADSTS700016"), ("unknown tenant", "")],
)
def test_refused_sign_in_is_exit_3(
    entra: Entra, graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch, refusal: str, aadsts: str
) -> None:
    entra.daemon()
    settings: dict[str, object] = {}
    if refusal == "wrong secret":
        monkeypatch.setenv(SECRET_ENV, WRONG_SECRET)
    elif refusal == "unknown app":
        settings["client_id"] = "11111111-2222-4333-8444-555555555555"
    else:
        settings["tenant_id"] = "11111111-2222-4333-8444-555555555555"
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--key-id", key.id, **settings)
    assert found.code == 3, found.err
    assert found.status == "denied"
    assert aadsts in found.err
    assert graph.count(GRAPH) == 0


def test_no_secret_and_no_terminal_is_exit_3_naming_the_variable(
    entra: Entra, graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    entra.daemon()
    monkeypatch.delenv(SECRET_ENV)
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--key-id", key.id)
    assert found.code == 3, found.err
    assert found.status == "denied"
    assert SECRET_ENV in found.err
    assert graph.requests == []


def test_client_certificate_sign_in(
    entra: Entra, graph: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credential = make_client_certificate()
    app = graph.add_app("bitkey-dir cert", public_client=False, certificate=credential)
    app.app_roles.update(FULL)
    entra.client_id = app.client_id
    monkeypatch.delenv(SECRET_ENV, raising=False)
    pem = tmp_path / "app.pem"
    pem.write_text(credential.private_key_pem + credential.certificate_pem, encoding="ascii")
    pem.chmod(0o600)
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--key-id", key.id, auth="client-certificate", certificate_file=str(pem))
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, "PC-0042")]
    (token,) = only(graph, TOKEN)
    assert (token.grant_type, token.status) == ("client_credentials", 200)
    assert credential.private_key_pem.splitlines()[1] not in found.out + found.err


@pytest.mark.usefixtures("file_keyring")
def test_device_code_instructions_go_to_stderr(entra: Entra, graph: GraphEmulator) -> None:
    app = entra.public()
    agent = graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    with device_code_answered(graph, agent) as codes:
        signed_in = entra.login(auth="device-code")
    assert signed_in.code == 0, signed_in.err
    (code,) = codes
    assert code in signed_in.err
    assert f"{graph.base_url}/devicelogin" in signed_in.err
    assert code not in signed_in.out
    backend = "bitkey_test_keyrings.PlaintextFileKeyring"
    assert signed_in.out == (
        f"{SOURCE}: signed in as {agent.user_principal_name}; the tokens are stored ({backend})\n"
    )
    found = entra.find("--key-id", key.id, auth="device-code")
    assert json.loads(found.out)["keys"] == [
        entra_record(key, "PC-0042")
    ]  # stdout is only the JSON
    # Delegated scopes are built from graph_url.
    (flow,) = graph.device_codes.values()
    assert {
        f"{graph.graph_url}/BitlockerKey.Read.All",
        f"{graph.graph_url}/Device.Read.All",
    } <= set(flow.scope.split())
    (read,) = graph.key_reads
    assert (read.user_principal_name, read.app_id) == (agent.user_principal_name, app.client_id)


@pytest.mark.usefixtures("file_keyring")
@pytest.mark.parametrize("answer", ["decline", "expire"])
def test_declined_or_expired_device_code_is_exit_3(
    entra: Entra, graph: GraphEmulator, answer: str
) -> None:
    entra.public()
    graph.add_recovery_key(graph.add_device("PC-0042"))
    with device_code_answered(graph, None, action=answer):
        found = entra.login(auth="device-code")
    assert found.code == 3, found.err
    assert ("AADSTS70000" if answer == "decline" else "AADSTS70019") in found.err
    assert graph.count(GRAPH) == 0


# -- network and TLS ------------------------------------------------------------------------------


def test_graph_unreachable_is_exit_4(
    entra: Entra, graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    dead = f"https://127.0.0.1:{free_port()}"
    # The tenant knows the dead Graph host as a resource, so that sign-in works.
    known = graph.identity.graph_resources()
    monkeypatch.setattr(graph.identity, "graph_resources", lambda: {*known, dead.lower()})
    found = entra.find("--key-id", key.id, graph_url=dead, timeout=2)
    assert found.code == 4, found.err
    assert found.status == "failed"
    assert dead in found.err
    assert found.elapsed < 10
    assert graph.count(TOKEN) == 1


def test_identity_platform_unreachable_is_exit_4(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    dead = f"https://127.0.0.1:{free_port()}"
    found = entra.find("--key-id", key.id, authority_host=dead, timeout=2)
    assert found.code == 4, found.err
    assert found.status == "failed"
    assert dead in found.err
    assert graph.requests == []


def test_an_untrusted_certificate_is_a_clean_failure(
    entra: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(make_client_certificate("another CA").certificate_pem, encoding="ascii")
    found = entra.find("--key-id", key.id, ca_file=str(other_ca))
    assert found.code in (3, 4), found.err
    assert found.status in ("failed", "denied")
    assert found.keys == []
    assert graph.requests == []  # no request got through the handshake


def test_graph_and_login_hosts_come_from_config(entra: Entra, graph: GraphEmulator) -> None:
    """As in a national cloud, Graph and the login service have different host names."""
    entra.daemon()
    login = f"https://localhost:{graph.port}"  # the emulator's certificate names both
    pc = graph.add_device("PC-0042")
    keys = [graph.add_recovery_key(pc, created=day(n)) for n in range(2)]
    found = entra.find("--computer", "PC-0042", authority_host=login)
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, "PC-0042") for key in reversed(keys)]
    # MSAL asks the configured login host for its endpoints ...
    (discovery,) = only(graph, r"/\.well-known/openid-configuration$")
    assert discovery.headers["host"] == f"localhost:{graph.port}"
    # ... and the token is for the configured Graph host, or the tenant would refuse it.
    (token,) = only(graph, TOKEN)
    assert token.status == 200
    graph_requests = only(graph, GRAPH, via_batch=False)
    assert {r.headers["host"] for r in graph_requests} == {f"127.0.0.1:{graph.port}"}


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"graph_url": "http://127.0.0.1:1"}, "graph_url"),
        ({"authority_host": "http://127.0.0.1:1"}, "authority_host"),
        ({"graph_url": "https://graph.example/v1.0"}, "graph_url"),
        ({"auth": "password"}, "auth"),
        ({"auth": "client-certificate"}, "certificate_file"),
        ({"tenant_id": None}, "tenant_id"),
        ({"client_secret": SECRET}, "client_secret"),
    ],
)
def test_config_errors_are_exit_2(
    entra: Entra, graph: GraphEmulator, settings: dict[str, object], named: str
) -> None:
    entra.daemon()
    found = entra.find("--key-id", "063EA4E1", **settings)
    assert found.code == 2, found.err
    assert named in found.err
    assert "config.toml" in found.err
    assert graph.requests == []


def test_an_unused_entra_source_loads_no_graph_library(entra: Entra, tmp_path: Path) -> None:
    """A config with an Entra source costs nothing to a lookup in another source."""
    config = entra.config()
    probe = (
        "import sys\n"
        "from bitkey_dir.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    code = int(exit.code or 0)\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "sys.stderr.write('PROBE ' + repr((code, sorted(roots & {'msal', 'msgraph', "
        "'msgraph_core', 'kiota_abstractions', 'kiota_http', 'azure', 'httpx'}))))\n"
    )
    proc = run_process(
        *("find", "--key-id", "063EA4E1", "--source", EXAMPLES / "keys", "-f", "json"),
        command=(sys.executable, "-c", probe),
        env={**os.environ, "PYTHONPATH": str(ROOT), "BITKEY_DIR_CONFIG": str(config)},
    )
    code, heavy = eval(proc.err.split("PROBE ", 1)[1])  # noqa: S307 - our own repr
    assert (code, heavy) == (0, []), proc.err


# -- expired tokens -------------------------------------------------------------------------------


def test_tokens_that_expire_during_a_lookup_are_renewed_silently(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon()
    device = graph.add_device("PC-0042")
    keys = [graph.add_recovery_key(device) for _ in range(3)]
    # MSAL treats a token with less than 5 minutes left as expired: every request asks anew.
    graph.access_token_lifetime = 60
    found = entra.find("--computer", "PC-0042")
    assert found.code == 0, found.err
    assert sorted(found.key_ids) == sorted(key.id.upper() for key in keys)
    assert graph.count(TOKEN) >= 2  # renewed during the run, without any prompt


def test_a_token_the_server_considers_expired_is_exit_3_with_the_request_id(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    graph.access_token_lifetime = 3600
    # The client's clock says the token is fresh; the server's says it expired (clock skew,
    # or a token revoked): Graph answers 401 and bitkey-dir says so instead of retrying.
    original_now = graph.now

    def skewed() -> float:
        # Two hours later, but only once the token has been issued.
        return original_now() + (7200 if graph.count(TOKEN) else 0)

    graph.now = skewed  # type: ignore[method-assign]
    found = entra.find("--key-id", key.id)
    assert found.code == 3, found.err
    assert "refused the token" in found.err
    assert "request-id" in found.err


def test_a_key_found_by_id_without_the_right_to_read_devices_is_shown_unnamed(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon("BitlockerKey.Read.All")
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--key-id", key.id[:8])
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, None)]
    assert "the computer names are not shown" in found.err
    assert "Device.Read.All" in found.err
