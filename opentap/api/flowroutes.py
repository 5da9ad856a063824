"""A netflow capture's records as a table and at a glance: GET /captures/{id}/flows (a sorted, filtered page,
served from an index of the capture's flow file: flowtable.py) and GET /captures/{id}/flows/summary (top
talkers, ports and protocols, and bytes over time). Both are for people looking at a capture (the web
interface, api/ui.py); /retrieve stays the way to take all the data away."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from opentap.auth import Principal
from opentap.capture import netflow, storage
from opentap.db.models import Capture

from . import flowquery
from .captures import PROJECT_QUERY, visible
from .deps import DeviceState, device, principal
from .errors import ApiError
from .fastjson import json_response
from .flowtable import SHOWN, SORTABLE, Cache
from .queryparams import unix_time, whole

router = APIRouter(tags=["captures"])
MAX_LIMIT = 1000  # records per page
MAX_TOP = 100
MAX_BUCKETS = 1000
_cache = Cache()  # one per process: the indexes are of files, whichever app reads them


def _filter(host: str | None, sa: str | None, da: str | None, port: str | None, sp: str | None, dp: str | None,
            pr: str | None, since: str | None, until: str | None) -> flowquery.Filter:
    blank = {k: (v if v else None) for k, v in (("host", host), ("sa", sa), ("da", da), ("pr", pr))}
    return flowquery.Filter(
        **blank, port=whole("port", port, 0, 65535), sp=whole("sp", sp, 0, 65535),
        dp=whole("dp", dp, 0, 65535), since=unix_time("since", since), until=unix_time("until", until))


def _flow_file(dev: DeviceState, who: Principal, capture_id: str, project: str | None) -> tuple[Capture, Path]:
    cap = visible(dev, who, capture_id, project)
    if cap.type != "netflow":
        raise ApiError(400, f"capture '{cap.id}' is a {cap.type} capture: only netflow captures have flow records")
    if cap.state == "scheduled":
        raise ApiError(409, f"capture '{cap.id}' has not started yet; it starts at UNIX time {cap.start:.0f}")
    files = netflow.data_files(storage.capture_dir(dev.cfg.data_dir, cap.project_id, cap.id))
    if not files:
        reason = f": {cap.reason}" if cap.reason else ""
        raise ApiError(409, f"capture '{cap.id}' is {cap.state} and has no flow records{reason}")
    return cap, files[0]


def _index(cap: Capture, path: Path):  # noqa: ANN202 - a FlowIndex
    try:
        return _cache.get((cap.project_id, cap.id), path)
    except FileNotFoundError:  # published (renamed) or deleted between the look-up and the read: once more
        files = netflow.data_files(path.parent)
        if not files:
            raise ApiError(409, f"capture '{cap.id}' has no flow records any more") from None
        return _cache.get((cap.project_id, cap.id), files[0])


FILTER_DOC = {
    "host": "an address, source or destination", "sa": "source address", "da": "destination address",
    "port": "a port, source or destination", "sp": "source port", "dp": "destination port",
    "pr": "protocol as nfdump names it (TCP, UDP, ICMP, …)",
    "since": "records that end at or after this UNIX time", "until": "records that start at or before it",
}


def _table(dev: DeviceState, who: Principal, capture_id: str, project: str | None, flt: flowquery.Filter,
           sort: str, descending: bool, offset: int, limit: int) -> bytes:
    cap, path = _flow_file(dev, who, capture_id, project)
    index = _index(cap, path)
    with index.lock:
        rows = index.remember(("rows", flt), lambda: flowquery.matching(index, flt))
        positions = flowquery.page(index, rows, sort, descending, offset, limit, flt)
        records, matched = len(index), int(len(rows))
    return json_response({
        "id": cap.id, "state": cap.state, "partial": cap.state == "running", "records": records,
        "matched": matched, "offset": offset, "limit": limit, "sort": sort, "order": "desc" if descending else "asc",
        "columns": list(SHOWN), "rows": flowquery.read_rows(path, index, positions)})


@router.get("/captures/{capture_id}/flows", summary="A netflow capture's records: a sorted, filtered page")
async def flows(capture_id: str, project: str | None = PROJECT_QUERY,
                sort: str | None = Query(None), order: str | None = Query(None),
                offset: str | None = Query(None), limit: str | None = Query(None),
                host: str | None = None, sa: str | None = None, da: str | None = None, port: str | None = None,
                sp: str | None = None, dp: str | None = None, pr: str | None = None, since: str | None = None,
                until: str | None = None, dev: DeviceState = Depends(device),
                who: Principal = Depends(principal)) -> Any:
    column = sort or "ts"
    if column not in SORTABLE:
        raise ApiError(400, f"sort must be one of {', '.join(SORTABLE)}, not '{column[:40]}'")
    if order not in (None, "", "asc", "desc"):
        raise ApiError(400, f"order must be asc or desc, not '{order[:40]}'")
    flt = _filter(host, sa, da, port, sp, dp, pr, since, until)
    first = whole("offset", offset, 0, 10**12, 0)
    size = whole("limit", limit, 1, MAX_LIMIT, 50)
    return await run_in_threadpool(_table, dev, who, capture_id, project, flt, column, order == "desc", first, size)


def _summary(dev: DeviceState, who: Principal, capture_id: str, project: str | None, flt: flowquery.Filter,
             top: int, buckets: int) -> bytes:
    cap, path = _flow_file(dev, who, capture_id, project)
    index = _index(cap, path)
    with index.lock:
        span = (cap.start, min(cap.stop, cap.finished_at or time.time()))  # the window as far as it got
        body = index.remember(("summary", flt, top, buckets, span), lambda: flowquery.summary(
            index, flowquery.matching(index, flt), top, buckets, span))
        records = len(index)
    return json_response({"id": cap.id, "state": cap.state, "partial": cap.state == "running",
                          "records": records, **body})


@router.get("/captures/{capture_id}/flows/summary",
            summary="A netflow capture at a glance: top talkers, ports, protocols, bytes over time")
async def flow_summary(capture_id: str, project: str | None = PROJECT_QUERY, top: str | None = Query(None),
                       buckets: str | None = Query(None), host: str | None = None, sa: str | None = None,
                       da: str | None = None, port: str | None = None, sp: str | None = None,
                       dp: str | None = None, pr: str | None = None, since: str | None = None,
                       until: str | None = None, dev: DeviceState = Depends(device),
                       who: Principal = Depends(principal)) -> Any:
    flt = _filter(host, sa, da, port, sp, dp, pr, since, until)
    n = whole("top", top, 1, MAX_TOP, 10)
    b = whole("buckets", buckets, 1, MAX_BUCKETS, 60)
    return await run_in_threadpool(_summary, dev, who, capture_id, project, flt, n, b)
