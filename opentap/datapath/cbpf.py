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
classifier's TCA_BPF_OPS (with its length in instructions, TCA_BPF_OPS_LEN)."""

from __future__ import annotations

import struct

from .base import vlan_ranges

# classic BPF opcodes (linux/filter.h)
LD_W_ABS, LD_H_ABS, AND_K, JA, JEQ_K, JGT_K, JGE_K, RET_K = 0x20, 0x28, 0x54, 0x05, 0x15, 0x25, 0x35, 0x06
AD_VLAN_TAG, AD_VLAN_PRESENT = 0xFFFFF000 + 44, 0xFFFFF000 + 48  # SKF_AD_OFF + SKF_AD_VLAN_TAG(_PRESENT)
MATCH, NO_MATCH = 0xFFFFFFFF, 0  # -1: the filter's default class, and its actions run
MAX_INSNS = 4096


def program(vlan_filter: str | None) -> bytes:
    """struct sock_filter[] (u16 code, u8 jt, u8 jf, u32 k; host byte order) matching every frame (None), or
    the frames whose VLAN id is in the filter."""
    if vlan_filter is None:
        return struct.pack("=HBBI", RET_K, 0, 0, MATCH)
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
    if len(insns) > MAX_INSNS:
        raise ValueError(f"VLAN filter {vlan_filter!r} needs {len(insns)} instructions, over the kernel's {MAX_INSNS}")
    return b"".join(struct.pack("=HBBI", *i) for i in insns)

