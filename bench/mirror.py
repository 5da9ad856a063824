"""Mirror benchmark: what a tap flow costs the traffic it mirrors, whether all its copies arrive, and how fast
tap flows turn ACTIVE, all through a real daemon (`python -m opentap serve`, as root: CAP_NET_ADMIN).

    ns A (a0 198.18.0.1) --veth-- HA --+
                                       bridge BR        tests/support/netns.py's Lan, prefix otbm<pid>
    ns B (b0 198.18.0.2) --veth-- HB --+
    ns M (m0, no address) --veth-- HM   <- the tap service's port; a BOTH tap flow from HA's port copies here

The mirror is made the TaaS way, through the API: ports for HM and HA, a tap service on HM's port, a tap flow
from HA's port with direction BOTH, polled until ACTIVE (and deleted through the API to unmirror).

1. TCP throughput A->B: iperf3 (server in B with -1, client in A, -J, pinned to CPUs 0 and 1), --seconds each,
   alternating without and with the tap flow, --rounds times: the ratio mirrored/unmirrored is the median of the
   rounds' ratios (goal >= 0.80; tcp_summary says why); the best of each and their ratio too.
2. Mirrored copies lost at fixed UDP rates (iperf3 -u -l 64: 106-byte frames, --udp-seconds each). Expected
   copies = HA's rx_packets + tx_packets deltas (the host namespace's /sys counters: what the BOTH mirror sees,
   iperf3's control connection included), received = m0's rx_packets delta read inside M; lost = expected -
   received (goal: 0 at 100 kpps). Also: HM's tx_dropped, the sender's achieved rate, and datagrams B lost.
3. Create -> ACTIVE for --flows tap flows (BOTH) from 10 dummy interfaces (ifb where the kernel has no dummy
   driver) in the host namespace to one tap service on another, created one at a time, each polled every
   --poll-ms (2): median, p90, p99, max, the count over 100 ms (goal: none), the median per block of 100 flows,
   and the time of a DELETE of a probe flow after 100 and after all flows (a DELETE runs a reconciler pass
   synchronously, after any pass in progress: about the cost of one to two passes at that size).

IPv6 is off and neighbours are static, so only the benchmark's packets are counted. The machine is noisy:
ratios against the peer in the same run mean more than absolute numbers. Everything made is removed on exit.
Run as root: .venv/bin/python bench/mirror.py [--quick] [--json] [--hosts]   (needs iperf3; --hosts: PostgreSQL)
--hosts: the same across three hosts, the copies in a VXLAN tunnel (bench/mirror_hosts.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.apicalls import headers  # noqa: E402 - the test tooling lives beside the benchmark
from tests.support.daemon import running  # noqa: E402
from tests.support.mirrorlab import monitoring  # noqa: E402
from tests.support.netns import B_IP, Lan, counters, ip, sysctl  # noqa: E402

PREFIX = f"otbm{os.getpid() % 10000}"  # "ot<digits>" is the tests'; interface names stay within 15 characters
IPERF_PORT = 5201  # inside namespace B only
PAYLOAD = 64  # UDP payload bytes: 14 + 20 + 8 + 64 = 106-byte frames
RATES = (10_000, 25_000, 50_000, 100_000)
DUMMIES = 10
# client on CPU 0, server on CPU 1: where the scheduler puts them is one source of noise fewer
AFFINITY = ["-A", "0,1"] if (os.cpu_count() or 1) >= 2 else []
SLOW_MS = 100
FLOW_TIMEOUT_S = 30.0  # one flow not ACTIVE by then ends the benchmark


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def in_ns(ns: str, *argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout,
                          check=check)


def tx_dropped(ifname: str) -> int:
    return int(Path(f"/sys/class/net/{ifname}/statistics/tx_dropped").read_text())


# --- topology -----------------------------------------------------------------------------------------------

@contextmanager
def dummies(names: list[str]) -> Iterator[str]:
    """Interfaces without a peer: dummy, or ifb where the kernel has no dummy driver (this one's has none)."""
    kind, made = "dummy", []
    try:
        for name in names:
            if subprocess.run(["ip", "link", "add", name, "type", kind], capture_output=True).returncode:
                kind = "ifb"  # the kernel has no dummy driver (or the name is taken: then this fails too)
                ip("link", "add", name, "type", kind)
            made.append(name)
            sysctl(f"net.ipv6.conf.{name}.disable_ipv6", "1")
            ip("link", "set", name, "up")
        yield kind
    finally:
        for name in made:
            ip("link", "del", name, check=False)


# --- the API ------------------------------------------------------------------------------------------------

class Api:
    def __init__(self, url: str, poll_s: float) -> None:
        self.poll_every = poll_s
        self.http = httpx.Client(base_url=url, headers=headers(), timeout=30)  # keep-alive: polls are cheap
        self.polls, self.poll_s = 0, 0.0

    def create(self, kind: str, **attrs: object) -> dict[str, Any]:
        path = "/v2.0/ports" if kind == "ports" else f"/v2.0/taas/{kind}"
        r = self.http.post(path, json={kind[:-1]: attrs})
        if r.status_code != 201:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text}")
        return r.json()[kind[:-1]]

    def port(self, name: str, ifname: str) -> str:
        return self.create("ports", name=name, port_security_enabled=False,
                           **{"binding:profile": {"interface": ifname}})["id"]

    def delete(self, kind: str, obj_id: str) -> float:
        """Seconds the DELETE took (for a tap flow: one synchronous reconciler pass)."""
        t = time.perf_counter()
        r = self.http.delete(f"/v2.0/taas/{kind}/{obj_id}")
        if r.status_code != 204:
            raise RuntimeError(f"DELETE {kind}/{obj_id}: {r.status_code} {r.text}")
        return time.perf_counter() - t

    def flow(self, service: str, source: str, direction: str = "BOTH") -> tuple[str, float]:
        """Create a tap flow and poll it until ACTIVE: its id and the seconds from the POST until ACTIVE."""
        t = time.perf_counter()
        fid = self.create("tap_flows", tap_service_id=service, source_port=source, direction=direction)["id"]
        deadline = t + FLOW_TIMEOUT_S
        while True:
            p = time.perf_counter()
            r = self.http.get(f"/v2.0/taas/tap_flows/{fid}")
            now = time.perf_counter()
            self.polls, self.poll_s = self.polls + 1, self.poll_s + now - p
            r.raise_for_status()
            status = r.json()["tap_flow"]["status"]
            if status == "ACTIVE":
                return fid, now - t
            if status == "ERROR" or now > deadline:
                raise RuntimeError(f"tap flow {fid} is {status} after {now - t:.1f} s")
            time.sleep(self.poll_every)


