"""`opentap flows`: meter capture files offline with the same code the device uses.

Kept apart from the other commands so that it starts fast: it imports the meter and the file readers only (not
the client, the API or the daemon); bench/flows.py runs it as a whole program. Every input is checked before a
byte is written, and the output is written under a hidden name and renamed into place once whole, so a run that
fails (a damaged second file, say) leaves no partial CSV behind."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def add_command(sub: argparse._SubParsersAction) -> None:
    flows = sub.add_parser("flows", help="meter pcap or pcapng files into nfdump-format flow records (CSV)")
    flows.add_argument("pcap", nargs="+", help="pcap or pcapng files, metered in this order as one capture")
    flows.add_argument("-o", "--output", help="CSV file (default: standard output)")
    flows.add_argument("--active", type=float, default=1800, help="active timeout, seconds (default 1800)")
    flows.add_argument("--idle", type=float, default=15, help="idle timeout, seconds (default 15)")
    flows.add_argument("--export", metavar="URL", help="also send the records to a collector: ipfix://HOST:PORT "
                       "(UDP), ipfix+tcp://HOST:PORT or netflow9://HOST:PORT (UDP)")
    flows.set_defaults(fn=run)


def check_inputs(paths: list[Path]) -> None:
    """Every file exists, is a pcap or pcapng file we read, and holds a link type the meter decodes."""
    from opentap.flows.pipeline import meterable
    from opentap.pcap import pcapfile

    for path in paths:
        if not path.is_file():
            raise ValueError(f"no such capture file: {path}")
        try:
            with path.open("rb", buffering=0) as f:
                if pcapfile.open_any(path, f) is None:
                    raise pcapfile.PcapError(f"{path}: too short to be a pcap or pcapng file "
                                             f"({path.stat().st_size} bytes)")
        except PermissionError as e:
            raise ValueError(f"cannot read {path}: {e.strerror}") from None
        for block in pcapfile.read_packets(path, block=1 << 16):  # pcapng: its first interfaces
            meterable(path, block.linktypes)
            if block.descs:
                break


@contextlib.contextmanager
def _output(name: str | None) -> Iterator[BinaryIO]:
    """The output, written under a hidden name beside the final one and renamed over it on success."""
    if name is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    final = Path(name)
    hidden = final.with_name(f".{final.name}.{os.getpid()}.part")
    out = hidden.open("wb")
    try:
        yield out
        out.close()
        os.replace(hidden, final)
    except BaseException:
        out.close()
        hidden.unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    from opentap.flows import nfcsv
    from opentap.flows.meter import FlowMeter
    from opentap.flows.pipeline import meter_files
    from opentap.pcap.pcapfile import Damage

    paths = [Path(p) for p in args.pcap]
    check_inputs(paths)
    exporter = None
    if args.export:
        from opentap.flows.export import Exporter

        exporter = Exporter.open(args.export)
    meter = FlowMeter(args.active, args.idle)
    cut: list[Damage] = []
    with _output(args.output) as out:
        out.write(nfcsv.HEADER.encode() + b"\n")
        summary = nfcsv.Summary()
        try:
            for flows in meter_files(paths, meter, cut=cut):
                if flows.count:
                    summary.add_flows(flows)
                    out.write(nfcsv.csv_bytes(flows))
                    if exporter:
                        exporter.send(flows)
        finally:
            if exporter:
                exporter.close()
        s = meter.stats
        out.write("".join(summary.lines((s.last_ns - s.first_ns) / 1e9)).encode())
    s = meter.stats
    for damage in cut:
        print(f"opentap: warning: {damage.path}: {damage.what}; that record is left out", file=sys.stderr)
    other = f", {s.other_link_packets} of link types not decoded" if s.other_link_packets else ""
    print(f"{s.packets} packets ({s.ip_packets} IP, {s.non_ip_packets} non-IP{other}, {s.fragments} fragments) "
          f"-> {s.flows} flows", file=sys.stderr)
    if exporter:
        print(f"exported to {args.export}: {exporter.describe()}", file=sys.stderr)
    return 0
