"""API load benchmark: latency and the daemon's CPU time per call under an open-loop request rate, with the
device idle and while it captures, through a real daemon (`python -m opentap serve`, as root).

    ns A (a0 198.18.0.1) --veth-- HA --+
                                       bridge BR        tests/support/netns.py's Lan, prefix otal<pid>
    ns B (b0 198.18.0.2) --veth-- HB --+                observation points a = HA, b = HB

Open loop: call i is sent at t0 + i / rate whether or not earlier ones were answered, and its latency counts
from then, so a daemon that falls behind shows its queue in the latency. "new connection": one TCP connection
per call (`Connection: close`, as curl or a script); "keep-alive": idle connections are reused, another one
opened only when none is idle. The client is asyncio with hand-written HTTP/1.1, to cost the CPUs little.
CPU per call: the daemon's utime + stime (/proc/PID/stat, all threads, not its tcpdump children) over a run,
divided by its calls; "net" first takes off the daemon's own rate in a quiet window (--quiet-seconds) just
before (engine ticks, flow meter), scaled to the run's length.

1. GET /healthz, /capabilities and /captures (50 captures scheduled for tomorrow at set-up), each alone at
   --rate for --endpoint-seconds, device idle.
2. GET /capabilities at --rate for --seconds, idle: new connection, then keep-alive.
3. The same while 4 captures run (ethernet and netflow on each of HA and HB) and A sends --pps 64-byte UDP
   datagrams to B (tests/support/traffic.py: bounded, 198.18.0.0/15) on the same CPUs; and --serial calls one after
   another (new connection each): the latency of a call that does not queue.
Goals (the issue's): under 1 ms of daemon CPU per call, p99 under 50 ms with 4 captures running.
Everything made (namespaces, links, daemon, traffic, temp dir) is removed on exit.
Run as root: .venv/bin/python bench/api_load.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.apicalls import headers  # noqa: E402 - the test tooling lives beside the benchmark
from tests.support.daemon import Daemon, running  # noqa: E402
from tests.support.netns import B_IP, Lan  # noqa: E402

PREFIX = f"otal{os.getpid() % 10000}"  # interface names stay within 15 characters
TOKEN = headers()["X-Auth-Token"]  # the tests' admin token: admins see every capture and every interface
LISTED = 50  # captures scheduled at set-up, so /captures has a realistic list to serialise
TIMEOUT_S = 10.0  # a call not answered by then is an error
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOAL_CPU_MS, GOAL_P99_MS = 1.0, 50.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all threads (fields 14 and 15; the name in field 2 may contain spaces)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


# --- the load generator ---------------------------------------------------------------------------------

class Load:
    """Open-loop GETs of one path against 127.0.0.1:port."""

    def __init__(self, port: int, path: str, keep_alive: bool) -> None:
        self.port, self.keep_alive = port, keep_alive
        close = b"" if keep_alive else b"Connection: close\r\n"
        self.request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Auth-Token: {TOKEN}\r\n".encode()
                        + close + b"\r\n")
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = self.retried = 0

    async def _response(self, reader: asyncio.StreamReader) -> int:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise RuntimeError("chunked responses are not expected from these routes")
        await reader.readexactly(length)
        return int(head[9:12])

    async def call(self) -> int:
        while self.idle:
            reader, writer = self.idle.pop()
            if reader.at_eof():  # the server closed it while idle (uvicorn: after 5 s): as any client, drop it
                writer.close()
                continue
            try:
                return await self._exchange(reader, writer)
            except (ConnectionResetError, asyncio.IncompleteReadError) as e:
                if isinstance(e, asyncio.IncompleteReadError) and e.partial:
                    raise
                self.retried += 1  # closed as we sent: a client retries on a fresh connection, so do we
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.opened += 1
        return await self._exchange(reader, writer)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        try:
            writer.write(self.request)
            status = await self._response(reader)
        except BaseException:
            writer.close()
            raise
        if self.keep_alive:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _open_loop(load: Load, rate: float, seconds: float) -> dict[str, Any]:
    n = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    late: list[float] = []
    loop = asyncio.get_running_loop()

    async def one(due: float) -> None:
        try:
            status = await asyncio.wait_for(load.call(), TIMEOUT_S)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
                return
            latencies.append(loop.time() - due)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, RuntimeError, TimeoutError) as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1

    t0 = loop.time() + 0.05
    tasks = []
    for i in range(n):
        due = t0 + i / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        late.append(loop.time() - due)  # the generator's own lateness: large values mean it could not keep up
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    load.close()
    ordered = sorted(latencies) or [float("nan")]
    return {"calls": n, "ok": len(latencies), "errors": errors, "connections": load.opened, "retried": load.retried,
            "p50_ms": round(pct(ordered, 50) * 1000, 2), "p99_ms": round(pct(ordered, 99) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2), "gen_late_p99_ms": round(pct(sorted(late), 99) * 1000, 2),
            "gen_late_max_ms": round(max(late, default=0) * 1000, 2)}


def measured(d: Daemon, path: str, rate: float, seconds: float, keep_alive: bool, quiet_s: float) -> dict[str, Any]:
    """One open-loop run with the daemon's CPU time over it, and over a quiet window just before."""
    pid = d.proc.pid
    c0 = cpu_seconds(pid)
    time.sleep(quiet_s)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    result = asyncio.run(_open_loop(Load(d.port, path, keep_alive), rate, seconds))
    c2, wall = cpu_seconds(pid), time.monotonic() - t1
    background = (c1 - c0) / quiet_s  # CPU seconds per second the daemon spends without calls
    calls = max(result["calls"], 1)
    result.update(path=path, keep_alive=keep_alive, rate=rate, seconds=seconds,
                  background_cpu_pct=round(background * 100, 1),
                  cpu_ms_per_call=round((c2 - c1) / calls * 1000, 3),
                  net_cpu_ms_per_call=round(max(0.0, c2 - c1 - background * wall) / calls * 1000, 3))
    return result


