"""IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) messages of the meter's flow records.

Two templates, one per IP version, with the fields the CSV has (RFC 7012 information elements; v9 shares the
numbers below 128 and takes 152/153, absolute milliseconds, as softflowd's `-A milli` and nfdump do):

    source and destination address (8/12 or 27/28), sourceTransportPort 7, destinationTransportPort 11 (ICMP and
    ICMPv6: type * 256 + code, as in the CSV and in NetFlow since v5), protocolIdentifier 4, tcpControlBits 6
    (one byte: RFC 7011's reduced-size encoding), ipClassOfService 5, vlanId 58, sourceMacAddress 56,
    destinationMacAddress 80, packetDeltaCount 2, octetDeltaCount 1, flowStartMilliseconds 152,
    flowEndMilliseconds 153.

NetFlow v9 templates also carry ICMP_TYPE (32, type * 256 + code; 0 for other protocols): nfdump reads an ICMP
record's type and code from it in v9, not from the destination port.
"""

from __future__ import annotations

import struct
import time

from .meter import Flows

# csrc/flow.h's fm_flow (meter.RECORD_FIELDS): first, last, packets, bytes, smac, dmac, src, dst, sport, dport, vlan,
# proto, ip, flags, tos, ended, used, order
FLOW = struct.Struct("=qqqqQQ16s16sHHHBBBBBBI")
V4, V6 = 256, 257  # template ids
COMMON = [(7, 2), (11, 2), (4, 1), (6, 1), (5, 1), (58, 2), (56, 6), (80, 6), (2, 8), (1, 8), (152, 8), (153, 8)]
FIELDS = {V4: [(8, 4), (12, 4), *COMMON], V6: [(27, 16), (28, 16), *COMMON]}
V9_FIELDS = {t: [*fields, (32, 2)] for t, fields in FIELDS.items()}
TAIL = "HHBBBH6s6sQQQQ"  # the COMMON fields, packed
RECORD = {V4: struct.Struct("!4s4s" + TAIL), V6: struct.Struct("!16s16s" + TAIL)}
V9_RECORD = {V4: struct.Struct("!4s4s" + TAIL + "H"), V6: struct.Struct("!16s16s" + TAIL + "H")}
IPFIX_HEADER, V9_HEADER = struct.Struct("!HHIII"), struct.Struct("!HHIIII")
SET = struct.Struct("!HH")
assert all(RECORD[t].size == sum(n for _ie, n in FIELDS[t]) for t in FIELDS)
assert all(V9_RECORD[t].size == sum(n for _ie, n in V9_FIELDS[t]) for t in FIELDS)


def _template_record(template: int, v9: bool) -> bytes:
    fields = (V9_FIELDS if v9 else FIELDS)[template]
    return struct.pack("!HH", template, len(fields)) + b"".join(struct.pack("!HH", ie, n) for ie, n in fields)


class Encoder:
    """Builds messages of one observation domain (IPFIX) or source id (v9), keeping its sequence number."""

    def __init__(self, protocol: str, domain: int = 1) -> None:
        self.v9 = protocol == "netflow9"
        self.domain = domain
        self.sequence = 0  # IPFIX: data records before this message; v9: messages before this one (mod 2^32)
        self._started = time.monotonic()  # v9's sysUptime counts from here
        self._templates = b"".join(_template_record(t, self.v9) for t in (V4, V6))

    def records(self, flows: Flows) -> list[tuple[int, bytes]]:
        """(template id, encoded data record) for each flow, in order."""
        out = []
        layout = V9_RECORD if self.v9 else RECORD
        v4, v6 = layout[V4].pack, layout[V6].pack
        for (first, last, packets, nbytes, smac, dmac, src, dst, sport, dport, vlan, proto, ip, flags, tos,
             _ended, _used, _order) in FLOW.iter_unpack(flows.data):
            tail = (sport, dport, proto, flags, tos, vlan, smac.to_bytes(8, "big")[2:], dmac.to_bytes(8, "big")[2:],
                    packets, nbytes, max(first, 0) // 1_000_000, max(last, 0) // 1_000_000)
            if self.v9:
                tail += (dport if proto in (1, 58) else 0,)
            if ip == 4:
                out.append((V4, v4(src[12:], dst[12:], *tail)))
            else:
                out.append((V6, v6(src, dst, *tail)))
        return out

    def message(self, records: list[tuple[int, bytes]], at: int, max_size: int,
                with_templates: bool) -> tuple[bytes, int]:
        """One message of records[at:] (as many as fit in max_size, at least one), with the templates first if
        asked; returns it and how many records it holds."""
        header = V9_HEADER if self.v9 else IPFIX_HEADER
        parts: list[bytes] = []
        size, count, template_count = header.size, 0, 0
        if with_templates:
            parts.append(SET.pack(0 if self.v9 else 2, SET.size + len(self._templates)) + self._templates)
            size += len(parts[-1])
            template_count = 2
        i = at
        while i < len(records):
            template = records[i][0]
            body: list[bytes] = []
            room = max_size - size - SET.size - 3  # 3: v9's padding
            while i < len(records) and records[i][0] == template and (len(records[i][1]) <= room or not count):
                body.append(records[i][1])
                room -= len(records[i][1])
                i += 1
                count += 1
            if not body:
                break
            data = b"".join(body)
            pad = (-len(data) - SET.size) % 4 if self.v9 else 0  # v9 asks for sets on 4-byte boundaries
            parts.append(SET.pack(template, SET.size + len(data) + pad) + data + bytes(pad))
            size += len(parts[-1])
        now = time.time()
        if self.v9:
            uptime = int((time.monotonic() - self._started) * 1000) & 0xFFFFFFFF
            head = header.pack(9, count + template_count, uptime, int(now), self.sequence, self.domain)
            self.sequence = (self.sequence + 1) & 0xFFFFFFFF
        else:
            head = header.pack(10, size, int(now), self.sequence, self.domain)
            self.sequence = (self.sequence + count) & 0xFFFFFFFF
        return head + b"".join(parts), count
