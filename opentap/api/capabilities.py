"""GET / and GET /capabilities: what this device can capture, where, and its limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from opentap import __version__
from opentap.auth import Principal
from opentap.capture.registry import REGISTRY
from opentap.config import ObservationPoint
from opentap.configsensors import SensorPoint
from opentap.sensors import hub as sensor_hub
from opentap.taas.store import observation_points

from .deps import DeviceState, device, principal
from .fastjson import json_response
from .neutron import neutron_version

router = APIRouter(tags=["capabilities"])


def _tap_points(dev: DeviceState, who: Principal, key: tuple) -> dict[str, ObservationPoint]:
    generation = dev.reads.generation()
    with dev.sessions() as s:
        points = observation_points(s, who)
    dev.reads.put(key, generation, points)
    return points


def sensor_point(point: SensorPoint, admin: bool) -> dict[str, Any]:
    """A sensor point as /capabilities lists it: its columns (kind, unit, whether simulated), whether it can
    capture now and why not; for admins also what each column is read from (as a network point's interface)."""
    why = next((f"{s.label}: {w}" for s in point.sensors if (w := sensor_hub.availability(s))), None)
    cols = []
    for column, s in zip(point.columns, point.sensors, strict=True):
        col: dict[str, Any] = {"name": column, "kind": s.kind, "unit": s.unit, "simulated": s.simulated}
        if admin:
            col |= {"sensor": s.name, "driver": s.driver,
                    **{k: v for k, v in (("serial", s.serial), ("port", s.port), ("part", s.part), ("path", s.path))
                       if v is not None}}
        cols.append(col)
    return {"name": point.name, "columns": cols, "simulated": point.simulated, "available": why is None,
            **({"why": why} if why else {})}


@router.get("/", summary="Capabilities (same as /capabilities)")
@router.get("/capabilities", summary="Capture types, observation points, limits")
async def capabilities(request: Request, dev: DeviceState = Depends(device),
                       who: Principal = Depends(principal)) -> dict[str, Any]:
    # async, and the caller's tap services as read since the last commit (api/commitcache.py): the usual call
    # touches neither the database nor the thread pool
    cfg, key = dev.cfg, ("points", who.project, who.is_admin)
    tap_points = dev.reads.get(key)
    if tap_points is None:
        tap_points = await run_in_threadpool(_tap_points, dev, who, key)
    # merged as captures.points() does: a config name wins a clash
    merged = tap_points | cfg.observation_points
    # each point once (a tap service is found by id and by name, and listed once)
    points = [p for p in dict.fromkeys(merged.values()) if merged.get(p.name) is p
              and p.usable_by(who.project, who.is_admin)]
    network = [{"name": p.name, **({"interface": p.interface} if who.is_admin else {})} for p in points]
    default = cfg.default_observation_point if any(p.name == cfg.default_observation_point for p in points) else None
    sensor_points = [p for p in cfg.sensor_points.values() if p.usable_by(who.project, who.is_admin)]
    return json_response({
        "device": cfg.device_name,
        "version": __version__,
        "capture_types": list(REGISTRY),
        "types": {t.name: {"description": t.description, "observation_point_kind": t.point_kind,
                           "formats": list(t.formats),
                           "default_format": cfg.ethernet_default_format if t.name == "ethernet" else t.default_format,
                           "options": sorted(t.options)} for t in REGISTRY.values()},
        "observation_points": {"network": network,
                               "sensor": [sensor_point(p, who.is_admin) for p in sensor_points]},
        "network_observation_pts": [p.name for p in points],  # the original's key
        "sensor_observation_pts": [p.name for p in sensor_points],  # the original's key
        "default_observation_point": default,
        "capture_length_limit": cfg.capture_length_limit,
        "retention": f"{cfg.retention_minutes:g}",  # the original's key: minutes, as text (as it gave them)
        "retention_minutes": cfg.retention_minutes,
        "max_concurrent_captures": cfg.max_concurrent_captures,
        "disk_quota_mb": cfg.disk_quota_mb,
        "project": who.project,
        "roles": list(who.roles),
        # what Neutron serves at its root: OpenStack clients discover the network API's version here
        "versions": [neutron_version(str(request.base_url))],
    })
