"""The Graph emulator's generated keys: large tenants derived from (seed, index) on demand,
listed, filtered, read and batched like explicit keys.
"""

from __future__ import annotations

import http.client
import time
import uuid
from collections import Counter
from urllib.parse import quote

import pytest

from examples.lab.graph_emulator import (
    GeneratedKeys,
    GraphEmulator,
    Tenant,
    is_valid_recovery_password,
)
from tests.integration.graph_clients import KEYS, assert_graph_error, call

pytestmark = pytest.mark.integration

ROLES = ("BitlockerKey.Read.All", "Device.Read.All")


def app_only(tenant: Tenant) -> str:
    app = tenant.add_app("daemon", public_client=False, secret="s", app_roles=ROLES)
    return tenant.mint_access_token(app, roles=ROLES)


def list_all(
    graph: GraphEmulator, target: str, token: str, conn: http.client.HTTPSConnection | None = None
) -> tuple[list[dict[str, object]], int]:
    """Every row of a collection, following @odata.nextLink; and how many pages it took."""
    rows: list[dict[str, object]] = []
    pages = 0
    url: str | None = target
    while url:
        answer = call(graph, "GET", url, token=token, connection=conn)
        assert answer.status == 200, answer.body
        rows += answer.body["value"]
        pages += 1
        next_link = answer.body.get("@odata.nextLink")
        url = next_link.removeprefix(graph.base_url) if next_link else None
    return rows, pages


def test_generated_ids_look_random_and_map_back_to_their_index() -> None:
    block = GeneratedKeys(5000, seed=7, keys_per_device=3, name_prefix="LAB")
    ids = [block.key_id(i) for i in range(block.count)]
    assert len(set(ids)) == 5000
    for key_id in ids[:50]:
        assert uuid.UUID(key_id).version == 4
        assert str(uuid.UUID(key_id)) == key_id
    # The first 8 hex digits spread evenly: every first digit, about 1/16 each.
    first = Counter(key_id[0] for key_id in ids)
    assert set(first) == set("0123456789abcdef")
    assert max(first.values()) < 2 * 5000 / 16
    assert len({key_id[:8] for key_id in ids}) == 5000
    # Tails do not count up either.
    assert len({key_id[-12:-8] for key_id in ids[:100]}) > 90

    for index in (0, 1, 2, 4242, 4999):
        assert block.key_index(ids[index]) == index
        assert block.key_index(ids[index].upper()) == index
        assert block.key_prefix(index) == ids[index][:8]
        key = block.recovery_key(index)
        assert key.id == ids[index]
        assert is_valid_recovery_password(key.key)
        assert block.key_metadata(index) == key.metadata()  # the list's rows, no password
        device = block.device_of(index)
        assert key.device_id == block.device_id(device)
        assert index in block.keys_of(device)
    assert block.key_index(str(uuid.uuid4())) is None
    assert block.key_index("not a guid") is None
    tail_only = f"{'0' * 8}-0000-4000-8000-{ids[3][-12:]}"  # the right tail, a wrong head
    assert block.key_index(tail_only) is None

    assert block.device_count == 1667  # 5000 keys, 3 a device: the last one has 2
    assert list(block.keys_of(1666)) == [4998, 4999]
    assert [block.volume_type(i) for i in range(4)] == [
        "operatingSystemVolume",
        "fixedDataVolume",
        "fixedDataVolume",
        "operatingSystemVolume",
    ]
    assert block.device_name(12) == "LAB-000012"
    assert block.device_index_by_name("lab-000012") == 12
    assert block.device_index_by_name("LAB-12") is None
    assert block.device_index(block.device_id(99)) == 99
    assert block.device_index_by_object_id(block.device_object_id(99)) == 99
    assert block.device_id(99) != block.device_object_id(99)

    same = GeneratedKeys(5000, seed=7)
    other = GeneratedKeys(5000, seed=8)
    assert same.key_id(10) == ids[10]  # the seed and the index decide, nothing else
    assert same.password(10) == block.password(10)
    assert other.key_id(10) != ids[10]
    assert other.key_index(ids[10]) is None
    with pytest.raises(IndexError):
        block.key_id(5000)
    with pytest.raises(ValueError, match="200"):
        GeneratedKeys(10, keys_per_device=201)


