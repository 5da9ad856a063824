"""Keeps the kernel's mirrors equal to the tap flows in the database, and the statuses truthful.

One pass: every tap flow whose two interfaces exist gets its rules (installed only when missing or changed,
so mirrors are never interrupted, not even by a daemon restart), and turns ACTIVE; one whose interface is
missing turns ERROR; flows being deleted (PENDING_DELETE) lose their rules and then their row; our rules that
no flow wants are removed. Tap services are ACTIVE while their port's interface exists and is up. Passes run
periodically and whenever the API changes something (poke)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from opentap.taas.store import TABLES, interface_state

from .base import Mirror, MirrorDriver
from .tc import hooks_for

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
        self._poke, self._stop = threading.Event(), threading.Event()
        self._lock = threading.Lock()  # one pass at a time: the thread's, or the API's on a delete
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="datapath", daemon=True)
        self._thread.start()

    def stop(self) -> None:
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
            installed = self.driver.installed()
            wanted: set[tuple[str, int]] = set()
            for flow in s.execute(sa.select(TABLES["tap_flows"])).all():
                source = ports.get(flow.source_port)
                service = services.get(flow.tap_service_id)
                target = ports.get(service.port_id) if service else None
                if flow.status == "PENDING_DELETE" or source is None or target is None:
                    self._forget(s, flow, source)
                    continue
                mirror = Mirror(flow.slot, source.binding_profile["interface"], target.binding_profile["interface"],
                                flow.direction, bool(source.binding_profile.get("host_side", False)))
                wanted.add((mirror.source, mirror.slot))
                self._set_status(s, "tap_flows", flow, self._apply(mirror, installed))
            for (ifname, slot) in installed:
                if (ifname, slot) not in wanted:
                    self.driver.remove(ifname, slot)
                    self.applied.pop(slot, None)
            for service in services.values():
                port = ports.get(service.port_id)
                up = port is not None and interface_state(port.binding_profile["interface"])[1] == "ACTIVE"
                self._set_status(s, "tap_services", service, "ACTIVE" if up else "DOWN")

    def _apply(self, mirror: Mirror, installed: dict[tuple[str, int], set[str]]) -> str:
        if mirror.source == mirror.target:  # the kernel would loop copies back into the port they came from
            log.warning("tap flow slot %d: a port cannot be mirrored to itself (%s)", mirror.slot, mirror.source)
            return "ERROR"
        if not (SYS_NET / mirror.source).exists() or not (SYS_NET / mirror.target).exists():
            log.warning("tap flow slot %d: interface %s or %s is missing", mirror.slot, mirror.source, mirror.target)
            return "ERROR"
        have = installed.get((mirror.source, mirror.slot))
        want = hooks_for(mirror.direction, mirror.host_side)
        if have == want and self.applied.get(mirror.slot, mirror) == mirror:
            self.applied[mirror.slot] = mirror  # after a restart: what is in the kernel is what we want
            return "ACTIVE"
        try:
            self.driver.install(mirror)
        except Exception as e:  # the kernel refused: say so on the flow, retry next pass
            log.warning("tap flow slot %d: cannot install %s: %s", mirror.slot, mirror, e)
            return "ERROR"
        self.applied[mirror.slot] = mirror
        verified = self.driver.installed(mirror.source).get((mirror.source, mirror.slot))  # one interface's dump
        return "ACTIVE" if verified == want else "ERROR"

    def _forget(self, s: Session, flow: Any, source: Any) -> None:
        if source is not None:
            self.driver.remove(source.binding_profile["interface"], flow.slot)
        self.applied.pop(flow.slot, None)
        if flow.status == "PENDING_DELETE":
            s.execute(sa.delete(TABLES["tap_flows"]).where(TABLES["tap_flows"].c.id == flow.id))

    @staticmethod
    def _set_status(s: Session, table: str, row: Any, status: str) -> None:
        if row.status != status:
            t = TABLES[table]
            s.execute(sa.update(t).where(t.c.id == row.id).values(status=status))
