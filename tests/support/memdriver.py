"""An in-memory MirrorDriver (opentap/datapath/base.py): the reference implementation the reconciler's unit tests
run against, on a kernel that does what a test tells it. The kernel can refuse the next installs, lose or
change a rule behind the reconciler's back (drift), have an interface vanish (taking its rules with it, as Linux
does) and come back, and hold rules without a mark (an earlier version's) or with another device's mark.

The kernel's state (Kernel) outlives any driver: a new MemDriver and a new Reconciler on the same Kernel are a
daemon restarting over the rules it installed before. MemTunnels is the same for the tunnels between hosts
(opentap/datapath/base.py: TunnelDriver): a tunnel is an interface of the Kernel while it exists."""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentap.datapath.base import SLOTS, Mirror, Tunnel

if TYPE_CHECKING:
    from opentap.taas.reconcile import Reconciler

OWNER = b"test-device"  # this device's mark (the tc driver's cookie); rules with another mark are not ours


@dataclass(frozen=True)
class Rule:
    """What the kernel does for one mirror at a slot on its source interface: the driver's own description of
    its rules, which `installed` lists and `expected` predicts."""

    target: str
    direction: str
    host_side: bool = False
    vlan_filter: str | None = None
    fits: int | None = None


class InterfaceMissing(LookupError):
    """As the tc driver's: the mirror names an interface the kernel does not have."""


@dataclass
class Kernel:
    """Interfaces (name -> administratively up) and mirror rules, by mark, interface and slot."""

    links: dict[str, bool] = field(default_factory=dict)
    rules: dict[tuple[bytes, str, int], Rule] = field(default_factory=dict)
    unmarked: dict[tuple[str, int], Rule] = field(default_factory=dict)  # no mark: an earlier version's
    refusals: list[OSError] = field(default_factory=list)  # the next installs fail with these, one each
    changes: list[tuple[str, str, int]] = field(default_factory=list)  # (install|remove, interface, slot)
    tunnels: dict[tuple[bytes, int], Tunnel] = field(default_factory=dict)  # by mark and VNI
    tunnel_refusals: list[OSError] = field(default_factory=list)
    oversize: int = 0  # what the mirrors into tunnels counted as too large for them

    def plug(self, *names: str, up: bool = True) -> None:
        for name in names:
            self.links[name] = up

    def set_up(self, name: str, up: bool) -> None:
        self.links[name] = up

    def unplug(self, name: str) -> None:
        """The interface goes, and every rule on it with it (a VM's tap device deleted, say); a rule copying into
        it copies nowhere (the kernel's points at the interface's index, which a new one of that name has not)."""
        self.links.pop(name, None)
        self.rules = {k: r if r.target != name else dataclasses.replace(r, target=f"{name} (gone)")
                      for k, r in self.rules.items() if k[1] != name}
        self.unmarked = {k: r for k, r in self.unmarked.items() if k[0] != name}

    def refuse(self, *errors: OSError) -> None:
        """The next installs fail, with these errors in turn (default: one EPERM)."""
        self.refusals.extend(errors or [OSError(errno.EPERM, "Operation not permitted")])

    def lose(self, ifname: str, slot: int, owner: bytes = OWNER) -> None:
        """A rule goes behind the reconciler's back (someone ran `tc filter del`)."""
        del self.rules[(owner, ifname, slot)]

    def change(self, ifname: str, slot: int, owner: bytes = OWNER, **changes: object) -> None:
        """A rule is changed behind the reconciler's back, e.g. change(ifname, slot, target="elsewhere")."""
        key = (owner, ifname, slot)
        self.rules[key] = dataclasses.replace(self.rules[key], **changes)

    def marked(self, owner: bytes = OWNER) -> dict[tuple[str, int], Rule]:
        """The rules with a mark, (interface, slot) -> rule: what a test asserts on."""
        return {(i, s): r for (o, i, s), r in self.rules.items() if o == owner}