def test_generated_keys_are_listed_filtered_read_and_batched_like_explicit_ones(
    graph: GraphEmulator,
) -> None:
    owner = graph.add_user("owner@contoso.onmicrosoft.com")
    own_pc = graph.add_device("OWN-PC", owners=[owner])
    explicit = [graph.add_recovery_key(own_pc) for _ in range(3)]
    block = graph.add_generated_keys(50, seed=3, keys_per_device=3)
    assert (graph.home.key_count, graph.home.device_count) == (53, 18)
    graph.recovery_keys_page_size = 7
    token = app_only(graph.home)

    rows, pages = list_all(graph, KEYS, token)
    assert pages == 8  # 53 keys, 7 a page
    assert [row["id"] for row in rows] == list(graph.home.key_ids())
    assert [row["id"] for row in rows[:3]] == [key.id for key in explicit]
    assert [row["id"] for row in rows[3:]] == [graph.generated_key_id(i) for i in range(50)]
    assert all(set(row) == {"id", "createdDateTime", "volumeType", "deviceId"} for row in rows)
    assert rows[3] == block.key_metadata(0)

    device_id = block.device_id(16)  # the last device: keys 48 and 49
    device_filter = quote(f"deviceId eq '{device_id.upper()}'")
    rows, _ = list_all(graph, f"{KEYS}?$filter={device_filter}&$select=id,deviceId", token)
    assert rows == [{"id": block.key_id(i), "deviceId": device_id} for i in (48, 49)]

    key_id = graph.generated_key_id(31)
    read = call(graph, "GET", f"{KEYS}/{key_id.upper()}?$select=key", token=token)
    assert read.status == 200
    assert read.body["key"] == block.password(31)
    assert read.body["id"] == key_id
    assert [(r.key_id, r.device_id) for r in graph.key_reads] == [(key_id, block.device_id(10))]
    metadata = call(graph, "GET", f"{KEYS}/{key_id}", token=token)
    assert "key" not in metadata.body
    assert len(graph.key_reads) == 1
    missing = call(graph, "GET", f"{KEYS}/{uuid.uuid4()}?$select=key", token=token)
    assert_graph_error(missing, 404, "itemNotFound")

    batch = [
        {
            "id": str(i),
            "method": "GET",
            "url": f"/informationProtection/bitlocker/recoveryKeys/{block.key_id(i)}?$select=key",
        }
        for i in (0, 1, 2)
    ]
    answer = call(graph, "POST", "/v1.0/$batch", token=token, body={"requests": batch})
    by_id = {r["id"]: r["body"]["key"] for r in answer.body["responses"]}
    assert by_id == {str(i): block.password(i) for i in (0, 1, 2)}
    assert len(graph.key_reads) == 4

    # A delegated caller without a role sees the keys of devices they own; generated devices
    # have no owners.
    app = graph.add_app("bitkey-dir", delegated_scopes=ROLES)
    as_owner = graph.mint_access_token(app, user=owner, scopes=ROLES)
    rows, _ = list_all(graph, KEYS, as_owner)
    assert [row["id"] for row in rows] == [key.id for key in explicit]
    denied = call(graph, "GET", f"{KEYS}/{key_id}?$select=key", token=as_owner)
    assert_graph_error(denied, 403, "authorization_error")


def test_generated_devices_are_listed_filtered_and_read(graph: GraphEmulator) -> None:
    fabrikam = graph.add_tenant("fabrikam.onmicrosoft.com")
    fabrikam.add_device("PC-1")
    block = fabrikam.add_generated_keys(30, seed=5, keys_per_device=2, name_prefix="PC")
    fabrikam.devices_page_size = 4
    token = app_only(fabrikam)

    rows, pages = list_all(graph, "/v1.0/devices?$select=displayName", token)
    assert pages == 4  # 1 + 15 devices, 4 a page
    assert [row["displayName"] for row in rows] == ["PC-1"] + [f"PC-{n:06d}" for n in range(15)]

    def names(query: str) -> list[str]:
        found, _ = list_all(graph, f"/v1.0/devices?$filter={quote(query)}", token)
        return [str(row["displayName"]) for row in found]

    top = call(graph, "GET", "/v1.0/devices?$top=10&$select=id", token=token).body
    assert len(top["value"]) == 10
    rest = call(graph, "GET", top["@odata.nextLink"].removeprefix(graph.base_url), token=token)
    assert [row["id"] for row in rest.body["value"]] == [
        block.device_object_id(n) for n in range(9, 15)
    ]
    assert names("displayName eq 'pc-000007'") == ["PC-000007"]
    assert names("displayName in ('PC-000001','PC-1','PC-000099')") == ["PC-1", "PC-000001"]
    assert names(f"deviceId eq '{block.device_id(3)}' or id eq '{block.device_object_id(4)}'") == [
        "PC-000003",
        "PC-000004",
    ]
    assert names("startswith(displayName,'PC-00001')") == [f"PC-{n:06d}" for n in range(10, 15)]
    assert names("displayName eq 'PC-000003' and operatingSystem eq 'Windows'") == ["PC-000003"]
    assert names("startswith(displayName,'NOPE')") == []
    answer = call(graph, "GET", f"/v1.0/devices/{block.device_object_id(9)}", token=token)
    assert answer.body["deviceId"] == block.device_id(9)
    assert answer.body["displayName"] == "PC-000009"
    assert call(graph, "GET", f"/v1.0/devices/{block.device_id(9)}", token=token).status == 404
    # The home tenant sees none of it.
    home_devices = call(graph, "GET", "/v1.0/devices", token=app_only(graph.home))
    assert home_devices.body["value"] == []


