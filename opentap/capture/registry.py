"""Every capture type the device has, by name, in the order /capabilities lists them. A new type is one more
module declaring its CaptureType and one more entry here; the API and the engine read only this."""

from __future__ import annotations

from opentap.capture.ethernet import ETHERNET
from opentap.capture.linkstats import LINKSTATS
from opentap.capture.netflow import NETFLOW
from opentap.capture.sensor import SENSOR
from opentap.capture.types import CaptureType

REGISTRY: dict[str, CaptureType] = {t.name: t for t in (NETFLOW, ETHERNET, LINKSTATS, SENSOR)}
