"""The Linux tc datapath: on the source interface a `clsact` qdisc, and per mirror a `u32` match-all filter
with `mirred egress mirror` to the target interface, on the hook(s) its direction needs; a mirror with a VLAN
filter uses a `bpf` classifier instead (cbpf.py), as u32 cannot see a tag that is only skb metadata. Through
netlink (pyroute2), never the `tc` command; the kernel copies the packets, never Python.

Hooks, for the usual port (the host end of a VM's tap or a container's veth): clsact *ingress* sees what the
host receives from the interface, that is what the machine behind it sends (OUT); *egress* what the host sends
into it, what the machine receives (IN). For a host-side port (a physical NIC) it is the other way round.

Our filters are the ones whose priority is PRIO_BASE + slot; nobody else's filters or qdiscs are touched."""

from __future__ import annotations

import socket
import threading

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import cbpf
from .base import SLOTS, Mirror
from .tcfilters import FilterSocket

PRIO_BASE = 0xC000  # our priority range: 0xC000..0xFFFE
HOOKS = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}  # clsact's two parents
ETH_P_ALL = 0x0003
EEXIST, ENOENT, EINVAL = 17, 2, 22


class InterfaceMissing(LookupError):
    pass


def hooks_for(direction: str, host_side: bool) -> set[str]:
    sends, receives = ("egress", "ingress") if host_side else ("ingress", "egress")
    return {"OUT": {sends}, "IN": {receives}, "BOTH": {sends, receives}}[direction]


Rule = frozenset[tuple[str, str, int, bytes]]  # per hook: (hook, classifier, target ifindex, bpf program)


class TcDriver:
    def __init__(self) -> None:
        cbpf.register()
        self._local = threading.local()  # one netlink socket per thread: the API's passes and the full pass's
        self._sockets: list[IPRoute] = []  # dump run concurrently, and pyroute2's sockets are not shared safely
        self.filters = FilterSocket()  # reading filters back (20x pyroute2's speed) and removing ours

    @property
    def ip(self) -> IPRoute:
        ip = getattr(self._local, "ip", None)
        if ip is None:
            ip = self._local.ip = IPRoute()
            self._sockets.append(ip)
        return ip

    def close(self) -> None:
        for ip in self._sockets:
            ip.close()
        self.filters.close()

    @staticmethod
    def _index(ifname: str) -> int:
        try:
            return socket.if_nametoindex(ifname)  # an ioctl: a netlink link dump would cost 100x more per flow
        except OSError:
            raise InterfaceMissing(f"interface {ifname} does not exist") from None

    def install(self, mirror: Mirror) -> None:
        if not 0 <= mirror.slot < SLOTS:
            raise ValueError(f"slot {mirror.slot} is outside 0..{SLOTS - 1}")
        source, target = self._index(mirror.source), self._index(mirror.target)
        try:
            self.ip.tc("add", "clsact", source)
        except NetlinkError as e:
            if e.code != EEXIST:  # a clsact qdisc is already there (ours or anyone's): share it
                raise
        self.remove(mirror.source, mirror.slot)  # idempotent, and a changed target replaces the old rule
        action = [{"kind": "mirred", "direction": "egress", "action": "mirror", "ifindex": target}]
        for hook in sorted(hooks_for(mirror.direction, mirror.host_side)):
            common = {"parent": HOOKS[hook], "prio": PRIO_BASE + mirror.slot, "protocol": ETH_P_ALL, "action": action}
            if mirror.vlan_filter is None:
                self.ip.tc("add-filter", "u32", source, target=0x10001, keys=["0x0/0x0+0"], **common)
            else:
                self.ip.tc("add-filter", "bpf", source, ops=cbpf.program(mirror.vlan_filter), **common)

    def expected(self, mirror: Mirror) -> Rule:
        target = self._index(mirror.target)
        kind, ops = ("u32", b"") if mirror.vlan_filter is None else ("bpf", cbpf.program(mirror.vlan_filter))
        return frozenset((hook, kind, target, ops) for hook in hooks_for(mirror.direction, mirror.host_side))

    def remove(self, source: str, slot: int) -> None:
        try:
            index = self._index(source)
        except InterfaceMissing:
            return  # the interface took its filters with it
        for parent in HOOKS.values():
            try:
                self.filters.delete(index, parent, PRIO_BASE + slot, ETH_P_ALL)
            except OSError as e:
                if e.errno not in (ENOENT, EINVAL):  # no such filter (or no clsact at all)
                    raise

    def installed(self, ifname: str, slot: int | None = None) -> dict[tuple[str, int], Rule]:
        try:
            index = self._index(ifname)
        except InterfaceMissing:
            return {}
        out: dict[tuple[str, int], set[tuple[str, str, int, bytes]]] = {}
        for hook, parent in HOOKS.items():
            try:  # only this mirror's priority when a slot is given: the kernel filters the dump
                filters = self.filters.dump(index, parent, None if slot is None else PRIO_BASE + slot, ETH_P_ALL)
            except OSError:
                continue  # no clsact qdisc here
            for f in filters:
                if not PRIO_BASE <= f.prio < PRIO_BASE + SLOTS:
                    continue
                rules = out.setdefault((ifname, f.prio - PRIO_BASE), set())
                # each priority comes with a bare header (handle 0), and a u32 filter with a hash-table entry
                if f.handle and (f.kind != "u32" or f.handle & 0xFFF):
                    rules.add((hook, f.kind, f.target, f.ops))
        return {key: frozenset(rules) for key, rules in out.items()}
