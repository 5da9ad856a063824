"""A simulated sensor: a deterministic signal for demos and tests, labelled as such wherever it is shown
(capabilities, the capture's msg). Its value is a function of the sample's scheduled time only, so two captures of
the same window read the same numbers."""

from __future__ import annotations

import math


def signal(kind: str, at: float) -> float:
    """A plausible value of this kind at UNIX time `at`."""
    if kind == "temperature":  # °C: a slow drift around room temperature
        value = 22.0 + 1.5 * math.sin(2 * math.pi * at / 600) + 0.2 * math.sin(2 * math.pi * at / 37)
    elif kind == "motion":  # as a 1111 reads: about 500 at rest, swings while something moves (10 s of every 30)
        moving = (int(at) // 10) % 3 == 0
        value = 500.0 + 12.0 * math.sin(2 * math.pi * at / 3.1) + (
            250.0 * math.sin(2 * math.pi * at / 1.7) if moving else 0.0)
    elif kind == "vibration":  # as a 1104 reads: a decaying ring every 10 s
        phase = at % 10.0
        value = 500.0 + 400.0 * math.exp(-phase) * math.sin(2 * math.pi * 13 * phase)
    else:
        value = math.sin(2 * math.pi * at / 60)
    return round(value, 4)


class SimulatedSource:
    min_period_ms = 10
    attach_timeout = 0.0

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def open(self) -> None:
        pass

    def ready(self) -> bool:
        return True

    def not_ready(self) -> str:
        return ""

    def read(self, at: float) -> float | None:
        return signal(self.kind, at)

    def why(self) -> str:
        return ""

    def set_period(self, ms: int) -> None:
        pass

    def warnings(self, period_ms: int) -> list[str]:
        return []

    def close(self) -> None:
        pass
