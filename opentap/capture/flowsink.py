"""Where a netflow capture's finished flows go: its CSV (appended under a hidden name, published at the end)
and, when the capture asks for it, a collector. One for the live driver (netflow.py) and captures copied from a
ring (ringcapture.py), so that both write and export the same way."""

from __future__ import annotations

from pathlib import Path

from opentap.capture import storage
from opentap.capture.tcpdump import DriverError
from opentap.flows import nfcsv
from opentap.flows.export import Exporter, ExportError
from opentap.flows.meter import Flows

HIDDEN, FINAL = ".flows.csv", "flows.csv"


class FlowSink:
    def __init__(self, directory: Path, export_url: str | None) -> None:
        self.directory, self.export_url = directory, export_url
        self.exporter: Exporter | None = None

    def open(self) -> None:
        if self.export_url:  # an address that cannot be resolved, or a TCP collector that refuses: no capture
            try:
                self.exporter = Exporter.open(self.export_url)
            except ExportError as e:
                raise DriverError(f"flow export: {e}") from None
        self._out = storage.append_to(self.directory, HIDDEN, FINAL, nfcsv.HEADER + "\n")

    def write(self, flows: Flows) -> None:
        if len(flows):
            self._out.write(nfcsv.csv_text(flows))
            self._out.flush()
            if self.exporter:  # after the CSV: a slow collector delays the export, never the records on disk
                self.exporter.send(flows)

    def close(self) -> None:
        self._out.close()
        if self.exporter:
            self.exporter.close()

    def stats(self) -> dict[str, int]:
        return self.exporter.stats() if self.exporter else {}
