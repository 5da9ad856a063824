"""Flow metering benchmark: OpenTap's meter vs softflowd -> nfcapd -> nfdump on the same pcap, in the same run.

The pcap is deterministic and realistic (tests/support/pcapgen.py: TCP sessions, DNS, RTP-like UDP streams, ICMP, IPv6,
802.1Q and QinQ, fragments, ARP, long and idle flows). Both sides go from the pcap file to nfdump-format CSV:

- ours: `opentap flows FILE -o OUT.csv` (the device's code, as a fresh process: interpreter start included);
- the original device's pipeline: `softflowd -r FILE -v 9` exporting to `nfcapd` over 127.0.0.1 UDP, then
  `nfdump -o csv` (tests/support/oracles.py runs it); its time is softflowd + nfcapd draining + nfdump.

Printed per side: packets/s, the ratio ours/pipeline, peak RSS of each process (bench/peak_rss.py), records lost
(pipeline: what softflowd says it exported minus what nfdump shows; ours: metered records minus CSV rows) and
whether the records' packets add up to the IP packets in the file. Memory must follow the number of open flows,
not the file size: ours is also run on a quarter of the file, and the two peaks are printed side by side. Ours also
runs on the same traffic as pcapng (written by Wireshark's editcap when it is installed, else by
tests/support/pcapngbytes.py), with the same figures, and its records are checked to be the pcap run's.
Ours is timed byte-compiled, as installed (the script compiles the package first). Each side runs --runs times
(default 3), alternating; the fastest run of each is compared (the machine is noisy: the slow runs measure the
neighbours), and records lost are the worst run's.
Run: .venv/bin/python bench/flows.py [--packets N] [--seed S] [--runs R] [--json]   (needs softflowd and nfdump)
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import oracles  # noqa: E402 - the test tooling lives beside the benchmark, not in the package
from tests.support.pcapgen import generate  # noqa: E402
from tests.support.pcapngbytes import pcap_to_pcapng  # noqa: E402


class PeakRss:
    """Runs commands through bench/peak_rss.py and remembers each one's peak resident memory."""

    def __init__(self, work: Path) -> None:
        self.work, self.files = work, {}

    def wrap(self, name: str, argv: list[str]) -> list[str]:
        self.files[name] = self.work / f"rss-{name}"
        return [sys.executable, "-S", str(ROOT / "bench" / "peak_rss.py"), str(self.files[name]), *argv]

    def mib(self, name: str) -> int:
        return int(self.files[name].read_text()) // 1024


def ours(pcap: Path, out: Path, rss: PeakRss) -> dict[str, Any]:
    opentap = ROOT / ".venv" / "bin" / "opentap"
    argv = rss.wrap(out.stem, [str(opentap) if opentap.exists() else "opentap", "flows", str(pcap), "-o", str(out)])
    t = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t
    rows = packets = 0
    with out.open() as f:
        for row in csv.reader(f):
            if row and row[0] == "Summary":
                break
            if row[0] != "ts":
                rows += 1
                packets += int(row[11])
    metered = int(done.stderr.split("-> ")[1].split()[0])  # "N packets (...) -> F flows" on stderr
    return {"seconds": seconds, "rss_mib": rss.mib(out.stem), "records": rows, "lost": metered - rows,
            "packets": packets}


def same_records(a: Path, b: Path) -> bool:
    """The two CSVs hold the same records (in any order: batches end elsewhere in the two formats; tr aside)."""
    def records(path: Path) -> list[str]:
        with path.open() as f:
            return sorted(line.rsplit(",", 1)[0] for line in f)

    return records(a) == records(b)


