"""The Python client (opentap.client) against live daemons (real processes, real HTTP) and real traffic between
network namespaces: DataFrames equal to what was sent, Parquet and raw downloads, fleets with failing devices,
and the server's error messages.

The traffic tests share one capture window (a module fixture schedules every capture at once, sends the
traffic once, and waits), so the file costs one window, not one per test."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from opentap.client import (
    Capture,
    CaptureFailed,
    Device,
    DeviceError,
    Fleet,
    FleetCapture,
    FleetWarning,
    frames,
)
from opentap.pcap import pcapfile

from ..support.configs import write_config
from ..support.daemon import Daemon, free_port, running
from ..support.netns import A_IP, B_IP, Lan, counters, prefix
from ..support.sshd import REASON as SSH_REASON
from ..support.sshd import running_sshd

root = pytest.mark.root
UTC_TIME = "datetime64[ns, UTC]"
SENT, PAYLOAD, PORT = 40, 100, 5000  # UDP datagrams A -> B in the shared window
UDP_IP_BYTES, UDP_FRAME = 20 + 8 + PAYLOAD, 14 + 20 + 8 + PAYLOAD


# -- live daemons and real traffic ---------------------------------------------------------------------------
@dataclass
class Window:
    """Everything captured during the shared window, and what went over the wire."""

    start: float
    stop: float
    netflow: Capture
    netflow_empty: Capture
    ethernet: Capture
    ethernet_empty: Capture
    linkstats: Capture
    pair: FleetCapture  # alpha and beta, netflow at "tap"
    mixed: FleetCapture  # alpha, and devices that cannot take part
    wire_packets: int  # on lan.ha, both directions
    alpha: Daemon
    beta: Daemon


@pytest.fixture(scope="module")
def net() -> Iterator[Lan]:
    lan = Lan(prefix() + "c")
    lan.up()
    try:
        yield lan
    finally:
        lan.down()


@pytest.fixture(scope="module")
def daemons(net: Lan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Daemon]]:
    """alpha's "tap" is A's link, its "ghost" an interface that does not exist; beta's "tap" is B's link."""
    made = [Daemon(write_config(tmp_path_factory.mktemp("alpha"), {"tap": net.ha, "ghost": "nosuch0"},
                                device_name="alpha", flow_idle_timeout=1, max_concurrent_captures=16)),
            Daemon(write_config(tmp_path_factory.mktemp("beta"), {"tap": net.hb}, device_name="beta",
                                flow_idle_timeout=1))]
    try:
        for d in made:
            d.start()
        yield made[0], made[1]
    finally:
        for d in made:
            d.stop()


def device(d: Daemon, name: str, token: str = "tok-admin") -> Device:
    return Device(d.url, token=token, name=name)


def until_running(captures: list[Capture], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    for cap in captures:
        while cap.status()["state"] != "running":
            assert cap.state == "scheduled" and time.monotonic() < deadline, cap.info
            time.sleep(0.05)


@pytest.fixture(scope="module")
def window(net: Lan, daemons: tuple[Daemon, Daemon]) -> Window:
    alpha_d, beta_d = daemons
    alpha, beta = device(alpha_d, "alpha"), device(beta_d, "beta")
    start, stop = time.time(), time.time() + 4
    nf = alpha.capture("netflow", start, stop, observationpt="tap")
    nf_empty = alpha.capture("netflow", start, stop, observationpt="tap", filter="udp port 9")
    ether = alpha.capture("ethernet", start, stop, observationpt="tap")
    ether_empty = alpha.capture("ethernet", start, stop, observationpt="tap", filter="udp port 9")
    stats = alpha.capture("linkstats", start, stop, observationpt="tap", period=200)
    pair = Fleet([alpha, beta]).capture("netflow", start, stop, observationpt="tap")
    mixed = Fleet([alpha, Device(f"http://127.0.0.1:{free_port()}", name="nobody"),
                   device(beta_d, "badtoken", token="tok-wrong"), device(beta_d, "reader", token="tok-alice-reader"),
                   device(alpha_d, "ghostly")]).capture("netflow", start, stop,
                                                        observationpt={"alpha": "tap", "ghostly": "ghost"})
    until_running([nf, nf_empty, ether, ether_empty, stats, *pair.captures.values(), mixed.captures["alpha"]])
    before = counters(net.ha)
    assert net.run(net.ns_a, "udp", B_IP, PORT, SENT, PAYLOAD) == {"sent": SENT}
    for cap in (nf, nf_empty, ether, ether_empty, stats):
        assert cap.wait(progress=False)["state"] == "complete", cap.info
    pair.wait(progress=False)
    mixed.wait(progress=False)
    after = counters(net.ha)  # after the window: nothing else is sent, late replies are inside it
    wire = sum(after[k] - before[k] for k in ("rx_packets", "tx_packets"))
    return Window(start, stop, nf, nf_empty, ether, ether_empty, stats, pair, mixed, wire, alpha_d, beta_d)


def udp_flow(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df.sa == A_IP) & (df.da == B_IP) & (df.pr == "UDP")]


@root
def test_netflow_dataframe_is_the_traffic(window: Window) -> None:
    df = window.netflow.retrieve()
    row = udp_flow(df)
    assert len(row) == 1, df[["sa", "da", "sp", "dp", "pr", "ipkt"]]
    assert (row.ipkt.item(), row.ibyt.item(), row.dp.item()) == (SENT, SENT * UDP_IP_BYTES, PORT)
    assert 1024 <= row.sp.item() <= 65535
    assert {c: str(df[c].dtype) for c in ("ts", "te", "tr")} == dict.fromkeys(("ts", "te", "tr"), UTC_TIME)
    assert {c: str(df[c].dtype) for c in ("sp", "dp", "ipkt", "ibyt", "td")} == {
        "sp": "int64", "dp": "int64", "ipkt": "int64", "ibyt": "int64", "td": "float64"}
    first = pd.Timestamp(math.floor(window.start), unit="s", tz="UTC")
    assert first <= row.ts.item() <= row.te.item() <= pd.Timestamp(window.stop, unit="s", tz="UTC")
    info = window.netflow.info  # the device's own totals: every flow a row, no trailer rows
    assert len(df) == info["stats"]["flows"] and df.ipkt.sum() == info["packets"] and df.ibyt.sum() == info["bytes"]


@root
def test_empty_captures_are_typed_empty_frames(window: Window, tmp_path: Path) -> None:
    for cap, kind in ((window.netflow_empty, "netflow"), (window.ethernet_empty, "ethernet")):
        df = cap.retrieve()
        assert df.empty and cap.info["packets"] == 0
        pd.testing.assert_frame_equal(df, frames.empty_frame(kind))
        cap.to_parquet(tmp_path / f"{kind}.parquet")
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{kind}.parquet"), df)


@root
def test_ethernet_rows_are_the_packets(window: Window, tmp_path: Path) -> None:
    df = window.ethernet.retrieve()
    assert len(df) == window.wire_packets == window.ethernet.info["packets"]
    sent = df[(df.protocol == "UDP") & (df.src_ip == A_IP)]
    assert len(sent) == SENT and set(sent.length) == {UDP_FRAME} and set(sent.dst_port) == {PORT}
    assert str(df.time.dtype) == UTC_TIME and df.time.is_monotonic_increasing
    assert pd.Timestamp(window.start, unit="s", tz="UTC") <= df.time.min()
    # the pcap, downloaded raw, holds the same packets at the same microseconds
    pcap = window.ethernet.download(tmp_path / "x.pcap")
    stamps = [ts // 1000 for ts, _orig, _data in pcapfile.iter_records([pcap])]
    assert stamps == list(df.time.astype("int64") // 1000)


@root
def test_parquet_and_download_round_trips(window: Window, tmp_path: Path) -> None:
    cap = window.ethernet
    df = cap.retrieve()
    out = cap.to_parquet(tmp_path / "packets.parquet", rows_per_group=16)
    assert pq.ParquetFile(out).num_row_groups == math.ceil(len(df) / 16)  # written as it streamed in
    pd.testing.assert_frame_equal(pd.read_parquet(out), df)

    raw = cap.download(tmp_path / "packets.csv", format="csv")
    assert raw.read_bytes() == httpx.get(f"{window.alpha.url}/retrieve", params={"id": cap.id, "format": "csv"},
                                         headers={"X-Auth-Token": "tok-admin"}).content
    named = cap.download(tmp_path)  # a directory: the device's file name, the type's default format
    assert named == tmp_path / f"{cap.id}.pcap" and named.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"
    flows = window.netflow.to_parquet(tmp_path / "flows.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(flows), window.netflow.retrieve())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["packets.parquet", "packets.csv", f"{cap.id}.pcap", "flows.parquet"])  # no temp files left

    with pytest.raises(DeviceError) as missing:
        Capture(cap.device, "no-such-capture").download(tmp_path / "never.pcap")
    assert missing.value.status == 404 and not (tmp_path / "never.pcap").exists()


@root
def test_linkstats_time_series(window: Window) -> None:
    df = window.linkstats.retrieve()
    assert str(df.time.dtype) == UTC_TIME and df.time.is_monotonic_increasing and set(df.state) == {1}
    assert all(str(df[c].dtype) == "Int64" for c in df.columns if c.startswith(("rx_", "tx_")))
    steps = df.time.diff().dropna().dt.total_seconds()
    assert 0.15 <= steps.median() <= 0.3 and 10 <= len(df) <= 25  # every 200 ms over 4 s
    assert df.rx_packets.iloc[-1] - df.rx_packets.iloc[0] == SENT  # A's datagrams arrive on its host end
    assert df.rx_bytes.iloc[-1] - df.rx_bytes.iloc[0] == SENT * UDP_FRAME


@root
def test_fleet_of_two_devices(window: Window) -> None:
    df = window.pair.retrieve()
    assert window.pair.errors == {} and list(df.columns) == ["device", *frames.SCHEMAS["netflow"]]
    assert set(df.device) == {"alpha", "beta"}
    flows = udp_flow(df)  # both devices saw the datagrams, at A's and at B's end
    assert sorted(flows.device) == ["alpha", "beta"] and list(flows.ipkt) == [SENT, SENT]
    assert str(df.ts.dtype) == UTC_TIME and df.ipkt.dtype == "int64"


@root
def test_fleet_with_failing_devices(window: Window) -> None:
    fleet = window.mixed
    with pytest.warns(FleetWarning, match="4 of 5 devices left out"):
        df = fleet.retrieve()
    assert set(df.device) == {"alpha"} and udp_flow(df).ipkt.tolist() == [SENT]
    errors = fleet.errors
    assert sorted(errors) == ["badtoken", "ghostly", "nobody", "reader"]
    assert errors["nobody"].status == 0 and "cannot reach" in errors["nobody"].message
    assert errors["badtoken"].status == 401 and errors["badtoken"].message == "missing or invalid X-Auth-Token"
    assert errors["reader"].status == 403 and "may read captures but not start them" in errors["reader"].message
    ghost = errors["ghostly"]  # scheduled fine, then the device could not run it
    assert isinstance(ghost, CaptureFailed) and ghost.info["state"] == "failed"
    assert ghost.info["reason"] and ghost.info["reason"] in ghost.message
    assert list(fleet.captures) == ["alpha", "ghostly"]


@root
def test_errors_carry_the_servers_message(window: Window) -> None:
    alpha = device(window.alpha, "alpha")
    raw = httpx.get(f"{window.alpha.url}/capture/netflow", headers={"X-Auth-Token": "tok-admin"},
                    params={"start": time.time(), "stop": time.time() + 5, "observationpt": "nowhere"})
    with pytest.raises(DeviceError) as bad_point:
        alpha.capture("netflow", "now", "+5s", observationpt="nowhere")
    assert (bad_point.value.status, bad_point.value.message) == (400, raw.json()["msg"])
    assert "unknown observation point 'nowhere'" in str(bad_point.value) and "alpha" in str(bad_point.value)
    with pytest.raises(DeviceError) as gone:
        alpha.get_capture("no-such-capture")
    assert gone.value.status == 404 and gone.value.message == "no capture with id 'no-such-capture'"
    with pytest.raises(DeviceError) as long:
        alpha.capture("linkstats", "now", "+2h", observationpt="tap")
    assert long.value.status == 400 and "capture length limit" in long.value.message


@root
def test_scheduling_listing_and_cancelling(window: Window) -> None:
    # the original client's dictionary; start as a datetime, stop relative to now
    alpha = Device({"name": "virgo", "ipaddr": "127.0.0.1", "portnum": str(window.alpha.port)}, token="tok-admin")
    assert alpha.name == "virgo" and alpha.capabilities()["device"] == "alpha"
    start = datetime.now(UTC) + timedelta(seconds=60)
    cap = alpha.capture("linkstats", start, "+70s", observationpt="tap", id="later-1")
    assert cap.id == "later-1" and cap.state == "scheduled"
    assert abs(cap.info["startTime"] - start.timestamp()) < 1e-3
    assert 69 < cap.info["stopTime"] - time.time() <= 70
    assert "later-1" in [c.id for c in alpha.captures(state="scheduled")]
    with pytest.raises(DeviceError) as early:
        cap.retrieve()
    assert early.value.status == 409 and "has not started yet" in early.value.message
    assert cap.delete()["state"] == "cancelled" and cap.status()["state"] == "cancelled"
    assert cap.delete() is None  # finished: deleted with its data
    with pytest.raises(DeviceError, match="no capture with id 'later-1'"):
        cap.status()


@root
def test_wait_progress_bar_and_timeout(window: Window, capsys: pytest.CaptureFixture[str]) -> None:
    alpha = device(window.alpha, "alpha")
    shown, quiet, long = (alpha.capture("linkstats", "now", stop, observationpt="tap", period=100)
                          for stop in ("+1.5s", "+1.5s", "+60s"))
    together = Fleet([alpha]).capture("linkstats", "now", "+1.5s", observationpt="tap")
    capsys.readouterr()
    assert shown.wait(progress=True)["state"] == "complete"
    err = capsys.readouterr().err
    assert f"alpha linkstats {shown.id[:8]} [" in err and "100%" in err and err.rstrip().endswith("complete")
    assert list(together.wait(progress=True)) == ["alpha"]
    err = capsys.readouterr().err
    assert "linkstats on 1 devices [" in err and err.rstrip().endswith("1/1 finished")
    assert quiet.wait(progress=False)["state"] == "complete"
    assert capsys.readouterr().err == ""
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=f"alpha: capture '{long.id}' is still running after 0.3 s"):
        long.wait(progress=False, timeout=0.3)
    assert time.monotonic() - began < 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cancelled capture is not a failure: no warning, no error
        assert long.delete()["state"] == "cancelled" and long.wait(progress=False)["state"] == "cancelled"
    assert len(long.retrieve()) >= 1  # the data so far is kept


@root
@pytest.mark.skipif(SSH_REASON is not None, reason=SSH_REASON or "")
def test_device_over_ssh(tmp_path: Path) -> None:
    """The same client over ssh:// (a real sshd, `opentap invoke` as the key's forced command): the same data."""
    # the daemon's config maps the SSH key "tester" to alice (member)
    with running(tmp_path) as d, running_sshd(tmp_path / "ssh", d.conf) as sshd:
        dev = Device(sshd.url, identity=sshd.identity, ssh_options=sshd.options())
        assert dev.name == "127.0.0.1" and dev.capabilities()["project"] == "alice"  # the key's project
        # each call is an ssh connection (~0.3 s), and the device starts a window that began before it
        # heard of it "now" at its own clock: a 2 s window still gives well over five samples
        cap = dev.capture("linkstats", "now", "+2s", observationpt="lo", period=100)
        assert cap.wait(progress=False)["state"] == "complete"
        df = cap.retrieve()
        assert len(df) >= 5 and str(df.time.dtype) == UTC_TIME
        pd.testing.assert_frame_equal(df, Device(d.url, token="tok-admin").get_capture(cap.id).retrieve())
        with pytest.raises(DeviceError) as bad:
            dev.capture("linkstats", "now", "+1s", observationpt="nowhere")
        assert bad.value.status == 400 and bad.value.message.startswith("unknown observation point 'nowhere'")
    with pytest.raises(ValueError, match="not a token"):
        Device(sshd.url, token="tok-admin")
