"""Scheduling and managing captures: GET /capture/{type} (the original's call) and /captures (REST)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from opentap.auth import Principal
from opentap.capture import plan
from opentap.config import ObservationPoint
from opentap.db.models import ACTIVE_STATES, Capture, find
from opentap.taas.store import observation_points

from .deps import DeviceState, device, principal
from .errors import ApiError
from .fastjson import dumps, encoded_response, json_response
from .queryparams import unix_time, whole

router = APIRouter(tags=["captures"])


def _num(t: float) -> int | float:
    return int(t) if t == int(t) else round(t, 6)


def describe(cap: Capture | SimpleNamespace, who: Principal) -> dict[str, Any]:
    d = {
        "id": cap.id, "type": cap.type, "project_id": cap.project_id, "observationpt": cap.observation_point,
        "device_filter": cap.options.get("device_filter"),
        "state": cap.state, "startTime": _num(cap.start), "stopTime": _num(cap.stop),
        "duration": _num(cap.stop - cap.start),
        # device_filter is shown on its own above; a sensor capture's sensors are the config's, as an interface is
        "options": {k: v for k, v in cap.options.items() if k not in ("device_filter", "sensors")},
        "created_at": cap.created_at,
        "started_at": cap.started_at, "finished_at": cap.finished_at, "packets": cap.packets,
        "bytes": cap.bytes, "drops_kernel": cap.drops_kernel, "drops_interface": cap.drops_interface,
        "data_bytes": cap.data_bytes, "reason": cap.reason, "stats": cap.stats,
    }
    if who.is_admin:
        d["interface"] = cap.interface
    return d


def visible(dev: DeviceState, who: Principal, capture_id: str, project: str | None = None) -> Capture:
    """The capture if the caller may see it; another project's capture is reported as missing. Ids are unique
    per project: a member names its own project's, an admin any project's (`project`, needed when several
    projects use the id)."""
    missing = ApiError(404, f"no capture with id '{capture_id[:128]}'")
    if project is not None and not who.owns(project):
        raise missing
    with dev.sessions() as s:
        if project is not None or not who.is_admin:
            cap = find(s, project or who.project, capture_id)
        else:
            rows = s.scalars(select(Capture).where(Capture.id == capture_id)).all()
            if len(rows) > 1:
                owners = ", ".join(sorted(c.project_id for c in rows))
                raise ApiError(409, f"the id '{capture_id}' is used by captures of several projects ({owners}); "
                                    "say which with project=")
            cap = rows[0] if rows else None
    if cap is None:
        raise missing
    return cap


def points(dev: DeviceState, who: Principal) -> dict[str, ObservationPoint]:
    """The config's observation points, then the caller's tap services (a config name wins a clash)."""
    with dev.sessions() as s:
        return observation_points(s, who) | dev.cfg.observation_points


def _schedule(dev: DeviceState, who: Principal, type_name: str, params: dict[str, Any],
              fresh_id_if_taken: bool = False) -> dict[str, Any]:
    checked = plan.check(dev.cfg, who, type_name, params, points=points(dev, who), rings=dev.engine.rings)
    checked.fresh_id_if_taken = fresh_id_if_taken
    cap = dev.engine.call(lambda s: dev.engine.create(s, checked, who.project))
    msg = checked.msg
    if checked.id is not None and cap.id != checked.id:
        msg = " ".join(m for m in (msg, f"The id '{checked.id}' was already taken: this capture's id is {cap.id}.")
                       if m)
    return {"status": "success", "msg": msg, **describe(cap, who)}


@router.get("/capture/{capture_type}", summary="Schedule a capture (the original OpenTap call)")
def capture(
    capture_type: str,
    start: str | None = Query(None, description="UNIX seconds; in the past means now"),
    stop: str | None = Query(None, description="UNIX seconds"),
    observationpt: str | None = Query(None, description="observation point name; 0 or absent = default"),
    observationPt: str | None = Query(None, description="the original client's spelling"),  # noqa: N803
    id: str | None = Query(None, description="proposed id, [A-Za-z0-9_.-]{1,128}"),
    filter: str | None = Query(None, description="BPF expression (ethernet)"),
    snaplen: str | None = Query(None, description="bytes kept per packet (ethernet)"),
    period: str | None = Query(None, description="sampling period in ms (linkstats, sensor)"),
    keep_packets: str | None = Query(None, description="netflow: keep the pcap after metering (default false)"),
    exclude_device_traffic: str | None = Query(None, description="ethernet, netflow: leave out the device's own "
                                               "API and SSH traffic (default true; only admins may say false)"),
    export: str | None = Query(None, description="netflow, admins only: also send the records to a collector "
                               "(ipfix://HOST:PORT, ipfix+tcp://HOST:PORT, netflow9://HOST:PORT)"),
    dev: DeviceState = Depends(device), who: Principal = Depends(principal),
) -> dict[str, Any]:
    params = {"start": start, "stop": stop, "observationpt": observationpt, "observationPt": observationPt,
              "id": id, "filter": filter, "snaplen": snaplen, "period": period, "keep_packets": keep_packets,
              "exclude_device_traffic": exclude_device_traffic, "export": export}
    return _schedule(dev, who, capture_type, params, fresh_id_if_taken=True)  # as the original device did


class CaptureBody(BaseModel):
    # strict: JSON true is not a start time of 1, nor "1" a snaplen; requests.check reads text times strictly
    model_config = ConfigDict(extra="forbid", strict=True)
    type: str
    start: float | str | None = None
    stop: float | str | None = None
    observationpt: str | None = None
    observationPt: str | None = None  # noqa: N815
    id: str | None = None
    filter: str | None = None
    snaplen: int | None = None
    period: int | None = None
    keep_packets: bool | None = None
    exclude_device_traffic: bool | None = None
    export: str | None = None


@router.post("/captures", status_code=201, summary="Schedule a capture (JSON body)")
def create_capture(body: CaptureBody, dev: DeviceState = Depends(device),
                   who: Principal = Depends(principal)) -> dict[str, Any]:
    return _schedule(dev, who, body.type, body.model_dump(exclude={"type"}))


PROJECT_QUERY = Query(None, description="the capture's project (admins; needed when several projects use the id)")


@dataclass(frozen=True)
class ListQuery:
    """GET /captures' selection. Without limit every capture is listed, oldest first, as the original did; with
    it one page (and `total`), so that a device with thousands of captures can be browsed."""

    state: str | None = None
    type: str | None = None
    project: str | None = None  # admins only
    observationpt: str | None = None
    since: float | None = None  # windows that end at or after this UNIX time
    until: float | None = None  # windows that start at or before it
    limit: int | None = None
    offset: int = 0
    newest_first: bool = False


def _list_query(state: str | None, type: str | None, project: str | None, observationpt: str | None,
                since: str | None, until: str | None, limit: str | None, offset: str | None,
                order: str | None) -> ListQuery:
    if order not in (None, "", "asc", "desc"):
        raise ApiError(400, f"order must be asc or desc, not '{order[:40]}'")
    limit_n = whole("limit", limit, 0, MAX_PAGE)
    if limit_n == 0:
        raise ApiError(400, f"limit must be from 1 to {MAX_PAGE}")
    return ListQuery(state or None, type or None, project or None, observationpt or None,
                     unix_time("since", since), unix_time("until", until),
                     limit_n, whole("offset", offset, 0, 10**12) or 0, order == "desc")


MAX_PAGE = 1000


def _capture_list(dev: DeviceState, who: Principal, q: ListQuery, key: tuple) -> bytes:
    generation = dev.reads.generation()
    where = []
    if not who.is_admin:
        where.append(Capture.project_id == who.project)
    elif q.project:
        where.append(Capture.project_id == q.project)
    if q.state:
        where.append(Capture.state == q.state)
    if q.type:
        where.append(Capture.type == q.type)
    if q.observationpt:
        where.append(Capture.observation_point == q.observationpt)
    if q.since is not None:
        where.append(Capture.stop >= q.since)
    if q.until is not None:
        where.append(Capture.start <= q.until)
    order = Capture.created_at.desc() if q.newest_first else Capture.created_at
    query = sa.select(Capture.__table__).where(*where).order_by(order)
    page: dict[str, Any] = {}
    with dev.sessions() as s:
        if q.limit is not None:
            query = query.limit(q.limit).offset(q.offset)
            page = {"total": s.scalar(sa.select(sa.func.count()).select_from(Capture).where(*where)) or 0,
                    "offset": q.offset, "limit": q.limit}
        rows = s.connection().execute(query).all()  # Core, not the ORM's result machinery: a third cheaper
    # a namespace per row for describe(): its attributes read ~20x faster than an ORM object's or a Row's
    body = dumps({"captures": [describe(SimpleNamespace(**r._mapping), who) for r in rows], **page})
    dev.reads.put(key, generation, body)
    return body


@router.get("/captures", summary="List captures")
async def list_captures(state: str | None = None, type: str | None = None,
                        project: str | None = Query(None, description="admins: only this project's captures"),
                        observationpt: str | None = None, since: str | None = None, until: str | None = None,
                        limit: str | None = None, offset: str | None = None, order: str | None = None,
                        dev: DeviceState = Depends(device), who: Principal = Depends(principal)) -> dict[str, Any]:
    q = _list_query(state, type, project if who.is_admin else None, observationpt, since, until, limit, offset, order)
    # the list as encoded since the last commit (api/commitcache.py: the engine commits at least every half
    # second); a miss reads it in the thread pool
    key = ("captures", who.project, who.is_admin, q)
    body = dev.reads.get(key)
    if body is None:
        body = await run_in_threadpool(_capture_list, dev, who, q, key)
    return encoded_response(body)


@router.get("/captures/{capture_id}", summary="One capture and its state")
def show_capture(capture_id: str, project: str | None = PROJECT_QUERY, dev: DeviceState = Depends(device),
                 who: Principal = Depends(principal)) -> dict[str, Any]:
    return json_response({"capture": describe(visible(dev, who, capture_id, project), who)})


@router.delete("/captures/{capture_id}", summary="Cancel a scheduled/running capture, or delete a finished one",
               responses={200: {"description": "cancelled; its data so far is kept"}, 204: {"description": "deleted"}})
def delete_capture(capture_id: str, project: str | None = PROJECT_QUERY, dev: DeviceState = Depends(device),
                   who: Principal = Depends(principal)) -> Any:
    if not who.can_write:
        raise ApiError(403, "your role may read captures but not cancel or delete them")
    owner = visible(dev, who, capture_id, project).project_id

    def act(s) -> Capture | None:
        cap = find(s, owner, capture_id)
        if cap is None:
            raise ApiError(404, f"no capture with id '{capture_id}'")
        if cap.state in ACTIVE_STATES:
            dev.engine.cancel(s, cap, who.project)
            return cap
        dev.engine.delete(s, cap)
        return None

    cap = dev.engine.call(act)
    if cap is None:
        return Response(status_code=204)
    return {"status": "success", "msg": "capture cancelled; its data so far is kept until deleted",
            "capture": describe(cap, who)}
