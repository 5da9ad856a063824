"""VLAN filters as classic BPF programs for tc's `bpf` classifier.

The tag is where the kernel put it: on a veth, and on most NICs, it is skb metadata by the time clsact sees the
frame (the VLAN header is gone from the bytes), so the program asks for it with the ancillary loads; a frame
that still carries its tag inline (802.1Q or 802.1ad) is read at offset 14. Either way the outer tag's 12-bit id
is compared with the filter's ranges. A frame without a tag never matches.

pyroute2 declares the classifier's classic-program attributes as 32-bit integers, so `register()` gives its
`bpf` plugin the right layout (a count and the instruction array) before we send or read one."""

from __future__ import annotations

import struct
import types

from pyroute2.netlink.rtnl.tcmsg import plugins, sched_bpf

from opentap.taas.attributes import vlan_ranges

# classic BPF opcodes (linux/filter.h)
LD_W_ABS, LD_H_ABS, AND_K, JA, JEQ_K, JGT_K, JGE_K, RET_K = 0x20, 0x28, 0x54, 0x05, 0x15, 0x25, 0x35, 0x06
AD_VLAN_TAG, AD_VLAN_PRESENT = 0xFFFFF000 + 44, 0xFFFFF000 + 48  # SKF_AD_OFF + SKF_AD_VLAN_TAG(_PRESENT)
MATCH, NO_MATCH = 0xFFFFFFFF, 0  # -1: the filter's default class, and its actions run
MAX_INSNS = 4096


def program(vlan_filter: str) -> bytes:
    """struct sock_filter[] (u16 code, u8 jt, u8 jf, u32 k; host byte order) matching the filter's VLAN ids."""
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


class _Options(sched_bpf.options):
    nla_map = tuple((name, {"TCA_BPF_OPS_LEN": "uint16", "TCA_BPF_OPS": "cdata"}.get(name, kind))
                    for name, kind in sched_bpf.options.nla_map)


def _parameters(kwarg: dict) -> dict:
    params = sched_bpf.get_parameters(kwarg)
    ops = kwarg.get("ops")
    if ops is not None:
        params["attrs"] += [["TCA_BPF_OPS_LEN", len(ops) // 8], ["TCA_BPF_OPS", ops]]
    return params


def register() -> None:
    """Point pyroute2's `bpf` filter plugin at the corrected layout (idempotent)."""
    if getattr(plugins["bpf"], "__name__", "") != __name__ + ".plugin":
        plugins["bpf"] = types.SimpleNamespace(
            __name__=__name__ + ".plugin", options=_Options, get_parameters=_parameters,
            fix_request=sched_bpf.fix_request, parent=sched_bpf.parent)


