"""The web interface's load times, measured in the browser: a real daemon holding 10,000 captures and a netflow
capture of 1,000,000 flow records, and headless Chromium (tests/support/browser.py) loading each page.

Data: the captures are rows put into the database before the daemon starts (as the engine leaves finished ones);
the flow records are metered by the device's own meter from a generated pcap of that many one-packet UDP flows
(a few hosts sending most, as traffic does), written as a netflow capture writes its flows.csv.

Measured per page, from the browser's own clocks (Navigation Timing, Paint Timing, and the marks the page sets
when its data is on screen, `performance.mark("opentap:…")`): first paint, first contentful paint, DOM content
loaded, load, and the time until the page's data is shown. The flow capture's page is measured cold (the
device's first read of the capture: it builds the flow index) and then warm. For comparison, the API calls
behind the pages are timed directly, with GET /captures as it was (every capture in one answer) beside the page
of 50 the interface asks for. Each page is loaded --runs times; the median and the worst are printed.
Run (root not needed): .venv/bin/python bench/ui.py [--captures N] [--records N] [--runs R] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from opentap.db.models import Capture  # noqa: E402
from opentap.db.session import open_database  # noqa: E402
from tests.support import browser  # noqa: E402 - the test tooling lives beside the benchmark
from tests.support.configs import write_config  # noqa: E402
from tests.support.daemon import Daemon, free_port  # noqa: E402
from tests.support.flowrecords import metered, plant  # noqa: E402

TOKEN = "tok-admin"
FLOW_ID = "big-netflow"


def flows_pcap(path: Path, flows: int, hosts: int = 2000, start: float = 1_700_000_000.0, span: float = 3600) -> None:
    """One UDP packet per flow: source ports cycle, so a key comes back only after 60,000 packets (minutes later,
    beyond the idle timeout): every packet is a flow record of its own. Sources are skewed (a few send most)."""
    rnd = random.Random(7)
    rec = struct.Struct("<IIII")
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        batch = []
        for i in range(flows):
            t = start + span * i / flows
            h = int(hosts * rnd.random() ** 3)
            size = 28 + (h * 7919) % 200
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 17, 0, bytes((198, 18, h >> 8, h & 255)),
                             bytes((198, 19, 0, 1 + i % 40)))
            udp = struct.pack("!HHHH", 1024 + i % 60000, (53, 443, 80, 123, 5000)[i % 5], size - 20, 0)
            frame = eth + ip + udp + bytes(size - 28)
            sec = int(t)
            batch.append(rec.pack(sec, int((t - sec) * 1e6), len(frame), len(frame)) + frame)
            if len(batch) == 10000:
                f.write(b"".join(batch))
                batch = []
        f.write(b"".join(batch))


def prepare(work: Path, captures: int, records: int) -> tuple[Path, dict[str, Any]]:
    conf = write_config(work, {"lo": "lo", "eth": "lo"}, retention_minutes=10**6, disk_quota_mb=10**6,
                        project_disk_quota_mb=10**6, gc_interval_seconds=30)
    t = time.perf_counter()
    db, sessions = open_database(f"sqlite:///{work / 'opentap.db'}")
    now = time.time()
    states = ("complete", "complete", "complete", "truncated", "failed", "cancelled")
    with sessions() as s, s.begin():
        s.add_all(Capture(
            id=f"cap-{i:05d}", type=("netflow", "ethernet", "linkstats")[i % 3], project_id=("alice", "bob")[i % 2],
            observation_point=("lo", "eth")[i % 2], interface="lo", start=now - 86400 + i * 8,
            stop=now - 86400 + i * 8 + 60,
            state=states[i % len(states)], options={}, created_at=now - 86400 + i * 8, started_at=now - 86400 + i * 8,
            finished_at=now - 86400 + i * 8 + 60, packets=i * 10, bytes=i * 1000, drops_kernel=0, drops_interface=0,
            data_bytes=0, segments=1, reason="" if i % 6 < 3 else "the window passed while the daemon was down",
            stats={}) for i in range(captures))
    rows_s = time.perf_counter() - t
    t = time.perf_counter()
    pcap = work / "flows.pcap"
    flows_pcap(pcap, records)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    csv = work / "flows.csv"
    made = metered(pcap, csv)
    meter_s = time.perf_counter() - t
    pcap.unlink()
    plant(sessions, work / "data", "admin", FLOW_ID, csv, start=now - 120, move=True)
    db.dispose()
    size = (work / "data" / "projects" / "admin" / FLOW_ID / "flows.csv").stat().st_size
    return conf, {"captures": captures, "records": made, "flows_csv_mib": round(size / 2**20, 1),
                  "seconds_rows": round(rows_s, 2), "seconds_pcap": round(gen_s, 2), "seconds_meter": round(meter_s, 2)}


TIMING = """
const nav = performance.getEntriesByType("navigation")[0];
const paint = Object.fromEntries(performance.getEntriesByType("paint").map((p) => [p.name, p.startTime]));
const mark = performance.getEntriesByName(arguments[0])[0];
return {ttfb: nav.responseStart, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
        fp: paint["first-paint"] ?? null, fcp: paint["first-contentful-paint"] ?? null,
        data: mark ? mark.startTime : null};
