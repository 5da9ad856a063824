"""Mirrors' classic BPF programs for tc's `bpf` classifier: match-all, or a VLAN filter.

Every mirror uses the `bpf` classifier, even a match-all one (a single `ret -1`). A u32 match-all would do the
same, but u32 filters at one priority on clsact's two hooks share their hash tables (one tc_u_common per
qdisc): a dump of either hook lists both hooks' u32 filters, so which hook a filter is on cannot be read back,
and a priority keeps an empty table after its last filter, which then refuses another kind. bpf filters are
per hook, and a priority goes with its last one. Several devices' mirrors can then share a priority.

The tag is where the kernel put it: on a veth, and on most NICs, it is skb metadata by the time clsact sees the
frame (the VLAN header is gone from the bytes), so the program asks for it with the ancillary loads; a frame
that still carries its tag inline (802.1Q or 802.1ad) is read at offset 14. Either way the outer tag's 12-bit id
is compared with the filter's ranges. A frame without a tag never matches. tcfilters.py sends the program as the
classifier's TCA_BPF_OPS (with its length in instructions, TCA_BPF_OPS_LEN).

A mirror into a tunnel is split by size (fits): one program matches what it matches and fits the tunnel, the
other what is larger (the underlay will fragment it), so that the second filter's action counts the copies that
did not fit (DESIGN.md, "MTU"). The size is the frame's length on the wire: a tag kept in metadata, which the
tunnel puts back into the frame, counts its 4 bytes.

A GSO or GRO super-packet (a VM's TSO send, up to 64 KB in one skb) is not one frame: the kernel keeps it whole
through the tunnel when its segments fit and segments it only otherwise, so its skb->len says nothing about
fitting. Classic BPF cannot read gso_size, but it need not: every segment is at most a frame of the source port
(`frame`, its MTU + 14), so a packet longer than any single frame could be (frame + 8, two inline tags) is a
super-packet, and it is oversize exactly when the port's full-size frame (with a metadata tag's 4 bytes) is
larger than fits. Counting: tc counts a super-packet as its gso_segs, so the oversize count is in frames."""

from __future__ import annotations

import struct

from .base import vlan_ranges

# classic BPF opcodes (linux/filter.h)
LD_W_ABS, LD_H_ABS, AND_K, JA, JEQ_K, JGT_K, JGE_K, RET_K = 0x20, 0x28, 0x54, 0x05, 0x15, 0x25, 0x35, 0x06
LD_W_LEN, LSH_K, ADD_X, ADD_K, TAX, TXA = 0x80, 0x64, 0x0C, 0x04, 0x07, 0x87
AD_VLAN_TAG, AD_VLAN_PRESENT = 0xFFFFF000 + 44, 0xFFFFF000 + 48  # SKF_AD_OFF + SKF_AD_VLAN_TAG(_PRESENT)
INLINE_TAGS = 8  # a single frame may carry two tags inline (802.1ad + 802.1Q) beyond its MTU + 14
MATCH, NO_MATCH = 0xFFFFFFFF, 0  # -1: the filter's default class, and its actions run
MAX_INSNS = 4096


def program(vlan_filter: str | None, fits: int | None = None, oversize: bool = False, frame: int = 1514) -> bytes:
    """struct sock_filter[] (u16 code, u8 jt, u8 jf, u32 k; host byte order) matching every frame (None), or
    the frames whose VLAN id is in the filter; with fits, only those of them up to fits bytes long (or, when
    oversize, only the longer ones), a super-packet by the size of its segments, at most frame bytes each (the
    source port's MTU + 14)."""
    insns = _vlan(vlan_filter)
    if fits is not None:
        tail = len(insns)
        # every "match" jumps to the size test instead
        insns = [(JA, 0, 0, tail - i - 1) if ins == (RET_K, 0, 0, MATCH) else ins for i, ins in enumerate(insns)]
        small, big = (NO_MATCH, MATCH) if oversize else (MATCH, NO_MATCH)
        insns += [(LD_W_ABS, 0, 0, AD_VLAN_PRESENT), (LSH_K, 0, 0, 2), (TAX, 0, 0, 0),  # X: a metadata tag's bytes
                  (LD_W_LEN, 0, 0, 0), (JGT_K, 2, 0, frame + INLINE_TAGS),  # longer than any frame: a super-packet
                  (ADD_X, 0, 0, 0), (JGT_K, 4, 3, fits),  # one frame: its own length, tag included
                  (TXA, 0, 0, 0), (ADD_K, 0, 0, frame), (JGT_K, 1, 0, fits),  # a super-packet: its largest segment
                  (RET_K, 0, 0, small), (RET_K, 0, 0, big)]
    if len(insns) > MAX_INSNS:
        raise ValueError(f"VLAN filter {vlan_filter!r} needs {len(insns)} instructions, over the kernel's {MAX_INSNS}")
    return b"".join(struct.pack("=HBBI", *i) for i in insns)


OVERSIZE_TAIL = struct.pack("=HBBI", RET_K, 0, 0, NO_MATCH) + struct.pack("=HBBI", RET_K, 0, 0, MATCH)


def is_oversize(ops: bytes) -> bool:
    """Whether a program is the oversize half of a split mirror (no other program of ours ends this way)."""
    return ops.endswith(OVERSIZE_TAIL)


def _vlan(vlan_filter: str | None) -> list[tuple[int, int, int, int]]:
    if vlan_filter is None:
        return [(RET_K, 0, 0, MATCH)]
    insns = [
        (LD_W_ABS, 0, 0, AD_VLAN_PRESENT),
        (JEQ_K, 2, 0, 0),  # no tag in metadata: look in the frame
        (LD_W_ABS, 0, 0, AD_VLAN_TAG),
        (JA, 0, 0, 5),
        (LD_H_ABS, 0, 0, 12),  # the ethertype
        (JEQ_K, 2, 0, 0x8100),
        (JEQ_K, 1, 0, 0x88A8),
        (RET_K, 0, 0, NO_MATCH),
        (LD_H_ABS, 0, 0, 14),  # the tag control information
        (AND_K, 0, 0, 0x0FFF),  # the id, without priority and DEI bits
    ]
    for low, high in vlan_ranges(vlan_filter):  # three instructions per range keep every jump short
        insns += [(JGE_K, 0, 2, low), (JGT_K, 1, 0, high), (RET_K, 0, 0, MATCH)]
    insns.append((RET_K, 0, 0, NO_MATCH))
    return insns

