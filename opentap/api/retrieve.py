"""GET /retrieve?id=: the capture's data, streamed. A running capture returns what exists so far."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from opentap.auth import Principal
from opentap.capture import storage
from opentap.capture.types import PCAP_MEDIA, REGISTRY

from .captures import visible
from .deps import Device, device, principal
from .errors import ApiError

router = APIRouter(tags=["captures"])


@router.get("/retrieve", summary="Retrieve a capture's data",
            responses={200: {"content": {PCAP_MEDIA: {}, "text/csv": {}},
                             "description": "the data; X-OpenTap-Partial says whether the capture is still running"}})
def retrieve(id: str = Query(..., description="the id returned by /capture"),
             format: str | None = Query(None, description="netflow: csv (default), pcap if kept; "
                                                          "ethernet: pcap (default), csv; linkstats: csv"),
             dev: Device = Depends(device), who: Principal = Depends(principal)) -> StreamingResponse:
    cap = visible(dev, who, id)
    ctype = REGISTRY[cap.type]
    fmt_name = format or ctype.default_format
    fmt = ctype.formats.get(fmt_name)
    if fmt is None:
        raise ApiError(400, f"{cap.type} captures can be retrieved as {', '.join(ctype.formats)}, not '{fmt_name}'")
    if cap.state == "scheduled":
        raise ApiError(409, f"capture '{cap.id}' has not started yet; it starts at UNIX time {cap.start:.0f}")
    directory = storage.capture_dir(dev.cfg.data_dir, cap.id)
    if not directory.is_dir():
        raise ApiError(409, f"capture '{cap.id}' is {cap.state} and has no data"
                            + (f": {cap.reason}" if cap.reason else ""))
    missing = fmt.missing(directory)
    if missing:
        raise ApiError(409, f"capture '{cap.id}' cannot be retrieved as {fmt_name}: {missing}")
    headers = {
        # set by hand: Starlette would add "; charset=utf-8", and the original client compares exactly
        "content-type": fmt.media_type,
        "content-disposition": f'attachment; filename="{cap.id}.{fmt.suffix}"',
        "x-opentap-state": cap.state,
        "x-opentap-partial": "true" if cap.state == "running" else "false",
    }
    return StreamingResponse(fmt.produce(directory), headers=headers)
