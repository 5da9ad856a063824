"""The web interface in a real browser (Debian's chromium through Selenium and chromium-driver) against a real
daemon, as an operator uses it: a bad token refused with the device's message; the admin makes the ports; a member
schedules a netflow capture on a namespace link carrying known traffic, watches it finish, finds the host that
sent the most as the top talker, downloads the CSV (the same bytes /retrieve gives) and Parquet (made by the page:
the same records), creates a tap service and a tap flow and sees the flow ACTIVE, and sees nothing of another
project's. Screenshots of every page go to tests/artifacts/ui/ (described in README.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ..support import browser
from ..support.daemon import Daemon, running
from ..support.mirrorlab import monitoring
from ..support.netns import A_IP, B_IP, Lan
from ..support.webpages import Page

pytestmark = pytest.mark.root
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"


@pytest.fixture
def device(lan: Lan, tmp_path: Path) -> Iterator[Daemon]:
    if reason := browser.missing():
        pytest.skip(reason)
    with running(tmp_path, points={"a": lan.ha, "b": lan.hb}, flow_idle_timeout=1) as d:
        yield d


def api(d: Daemon, path: str, token: str, **params: object) -> httpx.Response:
    return httpx.get(d.url + path, params=params, headers={"X-Auth-Token": token}, timeout=30)


def test_the_web_interface_end_to_end(device: Daemon, lan: Lan, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    now = time.time()
    theirs = httpx.post(device.url + "/captures", headers={"X-Auth-Token": "tok-bob"}, timeout=30, json={
        "type": "linkstats", "id": "bobs-secret", "start": now, "stop": now + 3, "observationpt": "b", "period": 200})
    assert theirs.status_code == 201, theirs.text
    series = httpx.post(device.url + "/captures", headers={"X-Auth-Token": "tok-alice"}, timeout=30, json={
        "type": "linkstats", "id": "ui-counters", "start": now, "stop": now + 4, "observationpt": "a", "period": 250})
    assert series.status_code == 201, series.text  # a time series: drawn as sensors' are, a chart per column
    downloads = tmp_path / "downloads"
    with monitoring(lan) as (_ns, monitor), browser.chromium(downloads=downloads) as driver:
        page = Page(driver, device.url, ARTIFACTS)
        page.sign_in("not-a-token")
        assert page.alert_text() == "missing or invalid X-Auth-Token"  # the device's own message
        page.shot("signin-refused")

        page.sign_in("tok-admin")  # ports are the admin's to make (Neutron's policy)
        page.go("taas")
        page.create_port("monitor", monitor, project="alice")
        page.create_port("host-a", lan.ha, project="alice")
        page.create_port("bobs-port", lan.hb, project="bob")
        page.sign_out()

        page.sign_in("tok-alice")
        page.go("overview")  # signing in keeps the page the tab was on (the admin's TaaS page)
        page.wait_text("Observation points")
        time.sleep(2.5)  # two samples of the counters: the rates and sparklines have something to show
        page.shot("overview")
        page.go("captures")
        page.schedule("netflow", "a", seconds=8, capture_id="ui-nf")
        page.wait_row("ui-nf", "running")
        server = lan.spawn(lan.ns_a, "tcpserve", 6000, 15)
        lan.run(lan.ns_b, "tcp", A_IP, 6000, 400_000)  # B sends the most: ~400 kB
        server.communicate(timeout=20)
        lan.run(lan.ns_a, "udp", B_IP, 5000, 100, 500)  # A sends ~53 kB
        lan.run(lan.ns_a, "icmp", B_IP, 3)
        page.shot("captures-running")
        page.open_capture("ui-nf")
        page.wait_text("complete", timeout=40)
        talker = page.top_talker()
        assert talker == B_IP, talker
        page.wait_flow_rows()
        page.shot("capture-netflow")
        page.sort_flows("Bytes")  # click the header: the device sorts, the page shows its page
        page.shot("capture-netflow-sorted")

        csv_file = page.download("ui-nf", "csv", downloads)
        assert csv_file.read_bytes() == api(device, "/retrieve", "tok-alice", id="ui-nf").content
        assert b"Summary" in csv_file.read_bytes()
        parquet = pq.read_table(page.download("ui-nf", "parquet", downloads)).to_pandas()  # made by the page
        records = pd.read_csv(csv_file)[:-3]  # the original client's reading: the Summary trailer dropped
        assert len(parquet) == len(records) and list(parquet["ibyt"]) == list(records["ibyt"].astype(int))
        assert list(parquet["sa"]) == list(records["sa"]) and str(parquet["ts"].dtype) == "datetime64[ms, UTC]"

        page.go("captures")
        page.open_capture("ui-counters")
        page.one(".facts .badge.s-complete, .facts .badge.s-truncated")  # truncated: a sample late on a busy host
        charts = page.charts()
        assert {"rx_bytes", "tx_packets", "state"} <= set(charts), charts
        page.shot("capture-series")

        page.go("captures")
        page.wait_row("ui-nf", "complete")
        assert "bobs-secret" not in page.body_text()  # another project's capture: not there at all
        page.shot("captures")

        page.go("taas")
        page.create_service("mirror", "monitor")
        page.create_flow("watch-a", "mirror", "host-a", "BOTH")
        page.wait_flow_status("watch-a", "ACTIVE")
        assert "bobs-port" not in page.body_text()
        page.shot("taas")

        driver.set_window_size(420, 900)  # a narrow window: one column, tables scroll inside their cards
        page.go("overview")
        page.wait_text("Observation points")
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 430
        page.shot("overview-narrow")
        driver.set_window_size(1280, 900)

        problems = page.console_problems()
        assert not problems, problems
    assert "tok-alice" not in (device.conf.parent / "daemon.log").read_text()  # tokens travel in headers only
