"""An in-memory capture type: a driver (opentap/capture/types.py: Driver) with no child process and no packets,
which appends RECORD-byte records to a hidden file in its capture's directory at every tick and publishes the
file when it stops, as the real drivers do. Each capture's driver does what its Behaviour says: die, fail to
start, raise when it stops (a full or read-only disk), report problems, write faster or slower. The capture
engine runs it like any type when it is given `MemoryCaptures().registry`.

Files of a capture directory: .segNNN.dat while a segment runs, data-NNN.dat once published."""

from __future__ import annotations

import errno
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from opentap.capture.types import CaptureType, DriverContext, Format, Totals, file_bytes

NAME = "memory"
RECORD = 64  # bytes per record; a type's totals count records as its packets
READ_ONLY = "Read-only file system"  # the kernel's words for EROFS


@dataclass
class Behaviour:
    """What a capture's drivers do; a test may change it while the capture runs."""

    records_per_tick: int = 4
    dies: str | None = None  # alive() turns False and failure() says this; nothing more is written
    start_error: Exception | None = None  # start() raises it
    stop_error: OSError | None = None  # stop() raises it before publishing (what it wrote stays hidden)
    read_only: bool = False  # publishing fails with EROFS, in stop() and in the type's finalize alike
    problems: list[str] = field(default_factory=list)  # what stop() reports as making the data incomplete


def data_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("data-*.dat"))


class MemoryDriver:
    pid: int | None = None  # no child process

    def __init__(self, ctx: DriverContext, behaviour: Behaviour) -> None:
        self.ctx, self.behaviour = ctx, behaviour
        self.hidden = ctx.directory / f".seg{ctx.segment:03d}.dat"
        self.ticks = 0

    def start(self) -> None:
        if self.behaviour.start_error is not None:
            raise self.behaviour.start_error
        self.hidden.touch(0o600)

    def alive(self) -> bool:
        return self.behaviour.dies is None

    def failure(self) -> str:
        return self.behaviour.dies or ""

    def tick(self) -> None:
        if self.behaviour.dies is None:
            with open(self.hidden, "ab") as f:
                f.write(bytes(RECORD * self.behaviour.records_per_tick))
            self.ticks += 1

    def stop(self) -> list[str]:
        if self.behaviour.stop_error is not None:
            raise self.behaviour.stop_error
        publish(self.ctx.directory, self.behaviour)
        return list(self.behaviour.problems)


def publish(directory: Path, behaviour: Behaviour) -> None:
    """Every hidden segment file under its final name (what a stopped or crashed driver left)."""
    for hidden in sorted(directory.glob(".seg*.dat")):
        if behaviour.read_only:
            raise OSError(errno.EROFS, READ_ONLY)
        os.replace(hidden, directory / f"data-{hidden.name[4:7]}.dat")


def totals(directory: Path) -> Totals:
    size = sum(p.stat().st_size for p in data_files(directory))
    return Totals(packets=size // RECORD, bytes=size, stats={"files": len(data_files(directory))})


class MemoryCaptures:
    """The in-memory type and the behaviour of each capture's drivers, by capture id; every driver made, in order."""

    def __init__(self) -> None:
        self.behaviour: defaultdict[str, Behaviour] = defaultdict(Behaviour)
        self.drivers: list[MemoryDriver] = []

    def __getitem__(self, capture_id: str) -> Behaviour:
        return self.behaviour[capture_id]

    def driver(self, capture_id: str) -> MemoryDriver:
        """The capture's latest driver (one per segment)."""
        return [d for d in self.drivers if d.ctx.directory.name == capture_id][-1]

    def _driver(self, ctx: DriverContext) -> MemoryDriver:
        self.drivers.append(MemoryDriver(ctx, self.behaviour[ctx.directory.name]))
        return self.drivers[-1]

    @property
    def registry(self) -> dict[str, CaptureType]:
        """What CaptureEngine(registry=...) takes: this type alone."""
        memory = CaptureType(
            name=NAME, point_kind="network", description="records appended in memory's stead (tests only)",
            options=frozenset(), make_driver=self._driver,
            formats={"dat": Format("application/octet-stream", "dat", lambda d: file_bytes(data_files(d)))},
            default_format="dat", totals=totals,
            finalize=lambda d: publish(d, self.behaviour[d.name]))
        return {NAME: memory}