def serial(d: Daemon, path: str, count: int) -> dict[str, Any]:
    async def run() -> list[float]:
        load, out = Load(d.port, path, keep_alive=False), []
        for _ in range(count):
            t = time.perf_counter()
            if await asyncio.wait_for(load.call(), TIMEOUT_S) == 200:
                out.append(time.perf_counter() - t)
        return out

    ordered = sorted(asyncio.run(run())) or [float("nan")]
    return {"calls": count, "ok": len(ordered), "p50_ms": round(pct(ordered, 50) * 1000, 2),
            "p99_ms": round(pct(ordered, 99) * 1000, 2)}


# --- the device -----------------------------------------------------------------------------------------

def schedule_listed(api: httpx.Client) -> None:
    """LISTED linkstats captures tomorrow, in windows that do not overlap (the concurrency limit counts
    overlapping windows), so /captures lists them and nothing runs."""
    base = int(time.time()) + 86_400
    for i in range(LISTED):
        r = api.post("/captures", json={"type": "linkstats", "start": base + 20 * i, "stop": base + 20 * i + 10,
                                        "observationpt": "a"})
        if r.status_code != 201:
            raise RuntimeError(f"POST /captures: {r.status_code} {r.text}")


def start_captures(api: httpx.Client, seconds: float) -> list[str]:
    now = time.time()
    ids = []
    for kind in ("ethernet", "netflow"):
        for point in ("a", "b"):
            r = api.post("/captures", json={"type": kind, "start": now, "stop": now + seconds,
                                            "observationpt": point})
            if r.status_code != 201:
                raise RuntimeError(f"POST /captures ({kind} on {point}): {r.status_code} {r.text}")
            ids.append(r.json()["id"])
    deadline = time.monotonic() + 15
    for cid in ids:
        while (state := api.get(f"/captures/{cid}").json()["capture"]["state"]) != "running":
            if state != "scheduled" or time.monotonic() > deadline:
                raise RuntimeError(f"capture {cid} is {state}, not running")
            time.sleep(0.05)
    return ids


