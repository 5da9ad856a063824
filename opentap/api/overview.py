"""What the device looks like right now, for the caller: GET /observation-points (the points it may use, with
their interfaces' receive and transmit rates from the kernel counters) and GET /usage (its project's captured
data against the quota, and the device's limits). Used by the web interface's overview (api/ui.py)."""

from __future__ import annotations

import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from opentap import hostif
from opentap.auth import Principal
from opentap.config import ObservationPoint
from opentap.db.models import Capture

from .captures import points
from .deps import DeviceState, device, principal
from .fastjson import json_response

router = APIRouter(tags=["overview"])
COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")
MIN_GAP = 0.5  # seconds between two samples of one interface: callers polling faster share a sample
HISTORY = 120  # samples kept per interface (a sparkline's worth)
FORGET = 600.0  # an interface nobody asked about for this long is forgotten


@dataclass
class Rates:
    """Samples of one interface's counters, taken when someone asks (no thread samples on its own: a device
    nobody looks at pays nothing), and the rates between consecutive ones."""

    last: tuple[float, float, dict[str, int]] | None = None  # (monotonic, UNIX time, counters)
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))  # (UNIX time, rx B/s, tx B/s, rx p/s, tx p/s)

    def sample(self, interface: str) -> dict[str, int] | None:
        now, wall = time.monotonic(), time.time()
        if self.last and now - self.last[0] < MIN_GAP:
            return self.last[2]
        base = hostif.SYS_NET / interface / "statistics"
        try:
            counters = {k: int((base / k).read_text()) for k in COUNTERS}
        except (OSError, ValueError):
            self.last = None
            return None
        if self.last:
            gap = now - self.last[0]
            if gap > 0 and all(counters[k] >= self.last[2][k] for k in COUNTERS):  # a reset interface starts over
                self.history.append((round(wall, 3), *(round((counters[k] - self.last[2][k]) / gap, 1)
                                                      for k in COUNTERS)))
        self.last = (now, wall, counters)
        return counters


class RateBook:
    def __init__(self) -> None:
        self.by_interface: dict[str, Rates] = {}
        self.asked: dict[str, float] = {}
        self.lock = threading.Lock()

    def read(self, interface: str) -> tuple[dict[str, int] | None, list[tuple[float, ...]]]:
        with self.lock:
            now = time.monotonic()
            for name in [n for n, t in self.asked.items() if now - t > FORGET]:
                self.by_interface.pop(name, None)
                self.asked.pop(name, None)
            self.asked[interface] = now
            rates = self.by_interface.setdefault(interface, Rates())
            return rates.sample(interface), list(rates.history)


def _book(request: Request) -> RateBook:
    book = getattr(request.app.state, "rate_book", None)
    if book is None:
        book = request.app.state.rate_book = RateBook()
    return book


def _usable(dev: DeviceState, who: Principal) -> list[ObservationPoint]:
    merged = points(dev, who)  # as /capabilities lists them: each point once, a config name first
    return [p for p in dict.fromkeys(merged.values()) if merged.get(p.name) is p and p.usable_by(who.project,
                                                                                                 who.is_admin)]


def _point(p: ObservationPoint, book: RateBook, admin: bool) -> dict[str, Any]:
    counters, history = book.read(p.interface)
    last = history[-1] if history else None
    rate = dict(zip(("rx_bps", "tx_bps", "rx_pps", "tx_pps"), last[1:] if last else (None,) * 4, strict=True))
    return {"name": p.name, "kind": "network", **({"interface": p.interface} if admin else {}),
            "state": hostif.operstate(p.interface), "time": round(time.time(), 3),
            **(counters or dict.fromkeys(COUNTERS)), **rate,
            "history": [list(h) for h in history]}


@router.get("/observation-points", summary="The observation points the caller may use, with live rates")
async def observation_points(request: Request, dev: DeviceState = Depends(device),
                             who: Principal = Depends(principal)) -> Any:
    book = _book(request)

    def work() -> list[dict[str, Any]]:
        return [_point(p, book, who.is_admin) for p in _usable(dev, who)]

    return json_response({"points": await run_in_threadpool(work)})


def _usage(dev: DeviceState, who: Principal) -> dict[str, Any]:
    cfg, limits = dev.cfg, dev.cfg.limits(who.project)

    def count(s: Any) -> tuple[int, int, int, int]:
        running = sa.select(sa.func.count()).select_from(Capture).where(Capture.state == "running")
        mine = s.scalar(running.where(Capture.project_id == who.project)) or 0
        return dev.engine.usage(s, who.project), mine, dev.engine.usage(s), s.scalar(running) or 0

    used, running, device_used, device_running = dev.engine.call(count)
    body: dict[str, Any] = {
        "project": {"name": who.project, "used_bytes": used, "quota_bytes": limits.disk_quota_bytes,
                    "running": running, "max_concurrent_captures": limits.max_concurrent_captures},
        "device": {"quota_bytes": cfg.disk_quota_bytes, "max_concurrent_captures": cfg.max_concurrent_captures,
                   "capture_length_limit": cfg.capture_length_limit, "retention_minutes": cfg.retention_minutes},
    }
    if who.is_admin:  # another project's use is none of a member's business (capture/limits.py)
        disk = shutil.disk_usage(cfg.data_dir)
        body["device"] |= {"used_bytes": device_used, "running": device_running,
                           "filesystem_bytes": disk.total, "filesystem_free_bytes": disk.free}
    return body


@router.get("/usage", summary="Captured data against the disk quota, running captures against the limits")
async def usage(dev: DeviceState = Depends(device), who: Principal = Depends(principal)) -> Any:
    return json_response(await run_in_threadpool(_usage, dev, who))
