"""What a datapath driver does, independent of how (tc now; OVS or eBPF could follow)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SLOTS = 0x3FFF  # mirrors are numbered 0..SLOTS-1 (tc keeps them apart by filter priority)


@dataclass(frozen=True)
class Mirror:
    """One tap flow as the kernel sees it. `slot` is the flow's small number, unique among mirrors, which the
    driver uses to recognise its own rules; `host_side` says the source interface is the host's own (a physical
    NIC), not the host end of a VM's or container's link, which turns IN and OUT around."""

    slot: int
    source: str  # interface names
    target: str
    direction: str  # Neutron's meaning, from the machine behind the port: OUT = what it sends
    host_side: bool = False
    vlan_filter: str | None = None  # copy only frames whose VLAN id is in e.g. "9,18-27"; None: all frames
    fits: int | None = None  # into a tunnel: the largest frame it carries whole (larger copies are counted)


class MirrorDriver(Protocol):
    """A driver is made for one owner (this device): "ours" below means rules that carry its mark. Rules
    without it, another device's or anyone's, are never listed, changed or removed (claim() aside)."""

    def install(self, mirror: Mirror) -> None:
        """Make the kernel copy the mirror's packets (idempotent: installing twice leaves one set of rules)."""

    def remove(self, source: str, slot: int) -> None:
        """Remove one mirror's rules (ours only) from its source interface, if they are there."""

    def installed(self, ifname: str, slot: int | None = None) -> dict[tuple[str, int], Hashable]:
        """Our rules on an interface (one mirror's only, if slot is given): (interface, slot) -> a description
        of what they do, equal to `expected(mirror)` when they do exactly what the mirror asks."""

    def survey(self, ifname: str) -> tuple[dict[tuple[str, int], Hashable], dict[tuple[str, int], Hashable]]:
        """In one read of the interface: (ours as `installed` lists them, the unmarked mirrors in our range,
        which a previous version without marks may have left there)."""

    def claim(self, mirror: Mirror) -> tuple[int, int]:
        """Install the mirror in place of the unmarked rules a previous version left for it (at its slot on its
        source, copying to its target). Returns (rules replaced, other unmarked rules there left alone)."""

    def expected(self, mirror: Mirror) -> Hashable:
        """How `installed` describes a mirror's rules once they are in place."""

    def interfaces(self) -> set[str]:
        """The interfaces there are now, in one read: a full pass surveys each, and a mirror whose source or
        target is not among them is in ERROR."""

    def is_up(self, ifname: str) -> bool:
        """Whether the interface exists and is administratively up (a tap service on it is ACTIVE only then)."""

    def oversize(self) -> int:
        """The copies into tunnels that were larger than the tunnel carries whole (fits), as counted by our
        rules when the surveys last read them."""


@dataclass(frozen=True)
class Tunnel:
    """One end of a tap service's tunnel on this host (VXLAN, the service's tap id as its VNI). Sending (remote
    set): the mirrors of this host's source ports copy into it, and it carries the copies to the service's host.
    Receiving (deliver set): what arrives with its VNI is redirected into the service's port, `deliver`."""

    vni: int
    local: str  # this host's tunnel address
    remote: str | None = None  # the receiving host's tunnel address
    deliver: str | None = None  # the interface the copies go to on the receiving host
    up: bool = True  # as read back: a device someone set down is not the tunnel wanted


class TunnelDriver(Protocol):
    """Tunnels made for one owner (this device), marked as its own; others' are never listed, changed or removed."""

    def name(self, vni: int) -> str:
        """The interface a tunnel of this VNI is (mirrors into a sending tunnel copy to it)."""

    def ensure(self, tunnel: Tunnel) -> bool:
        """Make the tunnel exist exactly as described (idempotent). True when its interface was (re)made: the
        mirrors copying into the old one must be installed again."""

    def remove(self, vni: int) -> None:
        """Remove our tunnel of this VNI, if there is one."""

    def tunnels(self) -> dict[int, Tunnel]:
        """Our tunnels as the kernel has them now, by VNI."""

    def fits(self, tunnel: Tunnel) -> int:
        """The largest frame (Ethernet header included) that the sending tunnel carries without the underlay
        fragmenting it: its path's MTU less the encapsulation."""


def vlan_pairs(text: str) -> list[tuple[int, int]]:
    """The (low, high) ids of a VLAN filter's parts, as written: "9,18-27" -> [(9, 9), (18, 27)]."""
    pairs = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        pairs.append((int(low), int(high or low)))
    return pairs


def vlan_ranges(text: str) -> list[tuple[int, int]]:
    """The ids of a valid filter like "9,18-27,20" as sorted, merged (low, high) ranges."""
    ranges: list[tuple[int, int]] = []
    for low, high in sorted(vlan_pairs(text)):
        if ranges and low <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], high))
        else:
            ranges.append((low, high))
    return ranges


def has_net_admin() -> bool:
    """Whether this process may change tc rules (CAP_NET_ADMIN, bit 12 of its effective capabilities)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 12 & 1)
    except OSError:
        pass
    return False
