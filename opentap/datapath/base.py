"""What a datapath driver does, independent of how (tc now; OVS or eBPF could follow)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

DIRECTIONS = ("IN", "OUT", "BOTH")
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


class MirrorDriver(Protocol):
    def install(self, mirror: Mirror) -> None:
        """Make the kernel copy the mirror's packets (idempotent: installing twice leaves one set of rules)."""

    def remove(self, source: str, slot: int) -> None:
        """Remove one mirror's rules from its source interface (nothing else), if they are there."""

    def installed(self, ifname: str, slot: int | None = None) -> dict[tuple[str, int], Hashable]:
        """Our rules on an interface (one mirror's only, if slot is given): (interface, slot) -> a description
        of what they do, equal to `expected(mirror)` when they do exactly what the mirror asks."""

    def expected(self, mirror: Mirror) -> Hashable:
        """How `installed` describes a mirror's rules once they are in place."""