def stop_captures(api: httpx.Client, ids: list[str]) -> list[dict[str, Any]]:
    """Cancel the captures; what they counted, or what went wrong (the load figures are in by now: a failed
    cancel is reported with them rather than losing them)."""
    out = []
    for cid in ids:
        try:
            r = api.delete(f"/captures/{cid}")
        except httpx.HTTPError as e:
            out.append({"id": cid, "error": f"{type(e).__name__}: {e}"})
            continue
        if r.status_code != 200:
            out.append({"id": cid, "error": f"DELETE: {r.status_code} {r.text[:300]}"})
            continue
        cap = r.json()["capture"]
        out.append({"type": cap["type"], "point": cap["observationpt"], "packets": cap["packets"],
                    "drops_kernel": cap["drops_kernel"]})
    return out


def show_log_tail(path: Path, lines: int = 60) -> None:
    with suppress(OSError):
        log(f"--- the end of {path.name}:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))


def log_tail_on_error(path: Path) -> Callable[..., bool]:
    """An exit callback that shows the daemon's last words when a run fails (its directory is removed next)."""
    def show(kind: type[BaseException] | None, *_: object) -> bool:
        if kind is not None:
            show_log_tail(path)
        return False  # never swallows the error
    return show


def cancel_quietly(api: httpx.Client, ids: list[str]) -> None:
    """On the way out after a failure: tidiness only, the daemon is stopped next either way."""
    for cid in ids:
        with suppress(httpx.HTTPError):
            api.delete(f"/captures/{cid}")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


# --- the run --------------------------------------------------------------------------------------------

def bench(args: argparse.Namespace) -> dict[str, Any]:
    git = ["git", "-C", str(ROOT)]  # the code the daemon runs is the tree's as it starts
    commit = subprocess.run([*git, "log", "-1", "--oneline"], capture_output=True, text=True).stdout.strip()
    if subprocess.run([*git, "status", "--porcelain", "--", "opentap"], capture_output=True, text=True).stdout:
        commit += "  (+ uncommitted changes in opentap/)"
    rate, quiet = args.rate, args.quiet_seconds
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="otbench-api-"))
        stack.callback(shutil.rmtree, work, True)
        stack.push(log_tail_on_error(work / "daemon.log"))
        lan = Lan(PREFIX)
        stack.callback(lan.down)  # registered first: a half-made LAN goes too
        lan.up()
        d = stack.enter_context(running(work, points={"a": lan.ha, "b": lan.hb}, data_dir=str(work / "data"),
                                        max_concurrent_captures=4))
        api = httpx.Client(base_url=d.url, headers=headers(), timeout=30)
        stack.callback(api.close)
        schedule_listed(api)
        listed = len(api.get("/captures").json()["captures"])

        endpoints = []
        for path in ("/healthz", "/capabilities", "/captures"):
            log(f"idle: {path} at {rate:g}/s for {args.endpoint_seconds:g} s, new connection each ...")
            endpoints.append(measured(d, path, rate, args.endpoint_seconds, False, quiet))
        runs: dict[str, dict[str, Any]] = {}
        for keep in (False, True):
            label = "keep-alive" if keep else "new connection"
            log(f"idle: /capabilities at {rate:g}/s for {args.seconds:g} s, {label} ...")
            runs[f"idle, {label}"] = measured(d, "/capabilities", rate, args.seconds, keep, quiet)

        window = 2 * (args.seconds + quiet) + args.serial * 0.1 + 60  # the captures outlast the load
        sender = lan.spawn(lan.ns_a, "udp", B_IP, 9, int(args.pps * window), 64, args.pps)
        stack.callback(stop_process, sender)
        ids = start_captures(api, window)
        stack.callback(cancel_quietly, api, ids)
        log(f"4 captures running, {args.pps} pps from A to B; serial {args.serial} calls ...")
        time.sleep(1)  # the flow meters and the sender settle
        serial_run = serial(d, "/capabilities", args.serial)
        for keep in (False, True):
            label = "keep-alive" if keep else "new connection"
            log(f"4 captures: /capabilities at {rate:g}/s for {args.seconds:g} s, {label} ...")
            runs[f"4 captures, {label}"] = measured(d, "/capabilities", rate, args.seconds, keep, quiet)
        captures = stop_captures(api, ids)
        if any("error" in c for c in captures):
            show_log_tail(work / "daemon.log")
        stop_process(sender)
        return {"commit": commit, "rate": rate, "pps": args.pps, "listed": listed, "endpoints": endpoints,
                "runs": runs, "serial_under_load": serial_run, "captures": captures}


