"""How much of the device a capture request or a running capture may take: concurrent windows and disk,
per project and for the whole device. Messages speak of the caller's own project only: another project's
number of captures or bytes is none of its business."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opentap.config import Config
from opentap.db.models import ACTIVE_STATES, FINAL_STATES, Capture

from . import storage
from .errors import RequestError

Key = tuple[str, str]  # (project, capture id)


def live_bytes(data_dir: Path, active: Iterable[Key], project: str | None = None) -> int:
    """Bytes the running captures (of one project, if given) have on disk now."""
    return sum(storage.tree_size(storage.capture_dir(data_dir, p, cid)) for p, cid in active
               if project is None or p == project)


def usage(s: Session, data_dir: Path, active: Iterable[Key], project: str | None = None) -> int:
    """Bytes of captured data: finished captures as recorded, running ones as they are on disk now."""
    q = select(func.coalesce(func.sum(Capture.data_bytes), 0)).where(Capture.state.in_(FINAL_STATES))
    if project is not None:
        q = q.where(Capture.project_id == project)
    return int(s.scalar(q) or 0) + live_bytes(data_dir, active, project)


def check_new(s: Session, cfg: Config, active: Iterable[Key], project: str, start: float, stop: float) -> None:
    """Raise RequestError (429, 507) when a new capture in project over start..stop would exceed a limit."""
    overlapping = (Capture.state.in_(ACTIVE_STATES), Capture.start < stop, Capture.stop > start)
    own = cfg.limits(project)
    mine = s.scalar(select(func.count()).select_from(Capture).where(*overlapping, Capture.project_id == project))
    if mine >= own.max_concurrent_captures:
        raise RequestError(429, f"too many concurrent captures: your project already has {mine} overlapping this "
                                f"window, its limit of {own.max_concurrent_captures}; choose another window")
    everyone = s.scalar(select(func.count()).select_from(Capture).where(*overlapping))
    if everyone >= cfg.max_concurrent_captures:
        raise RequestError(429, "too many concurrent captures: this device has no free slot in this window (it "
                                f"runs at most {cfg.max_concurrent_captures} at once); choose another window")
    active = list(active)
    if usage(s, cfg.data_dir, active, project) >= own.disk_quota_bytes:
        raise RequestError(507, f"your project's disk quota of {own.disk_quota_mb:g} MB for captured data is full; "
                                "delete captures or wait for the retention period to pass")
    if usage(s, cfg.data_dir, active) >= cfg.disk_quota_bytes:
        raise RequestError(507, "this device's disk space for captured data is full; delete captures or wait "
                                "for the retention period to pass")


def over_quota(s: Session, cfg: Config, active: list[Key]) -> list[tuple[list[Key], str]]:
    """Running captures to stop, with the reason: first every project over its own quota; then, if the device
    as a whole is over, the running captures of the project that holds the most data (the one filling it)."""
    out: list[tuple[list[Key], str]] = []
    stopped: set[str] = set()
    for project in sorted({p for p, _ in active}):
        own = cfg.limits(project)
        if usage(s, cfg.data_dir, active, project) >= own.disk_quota_bytes:
            out.append(([k for k in active if k[0] == project],
                        f"your project's disk quota of {own.disk_quota_mb:g} MB for captured data was reached"))
            stopped.add(project)
    rest = [k for k in active if k[0] not in stopped]
    if rest and usage(s, cfg.data_dir, rest) >= cfg.disk_quota_bytes:
        finished = s.execute(select(Capture.project_id, func.sum(Capture.data_bytes))
                             .where(Capture.state.in_(FINAL_STATES)).group_by(Capture.project_id)).all()
        running = {p for p, _ in rest}
        held = {p: live_bytes(cfg.data_dir, rest, p) for p in running}
        for p, n in finished:
            held[p] = held.get(p, 0) + int(n or 0)
        biggest = max(held, key=lambda p: held[p])
        if biggest in running:  # the project filling the disk stops first
            out.append(([k for k in rest if k[0] == biggest],
                        "this device's disk space for captured data was full, and your project holds the most of it"))
        else:  # the disk is full of finished data: nothing running can go on
            out.append((rest, "this device's disk space for captured data was full"))
    return out
