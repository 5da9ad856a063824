"""Whether a capture request is answered from its point's ring, and what such a request may not ask for.

A window that starts in the past was always moved to now. On a point with a ring it is answered from the ring
when the ring reaches back far enough; when it does not, the answer says how far back it reaches (a start a
moment old, a client's "now" on its way, is still moved to now, as the original did). Points without a ring,
tap services among them, behave as before.
"""

from __future__ import annotations

import time
from typing import Any

from opentap.capture.errors import RequestError
from opentap.capture.rings import RingSet
from opentap.config import Config, ObservationPoint

RING_TYPES = ("ethernet", "netflow")
NEAR_NOW = 2.0  # seconds: a start this close to now is a client's "now", moved to now when the ring cannot serve it


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def from_ring(cfg: Config, rings: RingSet | None, type_name: str, point: ObservationPoint, start: float,
              now: float) -> bool:
    """True when the window is to be copied from the ring; raises RequestError (400) when the point has a
    ring that does not reach back to start."""
    if rings is None or type_name not in RING_TYPES or cfg.observation_points.get(point.name) is not point:
        return False
    if int(start) >= int(now):
        return False
    ring = rings.get(point.name)
    if ring is None:
        return False  # no ring here: the start becomes now, as it always did
    since = ring.since()
    if since is not None and start >= since:
        return True
    if now - start <= NEAR_NOW:
        return False
    if since is None:
        raise RequestError(400, f"the ring of observation point '{point.name}' has not recorded anything yet, so "
                                "a window in the past cannot be answered; start it now or later")
    raise RequestError(400, f"the ring of observation point '{point.name}' reaches back to {_when(since)} "
                            f"(UNIX {since:.3f}); the window starts at {_when(start)}, before that. Ask for a "
                            "start at or after the ring's reach (GET /capabilities: ring_since)")


def check_options(options: dict[str, Any]) -> None:
    """What a capture from a ring cannot give: the ring keeps whole packets, without the device's own traffic."""
    if "snaplen" in options:
        raise RequestError(400, "'snaplen' does not apply to a window in the past: the ring keeps whole packets")
    if options.get("exclude_device_traffic") is False:
        raise RequestError(400, "the ring does not record the device's own API and SSH traffic, so a window in the "
                                "past cannot include it (exclude_device_traffic=false)")
    options["from_ring"] = True
