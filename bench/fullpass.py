"""Full-pass benchmark: what the reconciler's full pass costs when it reads every interface of the host.

--veths veth pairs (host ends in the host namespace, peers in a namespace of their own) and one monitoring
interface; an in-process app (as the tests' make_client) with --flows BOTH tap flows, one per veth, made
through the API. Then, each the best and the median of --rounds:
  - scan: one read of every interface's two clsact hooks (the full pass's kernel dump, `_read_kernel`);
  - full pass: `run_once(full=True)`, the scan plus comparing every flow and writing nothing;
  - quick pass: `run_once()`, for comparison;
and install / remove of one mirror by the driver. Interfaces others made on the host are in the scan too, and
their number is printed. Everything made is removed on exit.
Run as root: .venv/bin/python bench/fullpass.py [--veths 200] [--flows 200] [--rounds 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # its import below

from fastapi.testclient import TestClient  # noqa: E402

from opentap import config  # noqa: E402
from opentap.api.app import create_app  # noqa: E402
from opentap.datapath.base import Mirror  # noqa: E402
from tests.support.apicalls import headers  # noqa: E402 - the test tooling lives beside the benchmark
from tests.support.configs import write_config  # noqa: E402
from tests.support.netns import ip  # noqa: E402

PREFIX = f"otbf{os.getpid() % 10000}"  # interface names stay within 15 characters


def timed(fn: Callable[[], object], rounds: int) -> dict[str, float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"best_ms": round(min(times), 2), "median_ms": round(statistics.median(times), 2)}


def _created(r: Any, kind: str) -> dict[str, Any]:
    """The created resource, or the device's own refusal (not a KeyError)."""
    if r.status_code != 201:
        raise SystemExit(f"creating a {kind}: {r.status_code} {r.text}")
    return r.json()[kind]


def bench(args: argparse.Namespace) -> dict[str, Any]:
    ns, monitor = f"{PREFIX}ns", f"{PREFIX}m"
    veths = [f"{PREFIX}v{i}" for i in range(args.veths)]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ip("link", "add", monitor, "type", "veth", "peer", "name", "m0", "netns", ns)
        ip("link", "set", monitor, "up")
        for i, name in enumerate(veths):
            ip("link", "add", name, "type", "veth", "peer", "name", f"p{i}", "netns", ns)
            ip("link", "set", name, "up")
        with tempfile.TemporaryDirectory() as tmp:
            cfg = config.load(write_config(Path(tmp), taas_quota={"tap_flow": -1}))  # 200 flows: past the default quota
            with TestClient(create_app(cfg)) as api:
                dp = api.app.state.device.datapath
                dp.period, dp.full_period = 3600, 3600  # only the passes measured here
                post = lambda path, kind, **a: _created(api.post(path, headers=headers(), json={kind: a}), kind)  # noqa: E731
                port = lambda name, ifname: post("/v2.0/ports", "port", name=name, port_security_enabled=False,  # noqa: E731
                                                 **{"binding:profile": {"interface": ifname}})["id"]
                service = post("/v2.0/taas/tap_services", "tap_service", port_id=port("m", monitor))["id"]
                for name in veths[:args.flows]:
                    post("/v2.0/taas/tap_flows", "tap_flow", tap_service_id=service, source_port=port(name, name),
                         direction="BOTH")
                deadline = time.monotonic() + 120
                while any(f["status"] != "ACTIVE" for f in api.get("/v2.0/taas/tap_flows", headers=headers())
                          .json()["tap_flows"]):
                    assert time.monotonic() < deadline, "tap flows did not turn ACTIVE"
                    time.sleep(0.2)
                probe = Mirror(0x3FFE, veths[0], monitor, "BOTH")
                out = {
                    "interfaces_scanned": len(os.listdir("/sys/class/net")), "veths": args.veths,
                    "flows": args.flows, "filters": sum(len(r) for r in dp._read_kernel()[1].values()),
                    "scan": timed(dp._read_kernel, args.rounds),
                    "full_pass": timed(lambda: dp.run_once(full=True), args.rounds),
                    "quick_pass": timed(dp.run_once, args.rounds),
                    "install_one": timed(lambda: dp.driver.install(probe), args.rounds),
                    "drift": dp.drift,
                }
                out["remove_one"] = timed(lambda: dp.driver.remove(probe.source, probe.slot), 1)
                return out
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for name in [monitor, *veths]:
            ip("link", "del", name, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--veths", type=int, default=200)
    ap.add_argument("--flows", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    out = bench(args)
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:20} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