# --- traffic and counters -----------------------------------------------------------------------------------

class Counters:
    """The counters a mirror window is judged by: HA's (host namespace), HM's and M's m0 (read inside M)."""

    def __init__(self, lan: Lan, mon_ns: str, mon_host: str) -> None:
        self.lan, self.ns, self.host = lan, mon_ns, mon_host

    def read(self) -> dict[str, int]:
        ha, keys = counters(self.lan.ha), ("rx_packets", "rx_dropped")
        m0 = in_ns(self.ns, "cat", *(f"/sys/class/net/m0/statistics/{k}" for k in keys)).stdout.split()
        return {"expected": ha["rx_packets"] + ha["tx_packets"], "received": int(m0[0]), "m0_rx_dropped": int(m0[1]),
                "hm_tx_dropped": tx_dropped(self.host), "ha_tx_dropped": tx_dropped(self.lan.ha)}


@contextmanager
def iperf_server(ns: str, addr: str) -> Iterator[subprocess.Popen]:
    """`iperf3 -s -1` in ns on addr, listening when the block begins; killed if still there when it ends."""
    server = subprocess.Popen(["ip", "netns", "exec", ns, "iperf3", "-s", "-1", "-J", "-B", addr,
                               "-p", str(IPERF_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while f"{addr}:{IPERF_PORT}" not in in_ns(ns, "ss", "-Htln").stdout:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("iperf3 server did not start listening")
            time.sleep(0.02)
        yield server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def iperf(lan: Lan, cnt: Counters, seconds: int, *client_args: str) -> tuple[dict[str, Any], dict[str, int]]:
    """One iperf3 test A -> B: the client's JSON and the counters' deltas over the whole test (control
    connection included: both sides of the count see it), read once its last packets have settled."""
    before = cnt.read()
    with iperf_server(lan.ns_b, B_IP) as server:
        done = in_ns(lan.ns_a, "iperf3", "-c", B_IP, "-p", str(IPERF_PORT), "-J", "-t", str(seconds), *AFFINITY,
                     *client_args, timeout=seconds + 30, check=False)
        result = json.loads(done.stdout or "{}")
        if done.returncode or "error" in result:
            raise RuntimeError(f"iperf3 client failed: {result.get('error', done.stderr.strip())}")
        server.wait(15)
    time.sleep(0.3)  # late ACKs/FINs and the monitor's backlog reach the counters on both sides
    after = cnt.read()
    return result, {k: after[k] - before[k] for k in before}


def tcp_bench(lan: Lan, cnt: Counters, mirror_on: Callable[[], str], api: Api, seconds: int,
              rounds: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "mirrored": []}
    for i in range(rounds):  # alternating, so a noisy spell on the machine hits both sides
        for mode in ("plain", "mirrored"):
            fid = mirror_on() if mode == "mirrored" else None
            try:
                result, delta = iperf(lan, cnt, seconds)
            finally:
                if fid:
                    api.delete("tap_flows", fid)
            gbps = result["end"]["sum_received"]["bits_per_second"] / 1e9
            runs[mode].append({"gbps": round(gbps, 3), **delta})
            log(f"tcp round {i + 1}/{rounds} {mode}: {gbps:.2f} Gbit/s, copies {delta['received']}"
                f"/{delta['expected']}")
    return {"seconds": seconds, **tcp_summary(runs)}


def tcp_summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The ratio mirrored/unmirrored is the median of the rounds' ratios, each round's mirrored run against the
    unmirrored run just before it. Why not the best of each: on this shared machine a 4 s run lands anywhere
    between 13 and 21 Gbit/s (other users' load), so the best of several of either kind is one lucky window, and
    the ratio of two such windows moved by +-0.05 between otherwise equal runs. Two runs back to back share
    more of the machine's state, and the median drops a round that one burst of load hit on one side only
    (rounds of 0.54 and 1.24 have been seen). The best of each is still reported."""
    best = {mode: max(r["gbps"] for r in rs) for mode, rs in runs.items()}
    per_round = [m["gbps"] / p["gbps"] for p, m in zip(runs["plain"], runs["mirrored"], strict=True)]
    return {"runs": runs, "best_gbps": best, "best_ratio": round(best["mirrored"] / best["plain"], 3),
            "round_ratios": [round(x, 2) for x in per_round], "ratio": round(statistics.median(per_round), 3)}


def tcp_lines(tcp: dict[str, Any]) -> str:
    """Part 1's figures, after its first words (what was measured)."""
    lines = [f"{len(tcp['round_ratios'])} rounds: ratio mirrored (BOTH)/unmirrored {tcp['ratio']:.3f} (goal >= 0.80)",
             f"   the median of the rounds' ratios {tcp['round_ratios']}; best of each: unmirrored "
             f"{tcp['best_gbps']['plain']:.2f} Gbit/s, mirrored {tcp['best_gbps']['mirrored']:.2f} Gbit/s, their ratio "
             f"{tcp['best_ratio']:.2f}"]
    for mode, runs in tcp["runs"].items():
        lines.append(f"   {mode:>8}: " + ", ".join(f"{x['gbps']:.2f} Gbit/s (copies {x['received']}/{x['expected']})"
                                                    for x in runs))
    return "\n".join(lines)


def udp_bench(lan: Lan, cnt: Counters, seconds: int) -> list[dict[str, Any]]:
    rows = []
    for rate in RATES:
        result, delta = iperf(lan, cnt, seconds, "-u", "-l", str(PAYLOAD), "-b", str(rate * PAYLOAD * 8))
        s = result["end"]["sum"]
        achieved = s["packets"] / s["seconds"]
        rows.append({"rate": rate, "sent": s["packets"], "achieved_pps": round(achieved),
                     "rate_held": achieved >= 0.97 * rate, "b_lost": s["lost_packets"], **delta,
                     "lost": delta["expected"] - delta["received"]})
        log(f"udp {rate // 1000}k: sent {s['packets']}, copies {delta['received']}/{delta['expected']}")
    return rows


# --- create -> ACTIVE -----------------------------------------------------------------------------------------

def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def activation_bench(api: Api, flows: int, budget_s: float) -> dict[str, Any]:
    """Stops creating early (and says so) once budget_s have passed: the loop stays bounded however slow."""
    names = [f"{PREFIX}d{i}" for i in range(DUMMIES)]
    target = f"{PREFIX}dm"
    with dummies([*names, target]) as kind:
        service = api.create("tap_services", name="bench-dummies", port_id=api.port("bench-dm", target))["id"]
        try:
            sources = [api.port(f"bench-d{i}", name) for i, name in enumerate(names)]
            latencies: list[float] = []
            slow: list[tuple[int, float, float]] = []  # (flow number, seconds into the run at its POST, ms)
            passes: dict[int, float] = {}
            checkpoints = sorted({min(100, flows), flows})
            api.polls, api.poll_s = 0, 0.0
            t0 = time.perf_counter()
            for i in range(flows):
                if time.perf_counter() - t0 > budget_s:
                    log(f"flows: time budget of {budget_s:.0f} s spent after {i} flows; stopping there")
                    break
                posted = time.perf_counter() - t0
                latencies.append(api.flow(service, sources[i % DUMMIES])[1] * 1000)
                if latencies[-1] > SLOW_MS:
                    slow.append((i + 1, round(posted, 2), round(latencies[-1], 1)))
                if i + 1 in checkpoints:  # a probe flow's DELETE: one reconciler pass over this many flows
                    probe, _ = api.flow(service, sources[0])
                    passes[i + 1] = round(api.delete("tap_flows", probe) * 1000, 1)
                if (i + 1) % 100 == 0:
                    log(f"flows: {i + 1}/{flows}, last 100 median {statistics.median(latencies[-100:]):.1f} ms")
            wall = time.perf_counter() - t0
        finally:
            with suppress(httpx.HTTPError, RuntimeError):  # tidiness only: the dummies take their rules along
                api.delete("tap_services", service)
    ordered = sorted(latencies)
    blocks = [round(statistics.median(latencies[b:b + 100]), 1) for b in range(0, len(latencies), 100)]
    return {"flows": len(latencies), "asked": flows, "kind": kind, "wall_s": round(wall, 2),
            "median_ms": round(statistics.median(ordered), 1), "p90_ms": round(pct(ordered, 90), 1),
            "p99_ms": round(pct(ordered, 99), 1), "max_ms": round(ordered[-1], 1),
            "over_100ms": len(slow), "slow": slow, "block_medians_ms": blocks,
            "delete_pass_ms": passes, "mean_poll_rtt_ms": round(api.poll_s / max(api.polls, 1) * 1000, 2)}


# --- the run ------------------------------------------------------------------------------------------------

def bench(args: argparse.Namespace) -> dict[str, Any]:
    git = ["git", "-C", str(ROOT)]  # the code the daemon runs is the tree's as it starts
    commit = subprocess.run([*git, "log", "-1", "--oneline"], capture_output=True, text=True).stdout.strip()
    if subprocess.run([*git, "status", "--porcelain", "--", "opentap"], capture_output=True, text=True).stdout:
        commit += "  (+ uncommitted changes in opentap/)"
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="otbench-mirror-"))
        stack.callback(shutil.rmtree, work, True)
        lan = Lan(PREFIX)
        stack.callback(lan.down)  # registered first: a half-made LAN goes too
        lan.up()
        mon_ns, mon_host = stack.enter_context(monitoring(lan))
        time.sleep(0.2)  # let the links settle before anything is counted
        # thousands of tap flows in one project: beyond the default TaaS quota, so unlimited here
        d = stack.enter_context(running(work, data_dir=str(work / "data"), taas_quota={"tap_flow": -1}))
        api = Api(d.url, args.poll_ms / 1000)
        stack.callback(api.http.close)
        service = api.create("tap_services", name="bench-m", port_id=api.port("bench-m", mon_host))["id"]
        port_a = api.port("bench-a", lan.ha)
        activations: list[float] = []

        def mirror_on() -> str:
            fid, seconds = api.flow(service, port_a)
            activations.append(seconds * 1000)
            return fid

        cnt = Counters(lan, mon_ns, mon_host)
        log(f"TCP: {args.rounds} rounds of {args.seconds} s unmirrored and mirrored ...")
        tcp = tcp_bench(lan, cnt, mirror_on, api, args.seconds, args.rounds)
        log(f"UDP: {len(RATES)} rates of {args.udp_seconds} s, mirrored ...")
        fid = mirror_on()
        try:
            udp = udp_bench(lan, cnt, args.udp_seconds)
        finally:
            api.delete("tap_flows", fid)
        log(f"create -> ACTIVE for {args.flows} tap flows ...")
        act = activation_bench(api, args.flows, args.budget_min * 60)
        return {"commit": commit, "poll_ms": args.poll_ms, "tcp": tcp, "udp": udp, "activation": act,
                "mirror_activation_ms": [round(v, 1) for v in activations]}


def report(r: dict[str, Any]) -> str:
    tcp, act = r["tcp"], r["activation"]
    lines = [f"at {r['commit']}", "",
             f"1. TCP A->B (iperf3, {tcp['seconds']} s each), " + tcp_lines(tcp)]
    head = ("rate pps", "achieved", "held", "sent", "B lost", "expected", "received", "lost", "hm txdrop",
            "m0 rxdrop")
    lines += ["", "2. mirrored copies at fixed UDP rates (106-byte frames; expected = A's host veth rx+tx, "
              "received = m0 rx), goal 0 lost at 100k:", " ".join(f"{h:>10}" for h in head)]
    for u in r["udp"]:
        cells = (u["rate"], u["achieved_pps"], "yes" if u["rate_held"] else "NO", u["sent"], u["b_lost"],
                 u["expected"], u["received"], u["lost"], u["hm_tx_dropped"], u["m0_rx_dropped"])
        lines.append(" ".join(f"{c:>10}" for c in cells))
    passes = ", ".join(f"{n} flows: {ms} ms" for n, ms in act["delete_pass_ms"].items())
    short = f" (of {act['asked']} asked: the time budget ran out)" if act["flows"] < act["asked"] else ""
    lines += ["", f"3. create -> ACTIVE, {act['flows']}{short} tap flows (BOTH) from {DUMMIES} "
              f"{act['kind']} interfaces to one tap service, "
              f"polled every {r['poll_ms']:g} ms (mean poll round trip {act['mean_poll_rtt_ms']} ms):",
              f"   median {act['median_ms']} ms, p90 {act['p90_ms']} ms, p99 {act['p99_ms']} ms, "
              f"max {act['max_ms']} ms, {act['over_100ms']} over {SLOW_MS} ms (goal: 0); total wall {act['wall_s']} s",
              "   over 100 ms (flow #, s into the run, ms): "
              + (", ".join(f"#{n} @{t:.1f}s {ms:.0f}" for n, t, ms in act["slow"][:12]) or "none"),
              "   median per 100 flows, in creation order: " + " ".join(map(str, act["block_medians_ms"])) + " ms",
              f"   a DELETE (runs a pass, after any in progress: 1-2 passes) at {passes}",
              "   the single mirror of parts 1-2 turned ACTIVE in: "
              + ", ".join(f"{v:.0f}" for v in r["mirror_activation_ms"]) + " ms"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs and 100 flows: a smoke run of about a minute")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    ap.add_argument("--hosts", action="store_true", help="across three hosts (bench/mirror_hosts.py; flows default "
                    "200, quick 50)")
    ap.add_argument("--underlay-mtu", type=int, default=1550, help="--hosts: the underlay's MTU (default 1550, "
                    "the usual VXLAN underlay: full-size copies fit; 1500 with --vm-mtu 1500 fragments every one)")
    ap.add_argument("--vm-mtu", type=int, default=1500, help="--hosts: the VM's MTU (default 1500; Neutron gives "
                    "VMs on VXLAN networks 1450)")
    ap.add_argument("--seconds", type=int, help="TCP seconds per run (default 4; quick 2)")
    ap.add_argument("--rounds", type=int, help="TCP rounds of unmirrored + mirrored (default 7; quick 1)")
    ap.add_argument("--udp-seconds", type=int, help="seconds per UDP rate (default 3; quick 1)")
    ap.add_argument("--flows", type=int, help="tap flows for create -> ACTIVE (default 1000; quick 100)")
    ap.add_argument("--poll-ms", type=float, default=2, help="pause between status polls of a new flow (default 2)")
    ap.add_argument("--budget-min", type=float, default=60, help="stop creating flows after this long (default 60)")
    args = ap.parse_args()
    flows = (200, 50) if args.hosts else (1000, 100)
    for key, full, quick in (("seconds", 4, 2), ("rounds", 7, 1), ("udp_seconds", 3, 1), ("flows", *flows)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    if os.geteuid() != 0:
        sys.exit("needs root: network namespaces, and the daemon needs CAP_NET_ADMIN")
    for tool in ("ip", "iperf3", "ss"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    # SIGTERM -> SystemExit, so the finally blocks clean up as on Ctrl-C; SIGINT explicitly, since a shell
    # starts background jobs with it ignored and Python then keeps it ignored.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.hosts:
        import mirror_hosts  # beside this file: the cross-host mode reuses its pieces

        run, show = mirror_hosts.bench, mirror_hosts.report
    else:
        run, show = bench, report
    try:
        result = run(args)
    except KeyboardInterrupt:
        log("interrupted; namespaces, links, daemons and temp dir removed")
        return 130
    print(show(result))
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