def report(r: dict[str, Any]) -> str:
    head = f"{'':32} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} {'conns':>6} {'CPU ms/call':>12}" \
           f" {'net':>7} {'bg CPU %':>9}"

    def row(label: str, x: dict[str, Any]) -> str:
        errors = sum(x["errors"].values())
        return (f"{label:32} {x['p50_ms']:8.2f} {x['p99_ms']:8.2f} {x['max_ms']:8.1f} {errors:7d} "
                f"{x['connections']:6d} {x['cpu_ms_per_call']:12.3f} {x['net_cpu_ms_per_call']:7.3f} "
                f"{x['background_cpu_pct']:9.1f}")

    ep = r["endpoints"][0]
    lines = [f"at {r['commit']}", "",
             f"1. each endpoint alone, idle, {r['rate']:g} calls/s open loop for {ep['seconds']:g} s, "
             "a new connection per call:", head]
    for x in r["endpoints"]:
        label = x["path"] + (f" ({r['listed']} listed)" if x["path"] == "/captures" else "")
        lines.append(row(label, x))
    first = next(iter(r["runs"].values()))
    lines += ["", f"2-3. GET /capabilities, {r['rate']:g} calls/s open loop for {first['seconds']:g} s "
              f"(4 captures: ethernet + netflow on 2 links, {r['pps']} pps of UDP through both):", head]
    lines += [row(label, x) for label, x in r["runs"].items()]
    s = r["serial_under_load"]
    lines += [f"serial under the capture load ({s['calls']} calls, new connection each): p50 {s['p50_ms']} ms, "
              f"p99 {s['p99_ms']} ms",
              "captures: " + ", ".join(f"{c['type']} on {c['point']} {c['packets']} packets "
                                       f"({c['drops_kernel']} dropped)" if "error" not in c else
                                       f"{c['id']}: cancelling failed: {c['error']}" for c in r["captures"])]
    worst_cpu = max(x["net_cpu_ms_per_call"] for x in [*r["endpoints"], *r["runs"].values()])
    loaded = r["runs"]["4 captures, new connection"]
    runs = [*r["endpoints"], *r["runs"].values()]
    late_p99, late_max = max(x["gen_late_p99_ms"] for x in runs), max(x["gen_late_max_ms"] for x in runs)
    lines += ["", f"goals: daemon CPU per call < {GOAL_CPU_MS:g} ms (worst net: {worst_cpu:.3f} ms), "
              f"p99 with 4 captures < {GOAL_P99_MS:g} ms (new connection: {loaded['p99_ms']} ms)",
              f"(the load generator's own lateness in sending, worst run: p99 {late_p99} ms, max {late_max} ms; "
              "a max latency near the latter is the machine stalling both, not the daemon)"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 s runs: a smoke run of about a minute")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    ap.add_argument("--rate", type=float, default=200, help="calls per second (default 200)")
    ap.add_argument("--seconds", type=float, help="seconds per /capabilities run (default 30; quick 5)")
    ap.add_argument("--endpoint-seconds", type=float, help="seconds per endpoint in part 1 (default 10; quick 3)")
    ap.add_argument("--quiet-seconds", type=float, help="the background window before each run (default 5; "
                                                        "quick 2)")
    ap.add_argument("--pps", type=int, default=2000, help="UDP datagrams per second A -> B (default 2000)")
    ap.add_argument("--serial", type=int, help="serial calls under the capture load (default 200; quick 50)")
    args = ap.parse_args()
    for key, full, quick in (("seconds", 30, 5), ("endpoint_seconds", 10, 3), ("quiet_seconds", 5, 2),
                             ("serial", 200, 50)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    if os.geteuid() != 0:
        sys.exit("needs root: network namespaces and packet capture")
    for tool in ("ip", "sysctl", "tcpdump"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} is not installed (apt-get install iproute2 procps tcpdump)")
    # SIGTERM -> SystemExit, so the finally blocks clean up as on Ctrl-C; SIGINT explicitly, since a shell
    # starts background jobs with it ignored and Python then keeps it ignored.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = bench(args)
    except KeyboardInterrupt:
        log("interrupted; namespaces, links, daemon, traffic and temp dir removed")
        return 130
    print(report(result))
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