"""


def load(driver: Any, url: str, mark: str, timeout: float = 120) -> dict[str, float]:
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + timeout
    while True:
        got = driver.execute_script(TIMING, mark)
        if got["data"] is not None and got["load"]:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: no {mark} within {timeout} s: {got}")
        time.sleep(0.05)


def api_ms(d: Daemon, path: str, runs: int, **params: object) -> dict[str, float]:
    times, size = [], 0
    with httpx.Client(headers={"X-Auth-Token": TOKEN}, timeout=120) as c:
        for _ in range(runs):
            t = time.perf_counter()
            r = c.get(d.url + path, params=params)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text[:300]
            size = len(r.content)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1), "bytes": size}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--captures", type=int, default=10_000)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if reason := browser.missing():
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="otbench-ui-") as tmp:
        work = Path(tmp)
        conf, data = prepare(work, args.captures, args.records)
        print(f"data: {data['captures']:,} captures, a netflow capture of {data['records']:,} records "
              f"({data['flows_csv_mib']} MiB of flows.csv); rows {data['seconds_rows']} s, pcap "
              f"{data['seconds_pcap']} s, metered in {data['seconds_meter']} s")
        port = free_port()
        d = Daemon(conf, port)
        d.start()
        results: dict[str, Any] = {"data": data, "pages": {}, "api": {}}
        try:
            base = f"{d.url}/ui/"
            with browser.chromium() as driver:
                driver.get(base)
                driver.execute_script("sessionStorage.setItem('opentap.token', arguments[0])", TOKEN)
                pages = {"overview": ("#/overview", "opentap:overview"), "captures": ("#/captures", "opentap:captures")}
                flows = f"#/capture/{FLOW_ID}?project=admin"
                cold = load(driver, f"{base}?run=cold{flows}", "opentap:flows-table", timeout=300)
                results["pages"]["flows-cold"] = {k: [v] for k, v in cold.items()}
                pages |= {"flows-table": (flows, "opentap:flows-table"),
                          "flows-summary": (flows, "opentap:flows-summary")}
                for name, (fragment, mark) in pages.items():
                    runs = [load(driver, f"{base}?run={name}{i}{fragment}", mark) for i in range(args.runs)]
                    results["pages"][name] = {k: [r[k] for r in runs] for k in runs[0]}
            results["api"] = {
                "captures (all, as before)": api_ms(d, "/captures", args.runs),
                "captures (a page of 50)": api_ms(d, "/captures", args.runs, limit=50, order="desc"),
                "flows page (warm)": api_ms(d, f"/captures/{FLOW_ID}/flows", args.runs, sort="ibyt", order="desc"),
                "flows page, a deep one": api_ms(d, f"/captures/{FLOW_ID}/flows", args.runs, sort="sa",
                                                 offset=args.records // 2),
                "flows page, filtered": api_ms(d, f"/captures/{FLOW_ID}/flows", args.runs, host="198.18.0.1"),
                "flows summary (warm)": api_ms(d, f"/captures/{FLOW_ID}/flows/summary", args.runs),
                "observation-points": api_ms(d, "/observation-points", args.runs),
            }
        finally:
            d.stop()
    print(f"pages (ms from navigation start; median / worst of {args.runs}; flows-cold: one load, the index built)")
    print(f"{'page':16} {'first paint':>14} {'first content':>14} {'DOM loaded':>14} {'load':>14} {'data shown':>14}")
    for name, r in results["pages"].items():
        cells = []
        for key in ("fp", "fcp", "dcl", "load", "data"):
            values = [v for v in r[key] if v is not None]
            cells.append(f"{statistics.median(values):6.0f} / {max(values):5.0f}" if values else "–")
        print(f"{name:16} " + " ".join(f"{c:>14}" for c in cells))
    print("API calls behind them (ms, median / worst; bytes of the answer):")
    for name, r in results["api"].items():
        print(f"  {name:28} {r['median_ms']:8.1f} / {r['max_ms']:8.1f}  {r['bytes']:>12,} bytes")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
