"""Keeps the kernel's mirrors equal to the tap flows in the database, and the statuses truthful.

One pass: every tap flow whose two interfaces exist gets its rules (installed only when missing or changed,
so mirrors are never interrupted, not even by a daemon restart), and turns ACTIVE once a dump shows them; one
whose interface is missing turns ERROR with the reason in `status_reason`; flows being deleted
(PENDING_DELETE) lose their rules and then their row; our rules that no flow wants are removed, on whatever
interface they are, so a device that lost its database (but not its id, see opentap/identity.py) clears the
mirrors it made before. Rules found changed, gone or unwanted are drift: logged, counted, and repaired. "Our"
rules are those carrying this device's mark (the driver knows it): another device's on the same host, and
anyone's, are left alone. Tap services are ACTIVE while their port's interface exists and is up. Passes run
periodically, on link events, whenever this host's API changes something, and when another host's API tells
this one (PostgreSQL NOTIFY) that a change concerns it.

Across hosts (crosshost.py) a host acts only on the flows it is an end of: their source's mirror (into the
tap service's tunnel when the service is elsewhere), and the receiving tunnels of its tap services fed from
other hosts; statuses combine both ends (flowstatus.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from opentap.datapath.base import Mirror, MirrorDriver, Tunnel, TunnelDriver
from opentap.datapath.linkwatch import LinkWatcher
from opentap.taas.store import TABLES

from . import agents, flowstatus
from .crosshost import Placement, Tunnels
from .flowstatus import LOCAL, Role

log = logging.getLogger("opentap.datapath")


class Reconciler:
    def __init__(self, sessions: sessionmaker, driver: MirrorDriver, period: float = 1.0,
                 full_period: float = 10.0, host: str | None = None, tunnels: TunnelDriver | None = None,
                 tunnel_ip: str | None = None, down_time: float = 15.0) -> None:
        """host: this host's name in a deployment of several (None: a single host, where every port is this
        host's); tunnels: the driver of the tunnels to and from other hosts; down_time: how old another host's
        heartbeat may be before its agent counts as dead."""
        self.sessions, self.driver = sessions, driver
        self.period, self.full_period = period, full_period
        self.host, self.tunnel_ip, self.down_time = host, tunnel_ip, down_time
        self.tunnels = Tunnels(tunnels) if tunnels is not None and host is not None else None
        self.applied: dict[int, Mirror] = {}  # slot -> what we last installed (or found installed)
        self.drift = 0  # times the kernel was found not as we left it (rules changed, gone, or unwanted)
        self.passes = {"quick": 0, "full": 0}  # for /metrics, as drift and errors
        self.errors = 0
        self._poke, self._stop, self._audit = threading.Event(), threading.Event(), threading.Event()
        self._ready = threading.Event()  # set by the first full pass: until then nothing we installed is known
        self._lock = threading.Lock()  # one pass's changes at a time: a quick, a full, or the API's on a delete
        self._threads: list[threading.Thread] = []
        self._links = LinkWatcher(self._audit.set)
        self._touched: dict[int, float] = {}  # slot -> when a pass last changed its rules (time.monotonic())

    def start(self) -> None:
        """Quick passes in one thread, full ones in another, so that a long kernel dump never delays a flow."""
        self._links.start()
        for name, loop in (("datapath", self._quick_loop), ("datapath-audit", self._full_loop)):
            self._threads.append(threading.Thread(target=loop, name=name, daemon=True))
            self._threads[-1].start()

    def stop(self) -> None:
        self._links.stop()
        self._stop.set()
        self._poke.set()
        self._audit.set()
        for thread in self._threads:
            thread.join()

    def poke(self) -> None:
        self._poke.set()

    def notified(self, payload: str) -> None:
        """A NOTIFY from some host's API: a quick pass when it concerns this host."""
        if payload == "*" or (self.host is not None and self.host in payload.split(",")):
            self.poke()

    def counts(self) -> dict[str, int]:
        """What the heartbeat reports of this host's datapath."""
        return {"mirrors": len(self.applied), "tunnels": len(self.tunnels.applied) if self.tunnels else 0,
                "drift": self.drift + (self.tunnels.drift if self.tunnels else 0),
                "oversize_copies": self.driver.oversize()}

    def _quick_loop(self) -> None:
        while not self._stop.is_set():
            self._poke.clear()
            self._pass(full=False)
            self._poke.wait(self.period)

    def _full_loop(self) -> None:
        """Every full_period, and at once on a link event (an interface came or went)."""
        while not self._stop.is_set():
            self._audit.wait(self.full_period)
            self._audit.clear()
            if not self._stop.is_set():
                self._pass(full=True)

    def _pass(self, full: bool) -> None:
        try:
            self.run_once(full)
            self.passes["full" if full else "quick"] += 1
        except Exception:  # a bad pass (the database away, say) must not end reconciling; the next one retries
            self.errors += 1
            log.exception("datapath reconciliation failed")

    def run_once(self, full: bool = False) -> None:
        """A quick pass trusts what it installed before and only acts on what changed in the database (new,
        changed or deleted flows: create to ACTIVE in milliseconds, whatever the number of flows). A full pass
        also reads our rules and tunnels back from the kernel, to find drift and, after a restart, what is
        already there; the first pass is always full, and it also replaces the unmarked rules a previous version
        (before marks) left for the flows that want them."""
        first = not self._ready.is_set()
        full = full or first
        kernel = self._read_kernel() if full else None  # outside the lock: other passes do not wait for it
        tunnels_now = self.tunnels.read() if full and self.tunnels else None
        with self._lock, self.sessions() as s, s.begin():
            ports = {p.id: p for p in s.execute(sa.select(TABLES["ports"]))}
            services = {t.id: t for t in s.execute(sa.select(TABLES["tap_services"]))}
            flows = s.execute(sa.select(TABLES["tap_flows"]).order_by(TABLES["tap_flows"].c.id)).all()
            place = Placement(self.host or "", self.host is None, self.tunnel_ip, down_time=self.down_time)
            if self.host is not None:
                place.hosts = agents.hosts(s)
            installed: dict[tuple[str, int], Hashable] | None = None
            unmarked: dict[tuple[str, int], Hashable] = {}
            touched: set[int] = set()
            if kernel is not None:
                dumped_at, installed, unmarked = kernel
                unmarked = unmarked if first else {}  # later, unmarked rules are someone else's
                # a slot that an API pass changed since the dump is judged as a quick pass would
                installed = {k: v for k, v in installed.items() if self._touched.get(k[1], 0) < dumped_at}
                touched = {n for n, t in self._touched.items() if t >= dumped_at}
            present = self.driver.interfaces()  # the interfaces there are, in one read
            tunnels, refused = self._tunnels(flows, ports, services, place, present, tunnels_now)
            wanted: set[tuple[str, int]] = set()
            unverified: list[tuple[Any, Mirror, Role]] = []
            for flow in flows:
                source = ports.get(flow.source_port)
                service = services.get(flow.tap_service_id)
                target = ports.get(service.port_id) if service else None
                role = place.role(source, target) if source is not None and target is not None else None
                if flow.status == "PENDING_DELETE" or source is None or target is None:
                    self._forget(s, flow, source, place)
                    continue
                if role is None:
                    continue  # neither end is here: the hosts of its ends see to it
                if role.side == "service_side":  # the receiving tunnel is the service's, for all its flows
                    self._report(s, flow, role, refused.get(service.tap_id), place)
                    continue
                into, fits = target.binding_profile["interface"], None
                if role is not LOCAL:
                    if service.tap_id in refused or self.tunnels is None:  # no tunnel to mirror into
                        self._report(s, flow, role, refused.get(service.tap_id, "no tunnels here"), place)
                        continue
                    into, fits = self.tunnels.driver.name(service.tap_id), self.tunnels.fits.get(service.tap_id)
                mirror = Mirror(flow.slot, source.binding_profile["interface"], into, flow.direction,
                                bool(source.binding_profile.get("host_side", False)), flow.vlan_filter, fits)
                wanted.add((mirror.source, mirror.slot))
                problem = self._problem(mirror, present, role)
                if problem:
                    self.applied.pop(mirror.slot, None)  # its rules went (or never came): no drift when back
                    self._report(s, flow, role, problem, place)
                else:
                    seen = None if installed is None or mirror.slot in touched else installed
                    self._converge(s, flow, mirror, role, place, seen, unverified,
                                   (mirror.source, mirror.slot) in unmarked)
            stale = {(m.source, n) for n, m in self.applied.items()} - wanted
            for (ifname, slot) in stale:
                self._remove(ifname, slot)
            for (ifname, slot) in (installed or {}).keys() - wanted - stale:
                self.drift += 1
                log.warning("drift: removing our rules for slot %d on %s, which no tap flow wants", slot, ifname)
                self._remove(ifname, slot)
            if self.tunnels is not None:  # after the mirrors into them
                self.tunnels.remove_unwanted(tunnels, tunnels_now)
            self._verify(s, unverified, place)
            for service in services.values():
                port = ports.get(service.port_id)
                if port is not None and not place.here(port):
                    continue  # only its port's host can tell
                up = port is not None and self.driver.is_up(port.binding_profile["interface"])
                flowstatus.set_status(s, service, "ACTIVE" if up else "DOWN", table="tap_services")
        if full:
            self._ready.set()

    def _tunnels(self, flows: list[Any], ports: dict[str, Any], services: dict[str, Any], place: Placement,
                 present: set[str], actual: tuple[float, dict[int, Tunnel]] | None,
                 ) -> tuple[dict[int, Tunnel], dict[int, str]]:
        """The tunnels this host's flows need, made: a sending one per tap service elsewhere that a port here
        feeds, a receiving one per tap service here fed from elsewhere. Returns (the tunnels wanted, VNI -> why
        its tunnel cannot be made). A tunnel made again loses its mirrors: they are installed again below."""
        wanted: dict[int, Tunnel] = {}
        refused: dict[int, str] = {}
        if place.single:
            return wanted, refused
        for flow in flows:
            source, service = ports.get(flow.source_port), services.get(flow.tap_service_id)
            target = ports.get(service.port_id) if service else None
            if flow.status == "PENDING_DELETE" or source is None or target is None:
                continue
            role = place.role(source, target)
            if role is None or role is LOCAL:
                continue
            vni = service.tap_id
            if role.side == "source_side":
                tunnel = place.sending(vni, place.host_of(target))
            elif (deliver := target.binding_profile["interface"]) not in present:
                tunnel = f"the tap service port's interface {deliver} does not exist"
            else:
                tunnel = place.receiving(vni, deliver)
            if isinstance(tunnel, str):
                refused[vni] = tunnel
            elif self.tunnels is None:
                refused[vni] = "this host cannot make tunnels"
            else:
                wanted[vni] = tunnel
        if self.tunnels is not None:
            failed, remade = self.tunnels.ensure(wanted, actual)
            refused.update(failed)
            for slot in [n for n, m in self.applied.items() if m.target in remade]:
                del self.applied[slot]  # its mirror copied into the old interface: installed again
        return wanted, refused

    def _report(self, s: Session, flow: Any, role: Role, problem: str | None, place: Placement) -> None:
        flowstatus.report(s, flow, role, problem, place.me, place.hosts, self.down_time)

    def _read_kernel(self) -> tuple[float, dict[tuple[str, int], Hashable], dict[tuple[str, int], Hashable]]:
        """Our rules, and the unmarked ones in our range, on every interface of the host: ours may be on one
        that no port names any more (the database was lost, a port deleted while we were down). With the time
        the dump began."""
        dumped_at = time.monotonic()
        installed: dict[tuple[str, int], Hashable] = {}
        unmarked: dict[tuple[str, int], Hashable] = {}
        for ifname in self.driver.interfaces():
            ours, other = self.driver.survey(ifname)
            installed.update(ours)
            unmarked.update(other)
        return dumped_at, installed, unmarked

    def _converge(self, s: Session, flow: Any, mirror: Mirror, role: Role, place: Placement,
                  installed: dict[tuple[str, int], Hashable] | None, unverified: list[tuple[Any, Mirror, Role]],
                  legacy: bool = False) -> None:
        """Install a flow's rules when needed (replacing a previous version's unmarked ones when legacy), and
        queue them for verification."""
        before = self.applied.get(mirror.slot)
        try:
            if installed is None:  # quick: what we installed is there unless a full pass says otherwise
                if before == mirror:
                    if role is not LOCAL:  # the other end (alive or not) may have changed: judge again
                        self._report(s, flow, role, None, place)
                    elif flow.status != "ACTIVE":
                        unverified.append((flow, mirror, role))
                    return
            else:
                have = installed.get((mirror.source, mirror.slot))
                if have == self.driver.expected(mirror):
                    self.applied[mirror.slot] = mirror  # also after a restart: the kernel already does it
                    self._report(s, flow, role, None, place)
                    return
                if before == mirror:
                    self.drift += 1
                    log.warning("drift: the rules of tap flow %s (slot %d) on %s are %s; re-installing", flow.id,
                                mirror.slot, mirror.source, "changed" if have is not None else "gone")
            if before is not None and before.source != mirror.source:
                self.driver.remove(before.source, mirror.slot)  # the port now names another interface
            self._touched[mirror.slot] = time.monotonic()
            if legacy and installed is not None and installed.get((mirror.source, mirror.slot)) is None:
                replaced, left = self.driver.claim(mirror)
                if replaced:
                    log.info("tap flow %s: replaced the %d unmarked rule(s) an earlier version left at slot %d "
                             "on %s", flow.id, replaced, mirror.slot, mirror.source)
                if left:
                    log.warning("tap flow %s: %d unmarked rule(s) at slot %d on %s copy elsewhere and are left "
                                "alone (not ours to judge); remove them by hand if they are stale", flow.id, left,
                                mirror.slot, mirror.source)
            else:
                self.driver.install(mirror)
        except Exception as e:  # the kernel refused: say so on the flow, retry next pass
            self.applied.pop(mirror.slot, None)
            self._report(s, flow, role, f"the kernel refused the mirror: {e}", place)
            return
        self.applied[mirror.slot] = mirror
        unverified.append((flow, mirror, role))

    def _remove(self, ifname: str, slot: int) -> None:
        self._touched[slot] = time.monotonic()
        self.driver.remove(ifname, slot)
        self.applied.pop(slot, None)

    def _verify(self, s: Session, unverified: list[tuple[Any, Mirror, Role]], place: Placement) -> None:
        """ACTIVE only once the kernel shows the rules exactly as wanted (a dump of that mirror's priority)."""
        for flow, mirror, role in unverified:
            try:
                ok = self.driver.installed(mirror.source, mirror.slot).get((mirror.source, mirror.slot)) == \
                    self.driver.expected(mirror)
            except Exception as e:  # an interface vanished mid-pass: the next pass says what is wrong
                log.info("tap flow %s: cannot verify its rules yet: %s", flow.id, e)
                continue
            if not ok:
                self.applied.pop(mirror.slot, None)
            self._report(s, flow, role, None if ok else f"the rules on {mirror.source} are not as installed", place)

    @staticmethod
    def _problem(mirror: Mirror, present: set[str], role: Role) -> str | None:
        if mirror.source == mirror.target:  # the kernel would loop copies back into the port they came from
            return f"a port cannot be mirrored to itself ({mirror.source})"
        ends = (("source", mirror.source), ("tap service", mirror.target)) if role is LOCAL else (
            ("source", mirror.source),)  # the tunnel's own problems are the tunnel's
        for what, ifname in ends:
            if ifname not in present:
                return f"the {what} port's interface {ifname} does not exist"
        return None

    def _forget(self, s: Session, flow: Any, source: Any, place: Placement) -> None:
        """A flow being deleted (or left without a port or service): its mirror goes, by the source's host, which
        then deletes its row. When the source's host cannot (its agent dead, or no agent at all), another host
        deletes the row: the mirror left on that host is ours and wanted by no flow, so that host's first full
        pass removes it when it comes back."""
        if source is not None and not place.here(source):
            if flow.status == "PENDING_DELETE" and not place.alive(place.host_of(source)):
                s.execute(sa.delete(TABLES["tap_flows"]).where(TABLES["tap_flows"].c.id == flow.id))
            return
        if source is not None:
            self._remove(source.binding_profile["interface"], flow.slot)
        else:
            self.applied.pop(flow.slot, None)
        if flow.status == "PENDING_DELETE":
            s.execute(sa.delete(TABLES["tap_flows"]).where(TABLES["tap_flows"].c.id == flow.id))
