"""GET /retrieve?id=: the capture's data, streamed. A running capture returns what exists so far.

Nothing is ever served as if it were complete when it is not: a capture that failed with nothing captured,
or whose data files were removed after it finished, is an error carrying the reason (and the capture's row is
told, so its state says so from then on); a damaged chunk ends at its last good record, and the capture says
that too before the first byte goes out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from opentap.auth import Principal
from opentap.capture import manifest, storage, tcpdump
from opentap.capture.registry import REGISTRY
from opentap.capture.types import PCAP_MEDIA
from opentap.db.models import FINAL_STATES, Capture, find

from .captures import PROJECT_QUERY, visible
from .deps import DeviceState, device, principal
from .errors import ApiError

router = APIRouter(tags=["captures"])


def _check_data(dev: DeviceState, cap: Capture, reads_chunks: bool) -> Capture:
    """For a finished capture: its files are still all there (410 if not), its chunks undamaged (else the row
    is told before streaming). Returns the row as it now stands."""
    directory = storage.capture_dir(dev.cfg.data_dir, cap.project_id, cap.id)
    try:
        doc = manifest.read(directory)
    except manifest.BadManifest:
        doc = None
    gone = manifest.missing_files(directory, doc) if doc else []
    if gone:
        what = f"data files removed or cut after it finished: {', '.join(gone[:5])}" + (" …" if gone[5:] else "")
        dev.engine.call(lambda s: dev.engine.data_lost(s, cap.project_id, cap.id, what))
        raise ApiError(410, f"capture '{cap.id}' cannot be retrieved: its {what}")
    if reads_chunks:
        for damage in tcpdump.damage(directory):
            dev.engine.call(lambda s, d=str(damage): dev.engine.data_lost(s, cap.project_id, cap.id, d))
    with dev.sessions() as s:
        return find(s, cap.project_id, cap.id) or cap


@router.get("/retrieve", summary="Retrieve a capture's data",
            responses={200: {"content": {PCAP_MEDIA: {}, "text/csv": {}},
                             "description": "the data; X-OpenTap-Partial says whether the capture is still running"}})
def retrieve(id: str = Query(..., description="the id returned by /capture"),
             format: str | None = Query(None, description="netflow: csv (default), pcap if kept; "
                                                          "ethernet: pcap (default), csv; linkstats, sensor: csv"),
             project: str | None = PROJECT_QUERY,
             dev: DeviceState = Depends(device), who: Principal = Depends(principal)) -> StreamingResponse:
    cap = visible(dev, who, id, project)
    ctype = REGISTRY[cap.type]
    fmt_name = format or (dev.cfg.ethernet_default_format if cap.type == "ethernet" else ctype.default_format)
    fmt = ctype.formats.get(fmt_name)
    if fmt is None:
        raise ApiError(400, f"{cap.type} captures can be retrieved as {', '.join(ctype.formats)}, not '{fmt_name}'")
    if cap.state == "scheduled":
        raise ApiError(409, f"capture '{cap.id}' has not started yet; it starts at UNIX time {cap.start:.0f}")
    directory = storage.capture_dir(dev.cfg.data_dir, cap.project_id, cap.id)
    reason = f": {cap.reason}" if cap.reason else ""
    if not directory.is_dir() and cap.started_at is not None:
        raise ApiError(410, f"capture '{cap.id}' is {cap.state} and its data is gone{reason}")
    if not directory.is_dir() or (cap.state == "failed" and not cap.packets):
        raise ApiError(409, f"capture '{cap.id}' is {cap.state} and has no data{reason}")
    missing = fmt.missing(directory)
    if missing:
        raise ApiError(409, f"capture '{cap.id}' cannot be retrieved as {fmt_name}: {missing}")
    if cap.state in FINAL_STATES:
        cap = _check_data(dev, cap, fmt.reads_chunks)
    headers = {
        # set by hand: Starlette would add "; charset=utf-8", and the original client compares exactly
        "content-type": fmt.media_type,
        "content-disposition": f'attachment; filename="{cap.id}.{fmt.suffix}"',
        "x-opentap-state": cap.state,
        "x-opentap-partial": "true" if cap.state == "running" else "false",
    }
    return StreamingResponse(fmt.produce(directory), headers=headers)
