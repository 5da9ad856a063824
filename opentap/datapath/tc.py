"""The Linux tc datapath: on the source interface a `clsact` qdisc, and per mirror a `bpf` filter (a classic
program: match-all, or the mirror's VLAN filter; cbpf.py) with `mirred egress mirror` to the target interface,
on the hook(s) its direction needs. Through netlink (tcfilters.py), never the `tc` command; the kernel copies
the packets, never Python.

Hooks, for the usual port (the host end of a VM's tap or a container's veth): clsact *ingress* sees what the
host receives from the interface, that is what the machine behind it sends (OUT); *egress* what the host sends
into it, what the machine receives (IN). For a host-side port (a physical NIC) it is the other way round.

Ownership: a mirror's filters sit at priority PRIO_BASE + slot, and its mirred action carries the driver's
`owner` (this device's id) as its tc cookie. Only filters with that cookie are ours: we list, change and remove
no others, so another device on the host (its own cookie, maybe the same priorities: its filters then share the
priority with ours, each with its own handle) and anyone's hand-made rules are left alone. The one exception is
claim(): the mirrors a previous version made, before cookies, at a mirror's priority on its source and copying
to its target are replaced by ours.

The clsact qdisc is shared with anyone. It is removed with our last filter only when we created it (the ledger,
qdiscs.py, remembers that: the kernel cannot tell) and no filter at all is left on either hook: a clsact that
was there before us, or that holds anyone else's filters, stays. (One we made that still holds another's
filters when our last one goes stays until a later remove() of ours on that interface finds it empty: only
remove() looks, under the reconciler's lock, so that no install of ours races it.)"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path

from opentap import hostif

from . import cbpf
from .base import SLOTS, Mirror
from .qdiscs import QdiscLedger
from .tcfilters import Filter, FilterSocket

PRIO_BASE = 0xC000  # our priority range: 0xC000..0xFFFE
HOOKS = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}  # clsact's two parents
ETH_P_ALL = 0x0003
ETH_HLEN = 14
EEXIST, ENOENT, EINVAL = 17, 2, 22


class InterfaceMissing(LookupError):
    pass


def hooks_for(direction: str, host_side: bool) -> set[str]:
    sends, receives = ("egress", "ingress") if host_side else ("ingress", "egress")
    return {"OUT": {sends}, "IN": {receives}, "BOTH": {sends, receives}}[direction]


# per filter: (hook, classifier, target ifindex, bpf program), sorted: a doubled filter shows as a difference
Rule = tuple[tuple[str, str, int, bytes], ...]
Rules = dict[tuple[str, int], Rule]  # (interface, slot) -> its filters


def _rule(filters: Iterable[tuple[str, str, int, bytes]]) -> Rule:
    return tuple(sorted(filters))


def _programs(mirror: Mirror) -> list[bytes]:
    """A mirror's filter programs per hook: one; into a tunnel (fits), the copies that fit and the larger ones,
    whose filter's counter is the count of copies the underlay fragments (cbpf.py). The split needs the source's
    largest frame (its MTU + 14) to judge GSO super-packets by their segments: read here, so that a port whose
    MTU changes shows as drift at the next full pass and gets programs for its new MTU."""
    if mirror.fits is None:
        return [cbpf.program(mirror.vlan_filter)]
    frame = _mtu(mirror.source) + ETH_HLEN
    return [cbpf.program(mirror.vlan_filter, mirror.fits, oversize, frame) for oversize in (False, True)]


def _mtu(ifname: str) -> int:
    if (found := hostif.mtu(ifname)) is None:
        raise InterfaceMissing(f"interface {ifname} does not exist")
    return found


class TcDriver:
    def __init__(self, owner: bytes, ledger: Path | None = None) -> None:
        """ledger: the file that remembers, across restarts, the clsact qdiscs this driver created (None: only
        while this object lives)."""
        if not 0 < len(owner) <= 16:
            raise ValueError("the owner is a tc cookie: 1 to 16 bytes")
        self.owner = owner
        self.filters = FilterSocket()  # one netlink socket per thread
        self.qdiscs = QdiscLedger(ledger)
        self._oversize: dict[tuple[str, int], int] = {}  # (interface, slot) -> copies too large, at the last survey

    def close(self) -> None:
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
            self.filters.add_clsact(source)
        except OSError as e:
            if e.errno != EEXIST:  # a clsact qdisc is already there (ours or anyone's): share it
                raise
        else:
            self.qdiscs.made(source, mirror.source)
        self._remove(source, mirror.slot)  # idempotent, and a changed target replaces the old rule
        for hook in sorted(hooks_for(mirror.direction, mirror.host_side)):
            for ops in _programs(mirror):
                self.filters.add_mirror(source, HOOKS[hook], PRIO_BASE + mirror.slot, ETH_P_ALL, target, self.owner,
                                        ops)

    def expected(self, mirror: Mirror) -> Rule:
        target = self._index(mirror.target)
        return _rule((hook, "bpf", target, ops) for hook in hooks_for(mirror.direction, mirror.host_side)
                     for ops in _programs(mirror))

    def oversize(self) -> int:
        present = hostif.present()  # an interface gone took its filters and their counts with it
        return sum(n for (ifname, _slot), n in self._oversize.items() if ifname in present)

    def remove(self, source: str, slot: int) -> None:
        """Our filters at the slot's priority go; anyone else's there stay. Then the clsact qdisc, if we made it
        and nothing is left on it."""
        try:
            index = self._index(source)
        except InterfaceMissing:
            return  # the interface took its filters (and its qdisc) with it
        self._remove(index, slot)
        # (a filter someone adds between this dump and the delete would go with the qdisc: netlink has no
        # "delete if empty", and the window is one round trip)
        if self.qdiscs.ours(index, source) and not any(self._dump(index, parent, None) for parent in HOOKS.values()):
            try:
                self.filters.delete_clsact(index)
            except OSError as e:
                if e.errno not in (ENOENT, EINVAL):  # gone already
                    raise
            self.qdiscs.forget(index)

    def _remove(self, index: int, slot: int) -> None:
        for parent in HOOKS.values():
            for f in self._dump(index, parent, PRIO_BASE + slot):
                if f.real and f.cookie == self.owner:  # a priority goes by itself with its last bpf filter
                    self._delete(index, parent, f.prio, f.handle)

    def _delete(self, index: int, parent: int, prio: int, handle: int) -> None:
        try:
            self.filters.delete(index, parent, prio, ETH_P_ALL, handle)
        except OSError as e:
            if e.errno not in (ENOENT, EINVAL):  # gone meanwhile (or its clsact qdisc)
                raise

    def _dump(self, index: int, parent: int, prio: int | None) -> list[Filter]:
        try:
            return self.filters.dump(index, parent, prio, ETH_P_ALL if prio else 0)
        except OSError:
            return []  # no clsact qdisc here

    def survey(self, ifname: str, slot: int | None = None) -> tuple[Rules, Rules]:
        """(ours, unmarked) on an interface, from one dump per hook (only the slot's priority when given, which
        the kernel filters). Ours: the filters in our range with our cookie. Unmarked: mirrors in our range
        without any cookie, which a previous version made (or someone by hand); another device's are in
        neither."""
        try:
            index = self._index(ifname)
        except InterfaceMissing:
            return {}, {}
        ours: dict[tuple[str, int], list[tuple[str, str, int, bytes]]] = {}
        unmarked: dict[tuple[str, int], list[tuple[str, str, int, bytes]]] = {}
        oversize: dict[tuple[str, int], int] = {}
        for hook, parent in HOOKS.items():
            for f in self._dump(index, parent, None if slot is None else PRIO_BASE + slot):
                if not (f.real and PRIO_BASE <= f.prio < PRIO_BASE + SLOTS):
                    continue
                if f.cookie == self.owner and cbpf.is_oversize(f.ops):
                    key = (ifname, f.prio - PRIO_BASE)
                    oversize[key] = oversize.get(key, 0) + f.packets
                into = ours if f.cookie == self.owner else unmarked if f.cookie is None and f.target >= 0 else None
                if into is not None:
                    into.setdefault((ifname, f.prio - PRIO_BASE), []).append((hook, f.kind, f.target, f.ops))
        if slot is None:  # a whole interface's count: the last survey's, for every interface
            self._oversize = {k: v for k, v in self._oversize.items() if k[0] != ifname} | oversize
        return ({key: _rule(v) for key, v in ours.items()}, {key: _rule(v) for key, v in unmarked.items()})

    def installed(self, ifname: str, slot: int | None = None) -> Rules:
        return self.survey(ifname, slot)[0]

    @staticmethod
    def interfaces() -> set[str]:
        return hostif.present()

    @staticmethod
    def is_up(ifname: str) -> bool:
        return hostif.state(ifname)[1]

    def claim(self, mirror: Mirror) -> tuple[int, int]:
        """Install the mirror in place of what a previous version left for it: filters without a cookie at its
        priority on its source that copy to its target (u32 ones, which cannot share a priority with bpf).
        They go first, so mirroring pauses for about a millisecond, once, at the upgrade. Unmarked filters
        that copy elsewhere are left alone. Returns (filters replaced, filters left alone)."""
        source, target = self._index(mirror.source), self._index(mirror.target)
        prio, replaced, others = PRIO_BASE + mirror.slot, set(), set()
        for parent in HOOKS.values():
            found = [f for f in self._dump(source, parent, prio) if f.real]
            old = [f for f in found if f.cookie is None and f.target == target]
            # sets of (kind, handle): each hook's dump lists both hooks' u32 filters at a priority
            replaced |= {(f.kind, f.handle) for f in old}
            others |= {(f.kind, f.handle) for f in found if f.cookie is None and f.target != target}
            # alone there, they go with their whole priority (handle 0): u32 would keep an empty hash table
            for handle in [0] if old and len(old) == len(found) else [f.handle for f in old]:
                self._delete(source, parent, prio, handle)
        self.install(mirror)
        return len(replaced), len(others)
