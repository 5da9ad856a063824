"""The packet rings, admins only: GET /rings (every network point's ring), PUT /rings/{point} {"ring_mb": N} (turn
one on, resize it, or 0: off, keeping what it recorded) and DELETE /rings/{point} (off, and its blocks deleted).

A ring holds every packet of its point, whoever they concern: it is admin data. Members reach it only through
captures (a window in the past), on points they may use, and those captures are copies their project owns;
/capabilities tells them how far back each point's ring reaches (ring_since)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from opentap.auth import Principal
from opentap.configrings import MAX_RING_MB, MIN_RING_MB

from .deps import DeviceState, device, principal
from .errors import ApiError

router = APIRouter(tags=["rings"])
RING_SCHEMA = {"type": "object", "required": ["point", "ring_mb", "recording", "ring_since", "bytes", "blocks"],
               "properties": {"point": {"type": "string"}, "interface": {"type": "string"},
                              "ring_mb": {"type": "number"}, "recording": {"type": "boolean"},
                              "ring_since": {"anyOf": [{"type": "number"}, {"type": "null"}]},
                              "bytes": {"type": "integer"}, "blocks": {"type": "integer"},
                              "error": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                              "dropped_kernel": {"type": "integer",
                                                 "description": "packets the kernel dropped (this recorder run)"}}}
RING_REQUEST = {"type": "object", "required": ["ring_mb"], "additionalProperties": False, "properties": {
    "ring_mb": {"type": "number", "description": f"0 (off) or {MIN_RING_MB} to {MAX_RING_MB} MiB",
                "anyOf": [{"const": 0}, {"minimum": MIN_RING_MB, "maximum": MAX_RING_MB}]}}}


class RingBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # JSON true is not a size, nor "64"
    ring_mb: float


def _admin(who: Principal) -> None:
    if not who.is_admin:
        raise ApiError(403, "rings are admin data: only an admin may see or change them (members ask for a window "
                            "in the past with a capture)")


def _point(dev: DeviceState, point: str) -> str:
    if point not in dev.cfg.observation_points:
        raise ApiError(404, f"no network observation point '{point[:64]}' in the config (rings are on those only)")
    return point


def _status(dev: DeviceState, name: str) -> dict[str, Any]:
    return {"point": name, "interface": dev.cfg.observation_points[name].interface} | dev.engine.rings.status(name)


@router.get("/rings", summary="Every network point's ring (admin)")
def list_rings(dev: DeviceState = Depends(device), who: Principal = Depends(principal)) -> dict[str, Any]:
    _admin(who)
    return {"rings": [_status(dev, name) for name in dev.cfg.observation_points]}


@router.put("/rings/{point}", summary="Turn a point's ring on, resize it, or off with ring_mb 0 (admin)")
async def set_ring(point: str, body: RingBody, dev: DeviceState = Depends(device),
                   who: Principal = Depends(principal)) -> dict[str, Any]:
    _admin(who)
    name = _point(dev, point)
    mb = body.ring_mb
    if mb != mb or (mb != 0 and not MIN_RING_MB <= mb <= MAX_RING_MB):
        raise ApiError(400, f"'ring_mb' must be 0 (off) or between {MIN_RING_MB} and {MAX_RING_MB} MiB (got {mb})")
    await run_in_threadpool(dev.engine.rings.set, name, mb)
    return {"ring": await run_in_threadpool(_status, dev, name)}


@router.delete("/rings/{point}", status_code=204, summary="Turn a point's ring off and delete its blocks (admin)")
async def delete_ring(point: str, dev: DeviceState = Depends(device), who: Principal = Depends(principal)) -> Response:
    _admin(who)
    await run_in_threadpool(dev.engine.rings.purge, _point(dev, point))
    return Response(status_code=204)
