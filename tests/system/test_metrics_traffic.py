"""/metrics against a capture's known traffic: the counters say what the captures recorded, and the open
loopback port (metrics_listen) serves the same without a token."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..support.apicalls import headers, wait_state
from ..support.daemon import free_port
from ..support.netns import B_IP

pytestmark = pytest.mark.root


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counters_match_the_captured_traffic(make_client, lan) -> None:
    port = free_port()
    client = make_client(points={"a": lan.ha}, flow_idle_timeout=1, metrics_listen=f"127.0.0.1:{port}")
    now = time.time()
    for cid, ctype in (("m-eth", "ethernet"), ("m-nf", "netflow")):
        r = client.get(f"/capture/{ctype}", headers=headers(),
                       params={"start": now, "stop": now + 3, "observationpt": "a", "filter": "udp", "id": cid})
        assert r.status_code == 200, r.text
    wait_state(client, "m-eth", ("running",))
    wait_state(client, "m-nf", ("running",))
    lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 100)
    lan.run(lan.ns_a, "udp", B_IP, 5001, 5, 100)
    eth = wait_state(client, "m-eth", ("complete",))
    nf = wait_state(client, "m-nf", ("complete",))
    got = values(client.get("/metrics", headers=headers()).text)
    assert eth["packets"] == 25 and nf["packets"] == 25
    assert got[("opentap_captured_packets_total", (("type", "ethernet"),))] == 25
    assert got[("opentap_captured_bytes_total", (("type", "ethernet"),))] == eth["bytes"]
    assert got[("opentap_captured_packets_total", (("type", "netflow"),))] == 25
    assert got[("opentap_captured_bytes_total", (("type", "netflow"),))] == 25 * (20 + 8 + 100)
    assert got[("opentap_flows_metered_total", ())] == nf["stats"]["flows"] == 2
    assert got[("opentap_kernel_drops_total", (("type", "ethernet"),))] == 0
    assert got[("opentap_captures", (("state", "complete"), ("type", "ethernet")))] == 1
    assert got[("opentap_disk_used_bytes", ())] == eth["data_bytes"] + nf["data_bytes"]
    open_port = values(httpx.get(f"http://127.0.0.1:{port}/metrics").text)  # no token on the loopback port
    assert open_port[("opentap_captured_packets_total", (("type", "ethernet"),))] == 25
