"""Flow records and captures that hold them, made without packet capture: records metered by the device's own
meter from generated traffic (pcapgen), written as a netflow capture writes its flows.csv (no Summary trailer:
that is added by /retrieve), and capture rows with their directories put straight into a device's database, as
the engine leaves a finished capture. For the web interface's API tests and its benchmark."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from opentap.capture import manifest, storage
from opentap.db.models import Capture
from opentap.flows import nfcsv
from opentap.flows.meter import FlowMeter
from opentap.flows.pipeline import meter_files

from .pcapgen import generate


def metered(pcap: Path, out: Path, active: float = 1800, idle: float = 15) -> int:
    """The pcap's flow records into out as the device writes flows.csv; the number of records."""
    meter = FlowMeter(active, idle)
    with open(out, "w") as f:
        f.write(nfcsv.HEADER + "\n")
        for flows in meter_files([pcap], meter):
            f.write(nfcsv.csv_text(flows))
    return meter.stats.flows


def generated(directory: Path, packets: int, seed: int = 1) -> Path:
    """flows.csv metered from `packets` packets of pcapgen's realistic traffic (198.18.0.0/15, 2001:db8::/32)."""
    pcap = directory / "traffic.pcap"
    generate(pcap, packets, seed=seed)
    out = directory / "flows.csv"
    metered(pcap, out)
    pcap.unlink()
    return out


def plant(sessions: sessionmaker, data_dir: Path, project: str, capture_id: str, flows_csv: Path | None = None,
          capture_type: str = "netflow", state: str = "complete", point: str = "lo", start: float | None = None,
          created_at: float | None = None, move: bool = False) -> Path:
    """A capture row and its directory (with flows_csv as its flows.csv, moved or copied) and manifest, as a
    finished capture is left: the row first, so that the collector never finds a directory it does not know.
    Returns the directory."""
    now = time.time()
    start = now - 60 if start is None else start
    cap = Capture(id=capture_id, type=capture_type, project_id=project, observation_point=point, interface=point,
                  start=start, stop=start + 30, state=state, options={}, created_at=created_at or now,
                  started_at=None if state == "scheduled" else start,
                  finished_at=None if state in ("scheduled", "running") else start + 30, packets=0, bytes=0,
                  drops_kernel=0, drops_interface=0, data_bytes=0, segments=1, reason="", stats={})
    with sessions() as s, s.begin():
        s.add(cap)
    directory = storage.capture_dir(data_dir, project, capture_id)
    directory.mkdir(parents=True, exist_ok=True)
    if flows_csv is not None:
        target = directory / "flows.csv"
        if move:
            flows_csv.rename(target)
        else:
            target.write_bytes(flows_csv.read_bytes())
    files = manifest.data_files(directory)
    cap.data_bytes = sum(files.values())
    manifest.write(directory, cap, files=files)
    with sessions() as s, s.begin():
        row = s.get(Capture, {"project_id": project, "id": capture_id})
        row.data_bytes = cap.data_bytes
    return directory
