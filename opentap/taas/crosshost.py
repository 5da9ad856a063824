"""Tap flows across hosts: which end of a flow this host is, and the tunnels it therefore needs.

A port is on the host its `binding:host_id` names. For a flow from a port on host S into a tap service whose port
is on host T, S = T is a local flow (as on a single host); S != T: S mirrors the source's packets into a sending
tunnel of the service's VNI towards T, and T has a receiving tunnel of that VNI whose packets go into the
service's port. Each host acts only on the flows it is an end of. A SQLite deployment is one host: there every
port is this host's, whatever it names (single=True), and there are no tunnels.

Tunnels are reconciled as mirrors are: a quick pass trusts what it made, a full pass reads our tunnels back from
the kernel, adopts what is right (a restart interrupts nothing), remakes what someone changed, and removes ours
that no flow wants, counting each as drift."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from opentap.datapath.base import Tunnel, TunnelDriver

from .agents import Host
from .flowstatus import LOCAL, Role

log = logging.getLogger("opentap.datapath")


@dataclass
class Placement:
    """Where things are, as this host sees them during one pass."""

    me: str
    single: bool
    tunnel_ip: str | None = None
    hosts: dict[str, Host] = field(default_factory=dict)
    down_time: float = 15.0

    def host_of(self, port: Any) -> str:
        return self.me if self.single else (port.binding_host_id or "")

    def here(self, port: Any) -> bool:
        return self.host_of(port) == self.me

    def role(self, source: Any, target: Any) -> Role | None:
        """None: this host is neither end of the flow."""
        s_host, t_host = self.host_of(source), self.host_of(target)
        if s_host == t_host == self.me:
            return LOCAL
        if s_host == self.me:
            return Role("source_side", t_host)
        if t_host == self.me:
            return Role("service_side", s_host)
        return None

    def alive(self, name: str) -> bool:
        host = self.hosts.get(name)
        return host is not None and host.alive(self.down_time) and host.datapath

    def sending(self, vni: int, peer: str) -> Tunnel | str:
        """The sending tunnel towards peer's host, or why there can be none."""
        if self.tunnel_ip is None:
            return f"this host ({self.me}) has no tunnel_ip in its config"
        host = self.hosts.get(peer)
        if host is None:
            return f"host {peer} has no agent (no daemon of that host name has registered)"
        if host.tunnel_ip is None:
            return f"host {peer} has no tunnel_ip in its config"
        return Tunnel(vni, self.tunnel_ip, remote=host.tunnel_ip)

    def receiving(self, vni: int, deliver: str) -> Tunnel | str:
        if self.tunnel_ip is None:
            return f"this host ({self.me}) has no tunnel_ip in its config"
        return Tunnel(vni, self.tunnel_ip, deliver=deliver)


class Tunnels:
    """This host's tunnels: made when a pass wants them, removed when none does."""

    def __init__(self, driver: TunnelDriver) -> None:
        self.driver = driver
        self.applied: dict[int, Tunnel] = {}  # VNI -> what we last made (or found made)
        self.drift = 0
        self.touched: dict[int, float] = {}  # VNI -> when a pass last changed it (time.monotonic())
        self.fits: dict[int, int] = {}  # VNI -> the largest frame a sending tunnel carries whole

    def read(self) -> tuple[float, dict[int, Tunnel]]:
        """Our tunnels in the kernel, with the time the read began (a full pass's, outside its lock)."""
        return time.monotonic(), self.driver.tunnels()

    def _seen(self, vni: int, actual: tuple[float, dict[int, Tunnel]] | None) -> bool:
        """Whether a full pass's read tells the truth about this tunnel: not if a pass changed it since."""
        return actual is not None and self.touched.get(vni, 0) < actual[0]

    def ensure(self, wanted: dict[int, Tunnel], actual: tuple[float, dict[int, Tunnel]] | None,
               ) -> tuple[dict[int, str], set[str]]:
        """Make the wanted tunnels (actual: our tunnels as a full pass read them, and when; None: a quick pass,
        trusting what it made). Returns (VNI -> why it cannot be made, for those that failed; the interfaces made
        again, whose mirrors must be installed again)."""
        failed: dict[int, str] = {}
        remade: set[str] = set()
        for vni, tunnel in sorted(wanted.items()):
            seen = self._seen(vni, actual)
            have = actual[1].get(vni) if actual is not None and seen else self.applied.get(vni)
            if have == tunnel:
                self.applied[vni] = tunnel  # after a restart too: the kernel already has it
                self._fits(tunnel)
                continue
            if seen and self.applied.get(vni) == tunnel:
                self.drift += 1
                log.warning("drift: tunnel %d (%s) is %s; making it again", vni, self.driver.name(vni),
                            "changed" if have is not None else "gone")
            self.touched[vni] = time.monotonic()
            try:
                if self.driver.ensure(tunnel):
                    remade.add(self.driver.name(vni))
                # again once made: a full pass that read the kernel meanwhile saw it half-made
                self.touched[vni] = time.monotonic()
                ok = self.driver.tunnels().get(vni) == tunnel  # read back, as mirrors are
            except OSError as e:
                ok, failed[vni] = False, f"the kernel refused tunnel {vni}: {e}"[:200]
            if ok:
                self.applied[vni] = tunnel
                self._fits(tunnel)
            else:
                self.applied.pop(vni, None)
                failed.setdefault(vni, f"tunnel {vni} is not as made")
        return failed, remade

    def _fits(self, tunnel: Tunnel) -> None:
        if tunnel.remote is not None and tunnel.vni not in self.fits:  # the route's MTU: once per tunnel
            self.fits[tunnel.vni] = self.driver.fits(tunnel)

    def remove_unwanted(self, wanted: dict[int, Tunnel], actual: tuple[float, dict[int, Tunnel]] | None) -> None:
        """After the mirrors into them are gone: our tunnels that no flow wants."""
        found = {vni for vni in (actual[1] if actual else {}) if self._seen(vni, actual)}
        for vni in sorted((set(self.applied) | found) - set(wanted)):
            self.touched[vni] = time.monotonic()
            if vni not in self.applied:
                self.drift += 1
                log.warning("drift: removing our tunnel %d (%s), which no tap flow wants", vni, self.driver.name(vni))
            self.driver.remove(vni)
            self.applied.pop(vni, None)
            self.fits.pop(vni, None)
