"""The netflow driver: tcpdump writes chunks, a metering thread follows them and appends finished flows.

Flows are written to a hidden CSV as they finish (FIN/RST, idle or active timeout), so a retrieve during a
long capture already shows them; the rest are flushed at the end of the window. Unless the capture keeps
its packets, each chunk is deleted once tcpdump has closed it and every record in it has been metered.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from opentap.capture import storage, tcpdump
from opentap.capture.flowsink import FINAL, HIDDEN, FlowSink
from opentap.capture.types import CSV_MEDIA, PCAP_MEDIA, CaptureType, Driver, DriverContext, Format, Totals
from opentap.flows import nfcsv
from opentap.flows.meter import NS, FlowMeter, Flows
from opentap.flows.pipeline import ChunkFollower

POLL = 0.5  # seconds between metering passes
CLOCK_LAG = 3.0  # seconds packets may trail the wall clock: libpcap's 1 s blocks, the flush period, a poll


def data_files(directory: Path) -> list[Path]:
    return storage.text_file(directory, HIDDEN, FINAL)


def finalize(directory: Path) -> None:
    tcpdump.publish_closed(directory, keep_last=False)
    storage.publish_text(directory, HIDDEN, FINAL)


def stats(directory: Path) -> dict[str, int]:
    """Meter statistics summed over the capture's segments (one per daemon run)."""
    total: dict[str, int] = {}
    for path in sorted(directory.glob("meter-*.json")):
        for key, value in json.loads(path.read_text()).items():
            merge = {"first_ns": min, "last_ns": max}.get(key, int.__add__)
            total[key] = merge(total[key], value) if key in total else value
    return total


class NetflowDriver:
    def __init__(self, directory: Path, interface: str, segment: int, *, snaplen: int, bpf: str | None,
                 buffer_kib: int, chunk_mb: int, active: float, idle: float, keep_packets: bool,
                 stop_ns: int | None = None, user: str | None = None, export: str | None = None) -> None:
        self.directory, self.segment, self.keep = directory, segment, keep_packets
        self.capturer = tcpdump.TcpdumpDriver(directory, interface, segment, snaplen=snaplen, bpf=bpf,
                                            buffer_kib=buffer_kib, chunk_mb=chunk_mb, stop_ns=stop_ns, user=user)
        self.meter = FlowMeter(active, idle, until_ns=stop_ns)
        self.follower = ChunkFollower(self.meter)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self.sink = FlowSink(directory, export)

    @property
    def pid(self) -> int | None:
        return self.capturer.pid

    def start(self) -> None:
        self.sink.open()
        self.capturer.start()
        self._thread = threading.Thread(target=self._run, name=f"meter-{self.directory.name}", daemon=True)
        self._thread.start()

    def _chunks(self) -> list[Path]:
        return tcpdump.segment_chunks(self.directory, self.segment)

    def _write(self, flows: Flows) -> None:
        self.sink.write(flows)

    def _pass(self) -> None:
        for flows in self.follower.poll(self._chunks()):
            self._write(flows)
        if not self.keep:  # published chunks are closed: once metered they are not needed
            for path in self.directory.glob(f"packets-{self.segment:03d}-*.pcap"):
                if self.follower.consumed(path):
                    self.follower.remove(path)

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                self.capturer.tick()
                self._pass()
                self._write(self.meter.expire(int((time.time() - CLOCK_LAG) * NS)))
            except Exception as e:  # reported by failure(); the engine ends the capture
                self._error = f"flow metering failed: {e}"
                return

    def alive(self) -> bool:
        return self._error is None and self.capturer.alive()

    def failure(self) -> str:
        return self._error or self.capturer.failure()

    def tick(self) -> None:
        pass  # the metering thread publishes chunks itself, so it never meters a file being renamed

    def stop(self) -> list[str]:
        """Stop metering and tcpdump, meter what is left, flush every open flow; return what makes the records
        incomplete (tcpdump's count of packets against the records the meter read)."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        problems = self.capturer.stop(whole=False)  # tcpdump flushes and exits; every chunk is published
        if self._error is None and self.directory.is_dir():
            self._pass()
            self._write(self.meter.flush())
            problems += self.capturer.shortfall(self.follower.records)
        self.sink.close()
        if not self.directory.is_dir():
            return problems
        if self.keep:  # the meter left out packets past the window itself; the kept pcap is cut to it
            self.capturer.cut_to_window()
        counts = vars(self.meter.stats) | self.sink.stats()
        (self.directory / f"meter-{self.segment:03d}.json").write_text(json.dumps(counts))
        if not self.keep:
            for path in tcpdump.chunk_files(self.directory):
                path.unlink()
        finalize(self.directory)
        return problems


def _ring_follow(ctx: DriverContext) -> Driver:
    from opentap.capture import ringcapture  # here: it imports this module

    return ringcapture.RingFollow(ctx, flows=True)


def _totals(directory: Path) -> Totals:
    counts = stats(directory)
    return Totals(counts.get("packets", 0), counts.get("ip_bytes", 0), *tcpdump.drops(directory), stats=counts)


def _csv(directory: Path) -> Iterator[bytes]:
    """The flow records as written, then nfdump's Summary trailer computed over them."""
    summary = nfcsv.Summary()
    files = data_files(directory)
    if not files:
        yield (nfcsv.HEADER + "\n").encode()
    for path in files:
        with open(path) as f:
            yield f.readline().encode()
            batch: list[str] = []
            for line in f:
                if not line.endswith("\n"):
                    break  # a line the meter is still writing
                summary.add_line(line)
                batch.append(line)
                if len(batch) == 4096:
                    yield "".join(batch).encode()
                    batch = []
            yield "".join(batch).encode()
    counts = stats(directory)  # nfdump's averages are over the flows' span; ours over the metered data's
    yield "".join(summary.lines((counts.get("last_ns", 0) - counts.get("first_ns", 0)) / 1e9)).encode()


def _kept_packets(directory: Path) -> str | None:
    if tcpdump.chunk_files(directory):
        return None
    return "its packets were not kept (schedule it with keep_packets=true to keep them)"


NETFLOW = CaptureType(
    name="netflow", point_kind="network",
    description="flow records metered from the packets at the observation point (nfdump CSV)",
    options=frozenset({"filter", "snaplen", "keep_packets", "exclude_device_traffic", "export"}),
    make_driver=lambda c: _ring_follow(c) if c.options.get("from_ring") else NetflowDriver(
        c.directory, c.interface, c.segment, snaplen=c.options.get("snaplen", 262144), bpf=c.bpf,
        buffer_kib=c.buffer_kib, chunk_mb=c.chunk_mb, active=c.flow_active_timeout, idle=c.flow_idle_timeout,
        keep_packets=bool(c.options.get("keep_packets", False)), stop_ns=c.stop_ns, user=c.capture_user,
        export=c.options.get("export")),
    formats={
        "csv": Format(CSV_MEDIA, "csv", _csv),
        "pcap": Format(PCAP_MEDIA, "pcap", lambda d: tcpdump.pinned_stream(d, tcpdump.merged), missing=_kept_packets,
                       reads_chunks=True),
    },
    default_format="csv", totals=_totals, finalize=finalize, stop_grace=tcpdump.STOP_GRACE,
)
