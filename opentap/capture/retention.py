"""The garbage collector: captures older than the retention period go, data and row together."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from opentap.capture import storage
from opentap.config import Config
from opentap.db.models import FINAL_STATES, Capture

log = logging.getLogger("opentap.retention")
ORPHAN_GRACE = 300  # seconds: a directory without a row is left alone this long (a capture being created)


def collect(s: Session, cfg: Config, now: float, active: set[str]) -> int:
    """Delete finished captures whose end is older than the retention period; return how many went."""
    cutoff = now - cfg.retention_minutes * 60
    old = s.scalars(select(Capture).where(Capture.state.in_(FINAL_STATES), Capture.finished_at < cutoff)).all()
    for cap in old:
        storage.remove(storage.capture_dir(cfg.data_dir, cap.id))
        s.delete(cap)
        log.info("capture %s deleted: older than the retention period (%g min)", cap.id, cfg.retention_minutes)
    s.commit()
    _remove_orphan_dirs(s, cfg, now, active)
    return len(old)


def _remove_orphan_dirs(s: Session, cfg: Config, now: float, active: set[str]) -> None:
    """Directories whose row is gone (a delete interrupted by a crash) would hold quota forever."""
    root = storage.captures_root(cfg.data_dir)
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.name in active or not storage.ID_RE.match(entry.name):
            continue
        if now - entry.stat().st_mtime > ORPHAN_GRACE and s.get(Capture, entry.name) is None:
            storage.remove(entry)
            log.info("removed %s: no capture row refers to it", entry)