class MemDriver:
    """A MirrorDriver for one owner over a Kernel; it counts its surveys (the full passes' reads)."""

    def __init__(self, kernel: Kernel, owner: bytes = OWNER) -> None:
        self.kernel, self.owner = kernel, owner
        self.surveys = 0

    def _exists(self, *names: str) -> None:
        for name in names:
            if name not in self.kernel.links:
                raise InterfaceMissing(f"interface {name} does not exist")

    def install(self, mirror: Mirror) -> None:
        if not 0 <= mirror.slot < SLOTS:
            raise ValueError(f"slot {mirror.slot} is outside 0..{SLOTS - 1}")
        self._exists(mirror.source, mirror.target)
        if self.kernel.refusals:
            raise self.kernel.refusals.pop(0)
        self.kernel.rules[(self.owner, mirror.source, mirror.slot)] = self.expected(mirror)  # replaces: idempotent
        self.kernel.changes.append(("install", mirror.source, mirror.slot))

    def remove(self, source: str, slot: int) -> None:
        if self.kernel.rules.pop((self.owner, source, slot), None) is not None:
            self.kernel.changes.append(("remove", source, slot))

    def installed(self, ifname: str, slot: int | None = None) -> dict[tuple[str, int], Rule]:
        return {(i, s): r for (o, i, s), r in self.kernel.rules.items()
                if o == self.owner and i == ifname and slot in (None, s)}

    def survey(self, ifname: str) -> tuple[dict[tuple[str, int], Rule], dict[tuple[str, int], Rule]]:
        self.surveys += 1
        return self.installed(ifname), {k: r for k, r in self.kernel.unmarked.items() if k[0] == ifname}

    def claim(self, mirror: Mirror) -> tuple[int, int]:
        """An unmarked rule at the mirror's slot on its source that copies to its target is replaced by ours; one
        that copies elsewhere is left alone (and counted)."""
        key = (mirror.source, mirror.slot)
        old = self.kernel.unmarked.get(key)
        replaced = old is not None and old.target == mirror.target
        if replaced:
            del self.kernel.unmarked[key]
        self.install(mirror)
        return int(replaced), int(old is not None and not replaced)

    def expected(self, mirror: Mirror) -> Rule:
        return Rule(mirror.target, mirror.direction, mirror.host_side, mirror.vlan_filter, mirror.fits)

    def interfaces(self) -> set[str]:
        return set(self.kernel.links)

    def is_up(self, ifname: str) -> bool:
        return self.kernel.links.get(ifname, False)

    def oversize(self) -> int:
        return self.kernel.oversize


class MemTunnels:
    """A TunnelDriver for one owner over a Kernel; counts the tunnels it made (ensure() calls that made one)."""

    def __init__(self, kernel: Kernel, owner: bytes = OWNER) -> None:
        self.kernel, self.owner = kernel, owner
        self.made = 0

    def name(self, vni: int) -> str:
        return f"t{self.owner[:2].hex()}v{vni}"

    def ensure(self, tunnel: Tunnel) -> bool:
        key = (self.owner, tunnel.vni)
        have = self.kernel.tunnels.get(key)
        if have == tunnel:
            return False
        if self.kernel.tunnel_refusals:
            raise self.kernel.tunnel_refusals.pop(0)
        if tunnel.deliver is not None and tunnel.deliver not in self.kernel.links:
            raise InterfaceMissing(f"interface {tunnel.deliver} does not exist")
        remade = have is None or dataclasses.replace(have, deliver=None) != dataclasses.replace(tunnel, deliver=None)
        if remade:  # a new interface: the mirrors into the old one went with it
            self.kernel.unplug(self.name(tunnel.vni))
            self.kernel.plug(self.name(tunnel.vni))
            self.made += 1
        self.kernel.tunnels[key] = tunnel
        return remade

    def remove(self, vni: int) -> None:
        if self.kernel.tunnels.pop((self.owner, vni), None) is not None:
            self.kernel.unplug(self.name(vni))

    def tunnels(self) -> dict[int, Tunnel]:
        return {vni: t for (o, vni), t in self.kernel.tunnels.items() if o == self.owner}

    def fits(self, tunnel: Tunnel) -> int:
        return 1464


def installs(changes: Iterable[tuple[str, str, int]]) -> list[tuple[str, int]]:
    """The (interface, slot) of every install among a Kernel's changes."""
    return [(ifname, slot) for what, ifname, slot in changes if what == "install"]


# the unit tests' `datapath` fixture: datapath(owner=OWNER) -> (a Reconciler on this driver, the driver)
Datapath = Callable[..., "tuple[Reconciler, MemDriver]"]
