"""One project's data cannot truncate another's capture: a project over its own disk quota has its running
capture stopped and its next request refused (507), while another project's capture on the same interface
completes (real tcpdump captures of real traffic between namespaces)."""

from __future__ import annotations

import time

import pytest

from ..support.apicalls import headers, wait_state
from ..support.netns import B_IP


@pytest.mark.root
def test_one_projects_data_cannot_truncate_anothers_capture(make_client, lan) -> None:
    client = make_client(points={"a": lan.ha}, disk_quota_mb=100, project_disk_quota_mb=0.5)
    now = time.time()
    hog = client.get("/capture/ethernet", headers=headers("tok-alice"),
                     params={"start": now, "stop": now + 5, "observationpt": "a"}).json()["id"]
    quiet = client.get("/capture/ethernet", headers=headers("tok-bob"),
                       params={"start": now, "stop": now + 5, "observationpt": "a", "filter": "udp"}).json()["id"]
    wait_state(client, hog, ("running",), token="tok-alice")
    wait_state(client, quiet, ("running",), token="tok-bob")
    server = lan.spawn(lan.ns_b, "tcpserve", 6000, 10)
    lan.run(lan.ns_a, "tcp", B_IP, 6000, 4_000_000)  # alice's capture passes her quota; bob's filter takes no TCP
    server.communicate(timeout=30)
    lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 100)
    hogged = wait_state(client, hog, ("complete", "truncated", "failed"), token="tok-alice")
    kept = wait_state(client, quiet, ("complete", "truncated", "failed"), token="tok-bob")
    assert hogged["state"] == "truncated" and "your project's disk quota of 0.5 MB" in hogged["reason"]
    assert kept["state"] == "complete" and kept["reason"] == "" and kept["packets"] >= 20
    r = client.get("/capture/ethernet", headers=headers("tok-alice"),
                   params={"start": time.time(), "stop": time.time() + 5, "observationpt": "a"})
    assert r.status_code == 507 and "your project's disk quota" in r.json()["msg"]
    r = client.get("/capture/ethernet", headers=headers("tok-bob"),
                   params={"start": time.time() + 60, "stop": time.time() + 65, "observationpt": "a"})
    assert r.status_code == 200  # bob still has room
