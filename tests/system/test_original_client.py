"""The original OpenTap module's calls, made exactly as it makes them (demo/opentap.py of utepnetlab/opentap: no
token, `requests`, the same URLs and the same proposed ids, the same exact Content-Type checks, pandas' read_csv,
the netflow trailer's three rows dropped), against a device configured in the original's own format."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.support.daemon import Daemon, free_port
from tests.support.netns import B_IP

pytestmark = pytest.mark.root
NFDUMP_COLUMNS = ["ts", "te", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt"]


class Original:
    """What the original module does with each call, written here from its description: its `capture` proposes
    `<type>_<point>_<start>_<stop>` and keeps the id the device answers with; its `retrieve` trusts only an exact
    `text/csv` or `application/json`."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def capabilities(self) -> dict:
        r = requests.get(self.base + "/capabilities", timeout=30)
        assert r.headers["Content-Type"] == "application/json"
        return r.json()

    def capture(self, kind: str, start: int, stop: int, point: str = "", period: int | None = None) -> tuple[str, dict]:
        proposed = f"{kind}_{point}_{start}_{stop}"
        url = f"{self.base}/capture/{kind}?id={proposed}&start={start}&stop={stop}"
        if point:
            url += f"&observationPt={point}"
        if period is not None:
            url += f"&period={period}"
        r = requests.get(url, timeout=30)
        assert r.headers["Content-Type"] == "application/json"
        body = r.json()
        return (body["id"] if body["status"] == "success" else proposed), body

    def retrieve(self, kind: str, capture_id: str) -> tuple[requests.Response, pd.DataFrame]:
        r = requests.get(f"{self.base}/retrieve?id={capture_id}", timeout=60)
        if r.status_code != 200 or r.text.count("\n") < 2 or r.headers["Content-Type"] != "text/csv":
            return r, pd.DataFrame()
        frame = pd.read_csv(io.StringIO(r.text))
        if kind == "netflow":
            frame = frame[: len(frame.index) - 3][NFDUMP_COLUMNS]  # nfdump's Summary trailer
            frame["ipkt"] = frame["ipkt"].astype(int)
        else:
            frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
        return r, frame


@pytest.fixture
def device(tmp_path: Path, lan) -> Iterator[tuple[Daemon, Original]]:
    port = free_port()
    conf = tmp_path / "opentap.conf"  # the original's format: no tokens, its aliases
    conf.write_text(f"retention: 60\nwebsrv-addr: 127.0.0.1:{port}\nalias: {lan.ha} a\nalias: nosuch0 gone\n"
                    f"default-network-observationpt: {lan.ha}\n")
    d = Daemon(conf, port)
    d.start()
    try:
        yield d, Original(port)
    finally:
        d.stop()


def wait_done(d: Daemon, cid: str) -> None:
    deadline = time.monotonic() + 30
    while requests.get(f"{d.url}/captures/{cid}", timeout=10).json()["capture"]["state"] in ("scheduled", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_the_original_modules_calls(device: tuple[Daemon, Original], lan) -> None:
    d, original = device
    assert set(original.capabilities()["network_observation_pts"]) == {"a", "gone"}
    now = int(time.time())
    flows, _ = original.capture("netflow", now, now + 3, "a")
    counters, answer = original.capture("ethernet", now, now + 3, "a", period=500)
    # the same window again: the module proposes the same id, and keeps the fresh one the device answers with
    packets, taken = original.capture("ethernet", now, now + 3, "a")
    again, _ = original.capture("ethernet", now, now + 3, "a")
    assert flows == f"netflow_a_{now}_{now + 3}" and counters == f"ethernet_a_{now}_{now + 3}"
    assert "counters" in answer["msg"] and answer["type"] == "linkstats"
    assert f"The id '{counters}' was already taken" in taken["msg"] and len({counters, packets, again}) == 3
    time.sleep(0.5)
    lan.run(lan.ns_a, "udp", B_IP, 5000, 25, 100)
    for cid in (flows, counters, packets, again):
        wait_done(d, cid)

    r, netflow = original.retrieve("netflow", flows)
    # (B answers datagrams to a closed port with a few ICMP errors: flows of their own)
    assert r.headers["Content-Type"] == "text/csv" and netflow[netflow["pr"] == "UDP"]["ipkt"].sum() == 25
    r, rows = original.retrieve("ethernet", counters)  # the original's ethernet: counters every 500 ms
    # (every 500 ms of a 3 s window, from when it started: the four captures start one after another)
    assert list(rows.columns[:3]) == ["time", "state", "rx_bytes"] and 4 <= len(rows) <= 8
    assert set(rows["state"]) == {1} and str(rows["time"].dtype).startswith("datetime64")
    for cid in (packets, again):  # a config in the original's format serves ethernet as per-packet CSV
        r, rows = original.retrieve("ethernet", cid)
        assert r.headers["Content-Type"] == "text/csv" and (rows["protocol"] == "UDP").sum() == 25

    failed, _ = original.capture("ethernet", int(time.time()), int(time.time()) + 2, "gone")
    wait_done(d, failed)
    r, empty = original.retrieve("ethernet", failed)
    assert empty.empty and r.status_code == 409 and r.headers["Content-Type"] == "application/json"
    assert r.json()["status"] == "error" and "failed" in r.json()["msg"] and "nosuch0" in r.json()["msg"]
    r, empty = original.retrieve("netflow", "no_such_capture")
    assert empty.empty and r.status_code == 404 and r.json() == {"status": "error",
                                                                  "msg": "no capture with id 'no_such_capture'"}
