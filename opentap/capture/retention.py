"""The garbage collector: captures older than the retention period go, data and row together.

Directories without a row are not this module's to delete: recovery.account_for_dirs restores them from
their manifests or quarantines them."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from opentap.capture import storage
from opentap.config import Config
from opentap.db.models import FINAL_STATES, Capture

log = logging.getLogger("opentap.retention")


def collect(s: Session, cfg: Config, now: float) -> int:
    """Delete finished captures whose end is older than the retention period; return how many went."""
    cutoff = now - cfg.retention_minutes * 60
    old = s.scalars(select(Capture).where(Capture.state.in_(FINAL_STATES), Capture.finished_at < cutoff)).all()
    for cap in old:
        storage.remove(storage.capture_dir(cfg.data_dir, cap.project_id, cap.id))
        s.delete(cap)
        log.info("capture %s of %s deleted: older than the retention period (%g min)", cap.id, cap.project_id,
                 cfg.retention_minutes)
    s.commit()
    storage.remove_leftovers(cfg.data_dir)
    return len(old)
