"""The OpenTap Python client: devices over HTTP or SSH, captures, fleets, and the data as pandas DataFrames.

    from opentap.client import Device, Fleet
    virgo = Device("http://129.108.40.76:50080", token="…")
    cap = virgo.capture("netflow", "now", "+60s", observationpt="webapp")
    cap.wait()
    flows = cap.retrieve()          # ts/te as UTC datetimes, integer counts and ports

pandas and pyarrow (the `client` extra) are imported only when a DataFrame or a Parquet file is asked for."""

from .device import Capture, CaptureFailed, CaptureWarning, Device
from .fleet import Fleet, FleetCapture, FleetError, FleetWarning
from .times import parse_duration, parse_time
from .transport import DeviceError, Reply, Transport, error_message

__all__ = ["Capture", "CaptureFailed", "CaptureWarning", "Device", "DeviceError", "Fleet", "FleetCapture",
           "FleetError", "FleetWarning", "Reply", "Transport", "error_message", "parse_duration", "parse_time"]