def test_a_100000_key_tenant_pages_fast_and_lists_every_key_once(graph: GraphEmulator) -> None:
    started = time.monotonic()
    block = graph.add_generated_keys(100_000, seed=11)
    assert time.monotonic() - started < 0.1  # nothing is built up front
    token = app_only(graph.home)
    conn = http.client.HTTPSConnection(graph.host, graph.port, context=graph.ssl_context())

    started = time.monotonic()
    first = call(graph, "GET", KEYS, token=token, connection=conn)
    assert time.monotonic() - started < 1
    assert len(first.body["value"]) == 20
    assert "@odata.nextLink" in first.body
    started = time.monotonic()
    key_id = graph.generated_key_id(99_999)
    read = call(graph, "GET", f"{KEYS}/{key_id}?$select=key", token=token, connection=conn)
    assert time.monotonic() - started < 1
    assert read.body["key"] == block.password(99_999)
    # Name -> device -> keys: one lookup each, not a scan of 100,000 devices.
    started = time.monotonic()
    by_name = quote("displayName eq 'GEN-077777'")
    devices = call(graph, "GET", f"/v1.0/devices?$filter={by_name}", token=token, connection=conn)
    (device,) = devices.body["value"]
    by_device = quote(f"deviceId eq '{device['deviceId']}'")
    keys = call(graph, "GET", f"{KEYS}?$filter={by_device}", token=token, connection=conn)
    assert [row["id"] for row in keys.body["value"]] == [block.key_id(77_777)]
    assert time.monotonic() - started < 1

    started = time.monotonic()
    rows, pages = list_all(graph, KEYS, token, conn)
    elapsed = time.monotonic() - started
    conn.close()
    ids = {str(row["id"]) for row in rows}
    assert (len(rows), len(ids), pages) == (100_000, 100_000, 5000)
    assert ids == set(graph.home.key_ids())
    print(f"\n100,000 keys in {pages} pages: {elapsed:.1f} s, {pages / elapsed:.0f} requests/s")


def test_key_id_prefixes_and_collisions_across_tenants(graph: GraphEmulator) -> None:
    fabrikam = graph.add_tenant("fabrikam.onmicrosoft.com")
    home_block = graph.add_generated_keys(20_000, seed=1)
    fabrikam.add_generated_keys(20_000, seed=2)
    target = graph.generated_key_id(12_345)
    assert graph.home.generated_key_prefix(12_345) == target[:8]

    pc = fabrikam.add_device("PC-COLLIDE")
    twin = fabrikam.add_recovery_key(pc, id_prefix=target[:8])
    assert twin.id[:8] == target[:8]
    assert twin.id != target
    uuid.UUID(twin.id)
    assert graph.keys_sharing_prefix(target) == [(graph.home, target), (fabrikam, twin.id)]
    assert fabrikam.keys_with_prefix(target[:8].upper()) == [twin.id]

    prefixes = list(fabrikam.key_id_prefixes())
    assert prefixes == [key_id[:8] for key_id in fabrikam.key_ids()]
    assert prefixes[0] == twin.id[:8]  # explicit keys come first, generated ones after
    assert len(prefixes) == 20_001
    # Shorter prefixes, checked against every ID.
    for prefix in ("a", "0f", "beef"):
        expected = [k for k in graph.home.key_ids() if k.startswith(prefix)]
        assert graph.home.keys_with_prefix(prefix) == expected
    assert home_block.indexes_with_prefix(target[:13]) == [12_345]
    with pytest.raises(ValueError, match="hex"):
        home_block.indexes_with_prefix("xyz")
    with pytest.raises(ValueError, match="not the start of a GUID"):
        graph.add_recovery_key(pc, id_prefix="not-hex")

    # The same seed gives the same IDs: in another tenant, a full collision; in the same
    # tenant, a mistake.
    contoso_twin = graph.add_tenant("twin.onmicrosoft.com").add_generated_keys(10, seed=1)
    assert contoso_twin.key_id(3) == graph.generated_key_id(3)
    with pytest.raises(ValueError, match="seed 1"):
        graph.add_generated_keys(10, seed=1)
