"""Keeps the kernel's mirrors equal to the tap flows in the database, and the statuses truthful.

One pass: every tap flow whose two interfaces exist gets its rules (installed only when missing or changed,
so mirrors are never interrupted, not even by a daemon restart), and turns ACTIVE once a dump shows them; one
whose interface is missing turns ERROR with the reason in `status_reason`; flows being deleted
(PENDING_DELETE) lose their rules and then their row; our rules that no flow wants are removed. Rules found
changed, gone or unwanted are drift: logged, counted, and repaired. Tap services are ACTIVE while their port's
interface exists and is up. Passes run periodically, on link events, and whenever the API changes something."""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from opentap.taas.store import TABLES, interface_state

from .base import Mirror, MirrorDriver
from .linkwatch import LinkWatcher

log = logging.getLogger("opentap.datapath")
SYS_NET = Path("/sys/class/net")


def has_net_admin() -> bool:
    """Whether this process may change tc rules (CAP_NET_ADMIN, bit 12 of its effective capabilities)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 12 & 1)
    except OSError:
        pass
    return False


class Reconciler:
    def __init__(self, sessions: sessionmaker, driver: MirrorDriver, period: float = 1.0) -> None:
        self.sessions, self.driver, self.period = sessions, driver, period
        self.applied: dict[int, Mirror] = {}  # slot -> what we last installed (or found installed)
        self.drift = 0  # times the kernel was found not as we left it (rules changed, gone, or unwanted)
        self._poke, self._stop = threading.Event(), threading.Event()
        self._lock = threading.Lock()  # one pass at a time: the thread's, or the API's on a delete
        self._thread: threading.Thread | None = None
        self._links = LinkWatcher(self.poke)

    def start(self) -> None:
        self._links.start()
        self._thread = threading.Thread(target=self._run, name="datapath", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._links.stop()
        self._stop.set()
        self._poke.set()
        if self._thread:
            self._thread.join()

    def poke(self) -> None:
        self._poke.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poke.clear()
            try:
                self.run_once()
            except Exception:  # a bad pass must not end reconciling; the next one retries
                log.exception("datapath reconciliation failed")
            self._poke.wait(self.period)

    def run_once(self) -> None:
        with self._lock, self.sessions() as s, s.begin():
            ports = {p.id: p for p in s.execute(sa.select(TABLES["ports"]))}
            services = {t.id: t for t in s.execute(sa.select(TABLES["tap_services"]))}
            # only the interfaces our ports name (or our rules are on): another device's rules elsewhere on this
            # host are not ours to judge, and a host with many interfaces is not dumped whole every second
            scope = {p.binding_profile["interface"] for p in ports.values()} | {m.source for m in self.applied.values()}
            installed: dict[tuple[str, int], Hashable] = {}
            for ifname in scope:
                installed.update(self.driver.installed(ifname))
            wanted: set[tuple[str, int]] = set()
            unverified: list[tuple[Any, Mirror, Hashable]] = []
            for flow in s.execute(sa.select(TABLES["tap_flows"])).all():
                source = ports.get(flow.source_port)
                service = services.get(flow.tap_service_id)
                target = ports.get(service.port_id) if service else None
                if flow.status == "PENDING_DELETE" or source is None or target is None:
                    self._forget(s, flow, source)
                    continue
                mirror = Mirror(flow.slot, source.binding_profile["interface"], target.binding_profile["interface"],
                                flow.direction, bool(source.binding_profile.get("host_side", False)),
                                flow.vlan_filter)
                wanted.add((mirror.source, mirror.slot))
                if problem := self._problem(mirror):
                    self.applied.pop(mirror.slot, None)  # its rules went (or never came): no drift when back
                    self._set_status(s, flow, "ERROR", problem)
                    continue
                want = self.driver.expected(mirror)
                if installed.get((mirror.source, mirror.slot)) == want:
                    self.applied[mirror.slot] = mirror  # also after a restart: the kernel already does it
                    self._set_status(s, flow, "ACTIVE")
                    continue
                if mirror.slot in self.applied:
                    self.drift += 1
                    log.warning("drift: the rules of tap flow %s (slot %d) on %s are %s; re-installing", flow.id,
                                mirror.slot, mirror.source,
                                "changed" if (mirror.source, mirror.slot) in installed else "gone")
                try:
                    self.driver.install(mirror)
                except Exception as e:  # the kernel refused: say so on the flow, retry next pass
                    self.applied.pop(mirror.slot, None)
                    self._set_status(s, flow, "ERROR", f"the kernel refused the mirror: {e}"[:255])
                    continue
                self.applied[mirror.slot] = mirror
                unverified.append((flow, mirror, want))
            for (ifname, slot) in installed.keys() - wanted:
                self.drift += 1
                log.warning("drift: removing our rules for slot %d on %s, which no tap flow wants", slot, ifname)
                self.driver.remove(ifname, slot)
                self.applied.pop(slot, None)
            self._verify(s, unverified)
            for service in services.values():
                port = ports.get(service.port_id)
                up = port is not None and interface_state(port.binding_profile["interface"])[1] == "ACTIVE"
                self._set_status(s, service, "ACTIVE" if up else "DOWN", table="tap_services")

    def _verify(self, s: Session, unverified: list[tuple[Any, Mirror, Hashable]]) -> None:
        """ACTIVE only once the kernel shows the rules exactly as installed (one dump per interface touched)."""
        after: dict[tuple[str, int], Hashable] = {}
        for ifname in {mirror.source for _flow, mirror, _want in unverified}:
            after.update(self.driver.installed(ifname))
        for flow, mirror, want in unverified:
            if after.get((mirror.source, mirror.slot)) == want:
                self._set_status(s, flow, "ACTIVE")
            else:
                self._set_status(s, flow, "ERROR", f"the rules on {mirror.source} are not as installed")

    @staticmethod
    def _problem(mirror: Mirror) -> str | None:
        if mirror.source == mirror.target:  # the kernel would loop copies back into the port they came from
            return f"a port cannot be mirrored to itself ({mirror.source})"
        for role, ifname in (("source", mirror.source), ("tap service", mirror.target)):
            if not (SYS_NET / ifname).exists():
                return f"the {role} port's interface {ifname} does not exist"
        return None

    def _forget(self, s: Session, flow: Any, source: Any) -> None:
        if source is not None:
            self.driver.remove(source.binding_profile["interface"], flow.slot)
        self.applied.pop(flow.slot, None)
        if flow.status == "PENDING_DELETE":
            s.execute(sa.delete(TABLES["tap_flows"]).where(TABLES["tap_flows"].c.id == flow.id))

    @staticmethod
    def _set_status(s: Session, row: Any, status: str, reason: str | None = None, table: str = "tap_flows") -> None:
        """Write a status (and for tap flows its reason) when it changed; an ERROR is logged once, as it starts."""
        t = TABLES[table]
        values: dict[str, Any] = {"status": status}
        if table == "tap_flows":
            values["status_reason"] = reason
        if any(getattr(row, k) != v for k, v in values.items()):
            if status == "ERROR":
                log.warning("tap flow %s: %s", row.id, reason)
            s.execute(sa.update(t).where(t.c.id == row.id).values(**values))
