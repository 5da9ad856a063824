"""GET /metrics: admins only, Prometheus' text format as prometheus-client's own parser reads it, API requests
counted by route template and status."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from opentap import config

from ..support.apicalls import headers
from ..support.configs import write_config


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize(("token", "status"), [("tok-admin", 200), ("tok-alice", 403), ("tok-alice-reader", 403),
                                               (None, 401)])
def test_admins_only(client: TestClient, token: str | None, status: int) -> None:
    r = client.get("/metrics", headers=headers(token) if token else {})
    assert r.status_code == status, r.text
    if status != 200:
        assert r.json()["status"] == "error"


def test_the_exposition_parses_and_counts_requests(client: TestClient) -> None:
    for _ in range(3):
        assert client.get("/capabilities", headers=headers()).status_code == 200
    client.get("/captures/nope", headers=headers())
    client.get("/no/such/path/3f9a")
    r = client.get("/metrics", headers=headers())
    assert r.headers["content-type"].startswith("text/plain; version=")
    got = samples(r.text)
    route = (("method", "GET"), ("route", "/capabilities"), ("status", "200"))
    assert got[("opentap_api_requests_total", route)] == 3
    assert got[("opentap_api_requests_total", (("method", "GET"), ("route", "/captures/{capture_id}"),
                                               ("status", "404")))] == 1
    assert got[("opentap_api_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert got[("opentap_api_request_duration_seconds_count", (("route", "/capabilities"),))] == 3
    assert got[("opentap_disk_quota_bytes", ())] == 1024 * 2**20
    assert got[("opentap_engine_up", ())] == 1
    assert ("opentap_reconciler_drift_total", ()) in got and ("opentap_tunnel_oversize_copies", ()) in got


def test_metrics_listen_must_be_loopback(tmp_path) -> None:
    with pytest.raises(config.ConfigError, match="metrics_listen.*loopback"):
        config.load(write_config(tmp_path, metrics_listen="0.0.0.0:9120"))
    assert config.load(write_config(tmp_path, metrics_listen="127.0.0.1:9120")).metrics_listen == ("127.0.0.1", 9120)
