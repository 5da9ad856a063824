"""Making the database and the disk agree, at start and at every collector pass.

The database is the truth about captures, but a database can be lost, replaced or restored from an old
backup. Data on disk is never deleted because a database does not know it: a capture directory with a
manifest is put back into the database (the manifest is its row), one without is quarantined for an
administrator, with a warning either way. Directories of the layout before ids were per project are moved
into place using their rows."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from opentap import filemodes
from opentap.config import Config
from opentap.db.models import Capture, find

from . import manifest, storage

log = logging.getLogger("opentap.recovery")


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else a or b


def adopt_legacy(s: Session, cfg: Config) -> None:
    """<data_dir>/captures/<id> (ids were global then) -> <data_dir>/projects/<project>/<id>, with a manifest."""
    root = storage.legacy_root(cfg.data_dir)
    if not root.is_dir():
        return
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = root / entry.name
        rows = s.scalars(select(Capture).where(Capture.id == entry.name)).all() if entry.is_dir() else []
        if len(rows) != 1:
            _quarantine(cfg, path, "it is in the old layout and no capture row names it")
            continue
        cap = rows[0]
        target = storage.capture_dir(cfg.data_dir, cap.project_id, cap.id)
        filemodes.secure_dir(cfg, target.parent)
        os.replace(path, target)
        final = cap.state not in ("scheduled", "running")
        manifest.write(target, cap, files=manifest.data_files(target) if final else None)
        log.info("capture %s of project %s moved to %s", cap.id, cap.project_id, target)
    try:
        root.rmdir()
    except OSError:
        log.warning("%s is not empty after moving its captures; left as it is", root)


def account_for_dirs(s: Session, cfg: Config, busy: set[tuple[str, str]]) -> None:
    """Every capture directory gets a row: its manifest's, or it is quarantined. busy: directories the engine
    is writing now (theirs rows exist by construction)."""
    for project, cid, path in storage.capture_dirs(cfg.data_dir):
        if (project, cid) in busy or find(s, project, cid) is not None:
            continue
        try:
            doc = manifest.read(path)
        except manifest.BadManifest as e:
            _quarantine(cfg, path, str(e))
            continue
        if (doc["project_id"], doc["id"]) != (project, cid):
            _quarantine(cfg, path, f"its manifest names capture {doc['id']!r} of project {doc['project_id']!r}")
            continue
        cap = manifest.to_row(doc)
        cap.reason = _join(cap.reason, "restored from its directory's manifest: the database did not know it")
        s.add(cap)
        s.commit()
        log.warning("capture %s of project %s (%s) was missing from the database: restored from %s", cid, project,
                    cap.state, path / manifest.NAME)


def _quarantine(cfg: Config, path: Path, why: str) -> None:
    target = storage.quarantine(cfg.data_dir, path)
    log.warning("%s cannot be accounted for (%s): moved to %s, data kept, for an administrator to look at",
                path, why, target)
