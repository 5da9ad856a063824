"""Hostile input for the new decoders (run again under ASan and UBSan by scripts/sanitized.sh): mangled frames of
every link type the meter reads, and mangled pcapng files. Nothing may crash, hang or read out of bounds; every
packet is accounted for, and a damaged file ends at its last good block."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.pipeline import meter_files
from opentap.pcap.pcapfile import Damage, PcapError, iter_packets

from ..support import frames as fr
from ..support import pcapngbytes as ng

A, B, A6, B6 = "198.18.0.1", "198.18.0.2", "2001:db8::1", "2001:db8::2"
V4 = fr.ipv4(A, B, fr.TCP, fr.tcp(A, B, 1, 2, fr.ACK, b"p" * 30))
V6 = fr.ipv6(A6, B6, 0, bytes([44, 0]) + bytes(6) + fr.ipv6(A6, B6, fr.UDP, fr.udp(A6, B6, 5, 6, b"q"))[40:])
SLL2 = b"\x08\x00\x00\x00\x00\x00\x00\x03\x00\x01\x04\x06\x02\x00\x00\x00\x00\x01\x00\x00"
SLL = b"\x00\x04\x00\x01\x00\x06\x02\x00\x00\x00\x00\x01\x00\x00\x08\x00"
MAC = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
BASES = {  # link type: frames to mangle
    1: [fr.eth(V4), MAC + b"\x88\x64\x11\x00\x00\x01\x00\x30\x00\x21" + V4,  # PPPoE
        MAC + b"\x88\x47\x00\x01\x01\x40" + V4, MAC + b"\x81\x00\x00\x05\x88\xa8\x00\x06\x81\x00\x00\x07\x08\x00" + V4,
        MAC + b"\x00\x40\xaa\xaa\x03\x00\x00\x00\x08\x00" + V4, MAC + b"\x86\xdd" + V6],
    113: [SLL + V4], 276: [SLL2 + V4, b"\x86\xdd" + SLL2[2:] + V6], 101: [V4, V6], 228: [V4], 229: [V6],
    0: [b"\x02\x00\x00\x00" + V4, b"\x1e\x00\x00\x00" + V6], 108: [b"\x00\x00\x00\x02" + V4],
    9: [b"\xff\x03\x00\x21" + V4, b"\x00\x57" + V6, b"\xff\x03\x02\x81\x00\x01\x01\x40" + V4],
    50: [b"\xff\x03\x00\x21" + V4],
    104: [b"\x0f\x00\x08\x00" + V4], 8: [bytes(16) + V4],
}


def mangle(rng: random.Random, frame: bytes) -> bytes:
    out = bytearray(frame)
    for _ in range(rng.randrange(5)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out[: rng.randrange(len(out) + 1)])


@pytest.mark.parametrize("linktype", sorted(BASES))
def test_mangled_frames_of_every_link_type(tmp_path: Path, linktype: int) -> None:
    rng = random.Random(linktype)
    packets = [mangle(rng, rng.choice(BASES[linktype])) for _ in range(3000)]
    path = tmp_path / "mangled.pcapng"
    path.write_bytes(ng.shb() + ng.idb(linktype) + b"".join(
        ng.epb(0, 1_700_000_000 * 10**6 + i, p) for i, p in enumerate(packets)))
    m = FlowMeter()
    flows = Flows.concat(list(meter_files([path], m, 4096)))
    s = m.stats
    assert s.packets == len(packets) and s.ip_packets + s.non_ip_packets == s.packets and s.ip_packets > 300
    assert flows.packets == s.ip_packets


def test_mangled_pcapng_files_end_at_their_last_good_block(tmp_path: Path) -> None:
    rng = random.Random(9)
    good = ng.shb() + ng.idb(1, tsresol=9) + ng.idb(101) + b"".join(
        ng.epb(i % 2, 10**18 + i, fr.eth(V4) if i % 2 == 0 else V4) + (ng.spb(fr.eth(V4)) if i % 7 == 0 else b"")
        for i in range(200))
    for trial in range(300):
        data = bytearray(good)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"m{trial}.pcapng"
        path.write_bytes(bytes(data[: rng.randrange(len(data) // 2, len(data) + 1)]))
        found: list[Damage] = []
        try:
            packets = list(iter_packets([path], damage=found))
        except PcapError:
            continue  # the section header itself was hit: refused with a message
        assert len(packets) <= 229 and all(d.offset < len(data) for d in found)
        for block in (64, 1 << 20):
            try:
                Flows.concat(list(meter_files([path], FlowMeter(), block)))
            except PcapError as e:
                assert "damaged at byte" in str(e) or "pcapng" in str(e) or str(path) in str(e)