def pipeline(pcap: Path, work: Path, flows_hint: int, rss: PeakRss) -> dict[str, Any]:
    recs = oracles.softflowd_pipeline(pcap, work, flows_hint=flows_hint, wrap=rss.wrap)
    return {"seconds": sum(recs.seconds.values()), "stages": recs.seconds,
            "rss_mib": {name: rss.mib(name) for name in ("softflowd", "nfcapd", "nfdump")}, "records": len(recs),
            "lost": recs.lost, "kernel_drops": recs.kernel_drops, "packets": sum(int(r["ipkt"]) for r in recs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="runs of each side, alternating; the fastest counts")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()
    if reason := oracles.have("softflowd", "nfcapd", "nfdump"):
        print(f"cannot run the pipeline: {reason}", file=sys.stderr)
        return 2
    # ours is timed as installed: byte-compiled, as pip compiles a regular install and scripts/bootstrap.sh the
    # editable one (where PYTHONDONTWRITEBYTECODE is set, a package edited since would be compiled at each start)
    compileall.compile_dir(ROOT / "opentap", quiet=1)
    with tempfile.TemporaryDirectory(prefix="otbench-flows-") as tmp:
        work = Path(tmp)
        pcap, quarter = work / "bench.pcap", work / "quarter.pcap"
        t = time.perf_counter()
        gen = generate(pcap, args.packets, seed=args.seed)
        generate(quarter, args.packets // 4, seed=args.seed, duration=gen.duration / 4)  # same rate, 1/4 as long
        print(f"pcap: {gen.packets} packets ({gen.ip_packets} IP, {gen.ipv6} IPv6, {gen.fragments} fragments, "
              f"{gen.vlan + gen.qinq} tagged, {gen.non_ip} ARP), {pcap.stat().st_size / 2**20:.0f} MiB, "
              f"{gen.duration:.0f} s of traffic; generated in {time.perf_counter() - t:.0f} s")
        ng = work / "bench.pcapng"
        how = pcap_to_pcapng(pcap, ng)
        print(f"pcapng: the same packets, {ng.stat().st_size / 2**20:.0f} MiB, written by {how}")
        rss = PeakRss(work)
        runs_a, runs_b, runs_ng = [], [], []
        for _ in range(args.runs):  # alternating, so a noisy spell on the machine hits both sides
            # each run starts with nothing left to write back: the 1.2 GB of inputs just generated and the last
            # run's outputs are otherwise written out by the kernel's flusher threads during the timed runs
            os.sync()
            # softflowd's table must hold every flow (else it force-expires them): twice the sessions is plenty
            runs_b.append(pipeline(pcap, work / "pipeline", sum(gen.sessions.values()) * 2, rss))
            os.sync()
            runs_a.append(ours(pcap, work / "ours.csv", rss))
            os.sync()
            runs_ng.append(ours(ng, work / "ours-ng.csv", rss))
        a_quarter = ours(quarter, work / "quarter.csv", rss)
        same = same_records(work / "ours.csv", work / "ours-ng.csv")
    a, b, c = (min(runs, key=lambda r: r["seconds"]) for runs in (runs_a, runs_b, runs_ng))
    for side, runs in ((a, runs_a), (b, runs_b), (c, runs_ng)):  # losses and memory: the worst run's
        side["lost"] = max(r["lost"] for r in runs)
        side["seconds_all"] = [round(r["seconds"], 3) for r in runs]
        side["pps"] = gen.packets / side["seconds"]
    result = {"packets": gen.packets, "ip_packets": gen.ip_packets, "ours": a, "pipeline": b, "ours_pcapng": c,
              "ratio": a["pps"] / b["pps"], "ratio_pcapng": c["pps"] / b["pps"],
              "ours_quarter_rss_mib": a_quarter["rss_mib"], "pcapng_records_same": same}
    stages = ", ".join(f"{k} {v:.2f}" for k, v in b["stages"].items())
    print(f"ours:     {a['seconds']:6.2f} s  {a['pps']:>10,.0f} packets/s  peak RSS {a['rss_mib']} MiB "
          f"(quarter file: {a_quarter['rss_mib']} MiB)  {a['records']:,} records, {a['lost']} lost, "
          f"packets in records {a['packets']:,}/{gen.ip_packets:,}")
    peaks = ", ".join(f"{k} {v}" for k, v in b["rss_mib"].items())
    print(f"pipeline: {b['seconds']:6.2f} s  {b['pps']:>10,.0f} packets/s  peak RSS MiB: {peaks}  "
          f"{b['records']:,} records, {b['lost']} lost ({b['kernel_drops']} datagrams dropped by the kernel), "
          f"packets in records {b['packets']:,} (softflowd ignores QinQ)  [{stages}]")
    print(f"ours on pcapng: {c['seconds']:6.2f} s  {c['pps']:>10,.0f} packets/s  peak RSS {c['rss_mib']} MiB  "
          f"{c['records']:,} records, {c['lost']} lost, the same records as from the pcap: {'yes' if same else 'NO'}")
    print(f"ratio ours/pipeline: {result['ratio']:.2f}x packets/s, pcapng {result['ratio_pcapng']:.2f}x (fastest of "
          f"{args.runs} runs each; all runs: ours {a['seconds_all']} s, pcapng {c['seconds_all']} s, pipeline "
          f"{b['seconds_all']} s; records lost: the worst run's)")
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
