"""The Python client (opentap.client) without a device: times and durations, importing without pandas, the
frames' schemas against the server's columns, CSV parsed at any chunking, and devices that cannot be reached."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from opentap.capture import linkstats
from opentap.client import Device, DeviceError, Fleet, FleetError, frames, parse_duration, parse_time
from opentap.client.device import FINAL_STATES
from opentap.db import models
from opentap.flows import nfcsv
from opentap.pcap import packetcsv

from ..support.daemon import free_port
from ..support.frames import eth, icmp_echo, ipv4, udp, write_pcap
from ..support.netns import A_IP, B_IP

UTC_TIME = "datetime64[ns, UTC]"
PAYLOAD, PORT = 100, 5000
UDP_IP_BYTES = 20 + 8 + PAYLOAD


def test_parse_time_and_duration() -> None:
    now = 1_700_000_000.25
    assert parse_time("now", now) == now
    assert parse_time("+10s", now) == now + 10 and parse_time("+2m", now) == now + 120
    assert parse_time("-1h30m", now) == now - 5400 and parse_time("+10", now) == now + 10
    assert parse_time("1700000100", now) == 1_700_000_100 and parse_time(1_700_000_100.5, now) == 1_700_000_100.5
    assert parse_time("2023-11-14T22:13:20Z", now) == 1_700_000_000
    assert parse_time("2023-11-14 22:13:20", now) == 1_700_000_000  # no zone: UTC, as the device's times
    assert parse_time("2023-11-14T23:13:20+01:00", now) == 1_700_000_000
    assert parse_time(datetime(2023, 11, 14, 22, 13, 20), now) == 1_700_000_000
    assert parse_duration("90") == 90 and parse_duration("60s") == 60 and parse_duration("2m") == 120
    assert parse_duration("1h") == 3600 and parse_duration("1.5h") == 5400 and parse_duration("250ms") == 0.25
    for bad in ("", "soon", "+", "+10x", "10 s s", "2024-13-01"):
        with pytest.raises(ValueError):
            parse_time(bad, now)
    for bad in ("", "-5", "m", "5y", "nan"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_client_imports_without_pandas_and_pyarrow() -> None:
    code = ("import sys; sys.modules['pandas'] = sys.modules['pyarrow'] = None  # importing them fails\n"
            "import opentap.client as c\n"
            "d = c.Device('http://127.0.0.1:9', token='t')\n"
            "assert d.name == '127.0.0.1' and c.Fleet([d]).devices == [d]\n"
            "assert not [m for m, v in sys.modules.items() if v and m.startswith(('pandas', 'pyarrow'))]\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_schemas_are_the_servers_columns() -> None:
    assert list(frames.SCHEMAS["netflow"]) == nfcsv.COLUMNS
    assert list(frames.SCHEMAS["ethernet"]) == packetcsv.CSV_COLUMNS
    assert ",".join(frames.SCHEMAS["linkstats"]) + "\n" == linkstats.HEADER
    assert set(FINAL_STATES) == set(models.FINAL_STATES)


def test_netflow_csv_parsed_at_any_chunking(tmp_path: Path) -> None:
    """The trailer may straddle any two chunks of a streamed body; it is never a row, whatever the split."""
    t0 = 1_700_000_000.5
    records = [(t0 + i / 100, eth(ipv4(A_IP, B_IP, 17, udp(A_IP, B_IP, 1234, PORT, bytes(PAYLOAD)))))
               for i in range(7)]
    records.append((t0 + 1, eth(ipv4(B_IP, A_IP, 1, icmp_echo(1, 1)))))
    write_pcap(tmp_path / "t.pcap", records)
    subprocess.run([sys.executable, "-m", "opentap", "flows", str(tmp_path / "t.pcap"), "-o", str(tmp_path / "t.csv")],
                   check=True, capture_output=True)
    body = (tmp_path / "t.csv").read_bytes()
    assert body.count(b"\nSummary\n") == 1
    for size in range(1, 40):
        df = frames.read_frame("netflow", iter([body[i:i + size] for i in range(0, len(body), size)]))
        assert len(df) == 2, size
    udp_row = df[df.pr == "UDP"].iloc[0]
    assert (udp_row.ipkt, udp_row.ibyt, udp_row.sp, udp_row.dp) == (7, 7 * UDP_IP_BYTES, 1234, PORT)
    assert udp_row.ts == pd.Timestamp(int(t0), unit="s", tz="UTC") and udp_row.td == 0.06


def test_empty_frames_have_the_columns_and_dtypes() -> None:
    for kind, columns in frames.SCHEMAS.items():
        df = frames.empty_frame(kind)
        assert list(df.columns) == list(columns) and df.empty
        times = [c for c, k in columns.items() if k in frames.TIME_KINDS]
        assert times and all(str(df[c].dtype) == UTC_TIME for c in times)
        assert all(df[c].dtype == "int64" for c, k in columns.items() if k == frames.INT)


def test_unreachable_and_silent_devices_are_device_errors() -> None:
    with pytest.raises(DeviceError) as refused:
        Device(f"http://127.0.0.1:{free_port()}", name="nobody").capabilities()
    assert refused.value.status == 0 and refused.value.device == "nobody"
    assert "cannot reach http://127.0.0.1" in refused.value.message
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        with pytest.raises(DeviceError) as slow:
            Device(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5).capabilities()
    assert slow.value.status == 0 and "timed out" in slow.value.message and time.monotonic() - started < 5
    with pytest.raises(ValueError, match="not a device URL"):
        Device("127.0.0.1:2020")
    with pytest.raises(FleetError) as nobody:
        Fleet([Device(f"http://127.0.0.1:{free_port()}", name="n1")]).capture("netflow", "now", "+2s")
    assert list(nobody.value.errors) == ["n1"]
    with pytest.raises(ValueError, match="127.0.0.1 is used twice"):
        Fleet(["http://127.0.0.1:1", "http://127.0.0.1:2"])
