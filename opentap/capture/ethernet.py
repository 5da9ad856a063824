"""The `ethernet` capture type: full packets at the observation point, captured by tcpdump, retrieved as pcap
or as one CSV row per packet."""

from __future__ import annotations

from opentap.capture import ringcapture, tcpdump
from opentap.capture.types import CSV_MEDIA, PCAP_MEDIA, CaptureType, Driver, DriverContext, Format, encode_lines
from opentap.pcap import packetcsv


def _driver(c: DriverContext) -> Driver:
    if c.options.get("from_ring"):  # a window in the past: copied from the point's ring
        return ringcapture.RingFollow(c, flows=False)
    return tcpdump.TcpdumpDriver(c.directory, c.interface, c.segment, snaplen=c.options.get("snaplen", 262144),
                                 bpf=c.bpf, buffer_kib=c.buffer_kib, chunk_mb=c.chunk_mb, stop_ns=c.stop_ns,
                                 user=c.capture_user)


ETHERNET = CaptureType(
    name="ethernet", point_kind="network", description="full packets at the observation point (pcap)",
    options=frozenset({"filter", "snaplen", "exclude_device_traffic"}),
    make_driver=_driver,
    formats={
        "pcap": Format(PCAP_MEDIA, "pcap", lambda d: tcpdump.pinned_stream(d, tcpdump.merged), reads_chunks=True),
        "csv": Format(CSV_MEDIA, "csv", lambda d: tcpdump.pinned_stream(
            d, lambda paths, found: encode_lines(packetcsv.csv_lines(paths, found))), reads_chunks=True),
    },
    default_format="pcap", totals=tcpdump.packet_totals,
    finalize=lambda d: tcpdump.publish_closed(d, keep_last=False), stop_grace=tcpdump.STOP_GRACE,
)
