"""Captures on `any` (every interface of the host: tcpdump writes Linux cooked captures, SLL2): the meter and the
per-packet CSV read them, and a netflow capture can send its records to a collector as it goes."""

from __future__ import annotations

import csv
import io
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from ..support import oracles
from ..support.apicalls import headers, wait_state
from ..support.collectors import COLUMNS, Nfcapd
from ..support.netns import A_IP, B_IP

pytestmark = pytest.mark.root
# `any` is every interface of the host, other test runs' namespaces included (with the same addresses): ports of
# this run's own keep their traffic apart
PORT = 20000 + os.getpid() % 20000 * 2


def rows(text: str) -> list[dict[str, str]]:
    return [r for r in csv.DictReader(io.StringIO(text)) if r["ts"] not in ("Summary", "flows")][:-1]


@pytest.mark.skipif(bool(oracles.have("nfcapd", "nfdump")), reason=str(oracles.have("nfcapd", "nfdump")))
def test_netflow_on_any_exported_to_nfcapd(make_client, lan, tmp_path: Path) -> None:
    nfcapd = Nfcapd(tmp_path)
    client = make_client(points={"all": "any"}, flow_idle_timeout=1, export=f"ipfix://127.0.0.1:{nfcapd.port}")
    now = time.time()
    port = PORT + 1
    only = f"host {A_IP} and host {B_IP} and udp port {port}"
    r = client.get("/capture/netflow", headers=headers(), params={
        "start": now, "stop": now + 6, "observationpt": "all", "filter": only, "id": "nf-any"})
    assert r.status_code == 200, r.text
    assert r.json()["options"]["export"] == f"ipfix://127.0.0.1:{nfcapd.port}"  # the config's default
    wait_state(client, "nf-any", ("running",))
    lan.run(lan.ns_a, "udp", B_IP, port, 30, 100)
    cap = wait_state(client, "nf-any", ("complete",))
    flows = rows(client.get("/retrieve?id=nf-any", headers=headers()).text)
    # `any` sees a datagram on every host interface it crosses (A's and B's veth ends): counted there twice, in
    # one flow (or more, when a busy machine hands tcpdump's packets over late and the wall clock expired it)
    assert {(f["sa"], f["da"], f["dp"]) for f in flows} == {(A_IP, B_IP, str(port))}
    packets = sum(int(f["ipkt"]) for f in flows)
    assert packets % 30 == 0 and packets >= 30 and sum(int(f["ibyt"]) for f in flows) == packets * 128
    assert cap["stats"]["export_records"] == len(flows) and cap["stats"]["export_lost"] == 0
    received, _counts = nfcapd.stop()
    assert received == Counter(tuple(f[c] for c in COLUMNS) for f in flows)


def test_ethernet_on_any_has_per_packet_fields(make_client, lan) -> None:
    client = make_client(points={"all": "any"})
    now = time.time()
    r = client.get("/capture/ethernet", headers=headers(), params={
        "start": now, "stop": now + 3, "observationpt": "all", "filter": f"host {A_IP} and udp port {PORT}",
        "id": "eth-any"})
    assert r.status_code == 200, r.text
    wait_state(client, "eth-any", ("running",))
    lan.run(lan.ns_a, "udp", B_IP, PORT, 5, 10)
    wait_state(client, "eth-any", ("complete",))
    packets = list(csv.DictReader(io.StringIO(client.get("/retrieve?id=eth-any&format=csv", headers=headers()).text)))
    assert len(packets) % 5 == 0 and len(packets) >= 5  # each datagram once per host interface it crosses
    assert {(p["src_ip"], p["dst_ip"], p["protocol"], p["dst_port"]) for p in packets} == {
        (A_IP, B_IP, "UDP", str(PORT))}
    assert all(p["src_mac"] for p in packets)
