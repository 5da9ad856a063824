"""Ring query benchmark: one host's packets in a 1-minute window out of a full ring, the ring's query against
`tcpdump -r` over the same block files with the same BPF filter, measured in the same run.

The ring is made as the device makes it: generated traffic (tests/support/pcapgen.py: TCP, DNS, RTP-like UDP,
ICMP, ARP, VLANs, fragments, IPv6; addresses in 198.18.0.0/15 and 2001:db8::/32) cut into 64 MB blocks at record
boundaries, each indexed by capture/ringindex.py (its CPU time and size are reported against the data). Then, for
a host seen in the middle of the traffic:

  ours        ringquery.extract: the indexes choose the stretches, the window is cut by timestamps, libpcap
              (tcpdump -r -) applies `host X` to what is left
  tcpdump     tcpdump -r over every block (-V, a list of files) with `host X`: what one does with a directory of
              rotated pcaps and no index
  tcpdump-t   the same over only the blocks whose time range overlaps the window (what file names with times
              give without an index): a fairer peer, to show what the stretch index adds

Each is run REPEAT times, alternating, with the files in the page cache for all (they were just written); the
median wall time is reported. The answers are checked: ours equals tcpdump's restricted to the window.
Run: .venv/bin/python bench/rings.py [--mb 2048] [--json]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentap.capture import ringindex, ringquery  # noqa: E402
from opentap.capture.ring import Block  # noqa: E402
from opentap.pcap import pcapfile  # noqa: E402
from tests.support.pcapgen import generate  # noqa: E402

BLOCK = 64_000_000  # tcpdump -C 64, as a ring of 1 GiB or more uses
PACKET_BYTES = 515  # pcapgen's average record size, to size the traffic
REPEAT = 3
WINDOW = 60.0


def cut_blocks(source: Path, ring: Path) -> list[Path]:
    """The generated file as the ring's blocks: each a pcap of whole records, a new one past BLOCK bytes."""
    blocks: list[Path] = []
    out = None
    header = pcapfile.read_file_header(source)
    assert header is not None
    for rec in pcapfile.read_packets(source):
        if out is None or out.tell() >= BLOCK:
            if out is not None:
                out.close()
            blocks.append(ring / f"block-000001-{len(blocks):06d}.pcap")
            out = open(blocks[-1], "wb")  # noqa: SIM115 - closed when the next one opens, or below
            out.write(header.raw)
        out.write(rec.buf[:rec.end])
    if out is not None:
        out.close()
    return blocks


def host_in(path: Path, start_ns: int) -> str:
    """An IPv4 source address of an untagged packet just after start_ns."""
    for ts, _wire, data in pcapfile.iter_records([path]):
        if ts >= start_ns and data[12:14] == b"\x08\x00":
            return str(ipaddress.IPv4Address(data[26:30]))
    raise SystemExit("no IPv4 packet in the window")


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def tcpdump_over(files: list[Path], bpf: str, out: Path) -> None:
    listing = out.with_suffix(".list")
    listing.write_text("".join(f"{p}\n" for p in files))
    # -Z root: as root, Debian's tcpdump would otherwise become the tcpdump user, who may not read our files
    subprocess.run([shutil.which("tcpdump") or "tcpdump", "-Z", "root", "-V", str(listing), "-w", str(out), "--", bpf],
                   check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=2048, help="ring size in MB (default 2048)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="otring-") as tmp:
        work = Path(tmp)
        ring = work / "ring"
        ring.mkdir()
        packets = args.mb * 1_000_000 // PACKET_BYTES
        generate(work / "all.pcap", packets, seed=5)
        blocks = cut_blocks(work / "all.pcap", ring)
        (work / "all.pcap").unlink()
        data_bytes = sum(p.stat().st_size for p in blocks)

        cpu0, wall0 = time.process_time(), time.perf_counter()
        indexes = []
        for path in blocks:
            idx = path.with_suffix(".idx")
            ringindex.write(ringindex.build(path), idx)
            indexes.append(idx)
        index_cpu, index_wall = time.process_time() - cpu0, time.perf_counter() - wall0
        index_bytes = sum(p.stat().st_size for p in indexes)

        parsed = [ringindex.read(i) for i in indexes]
        first, last = parsed[0].first_ns, parsed[-1].last_ns
        start_ns = (first + last) // 2
        end_ns = start_ns + int(WINDOW * 1e9)
        host = host_in(blocks[len(blocks) // 2], start_ns)
        bpf = f"host {host}"
        ring_blocks = [Block(p, i) for p, i in zip(blocks, indexes, strict=True)]
        overlapping = [p for p, x in zip(blocks, parsed, strict=True) if x.last_ns >= start_ns and x.first_ns < end_ns]

        times: dict[str, list[float]] = {"ours": [], "tcpdump": [], "tcpdump-t": []}
        result = None
        for n in range(REPEAT):
            out = work / f"q{n}"
            out.mkdir()
            t, result = timed(lambda out=out: ringquery.extract(ring_blocks, start_ns, end_ns, bpf, out, "ours-"))
            times["ours"].append(t)
            times["tcpdump"].append(timed(lambda: tcpdump_over(blocks, bpf, work / "peer.pcap"))[0])
            times["tcpdump-t"].append(timed(lambda: tcpdump_over(overlapping, bpf, work / "peer-t.pcap"))[0])
        assert result is not None
        ours = [(ts, d) for ts, _w, d in pcapfile.iter_records(result.files)]
        peer = [(ts, d) for ts, _w, d in pcapfile.iter_records([work / "peer.pcap"]) if start_ns <= ts < end_ns]
        assert ours == peer and ours, (len(ours), len(peer))

        med = {k: statistics.median(v) for k, v in times.items()}
        report = {
            "ring_mb": round(data_bytes / 1e6), "blocks": len(blocks), "packets": packets,
            "span_s": round((last - first) / 1e9, 1), "window_s": WINDOW, "filter": bpf, "answer_packets": len(ours),
            "stretches_read": result.stretches_read, "stretches": result.stretches,
            "bytes_read_mb": round(result.bytes_read / 1e6, 1),
            "ours_s": round(med["ours"], 3), "tcpdump_all_s": round(med["tcpdump"], 3),
            "tcpdump_overlapping_s": round(med["tcpdump-t"], 3),
            "ratio_vs_tcpdump_all": round(med["tcpdump"] / med["ours"], 1),
            "ratio_vs_tcpdump_overlapping": round(med["tcpdump-t"] / med["ours"], 1),
            "index_cpu_s_per_gb": round(index_cpu / (data_bytes / 1e9), 2),
            "index_mb_per_s": round(data_bytes / 1e6 / index_wall),
            "index_share_pct": round(100 * index_bytes / data_bytes, 2),
        }
        if args.json:
            print(json.dumps(report))
            return
        print(f"ring: {report['ring_mb']} MB in {len(blocks)} blocks, {packets} packets over {report['span_s']} s")
        print(f"index: {report['index_cpu_s_per_gb']} CPU s per GB ({report['index_mb_per_s']} MB/s), "
              f"{report['index_share_pct']} % of the data")
        print(f"query: {WINDOW:.0f} s window, '{bpf}': {len(ours)} packets; read {result.stretches_read} of "
              f"{result.stretches} stretches ({report['bytes_read_mb']} MB)")
        print(f"  ours                          {med['ours']:.3f} s")
        print(f"  tcpdump -r, every block       {med['tcpdump']:.3f} s   ratio {report['ratio_vs_tcpdump_all']}x")
        print(f"  tcpdump -r, blocks in window  {med['tcpdump-t']:.3f} s   ratio "
              f"{report['ratio_vs_tcpdump_overlapping']}x")


if __name__ == "__main__":
    main()
