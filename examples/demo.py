"""OpenTap demo, after the original's opentapdemo.py: capture NetFlow records on one observation point for a
minute, look at them as a pandas DataFrame, and draw the bytes per application (service port) as a PNG. When the
device has sensor points, a sensor capture runs over the same minute and is drawn too (one line per column).

    .venv/bin/python examples/demo.py --url http://127.0.0.1:2020 --token "$(cat admin.token)" --point eth0

Needs the `demo` extra (pip install -e '.[demo]': pandas, pyarrow, matplotlib)."""

from __future__ import annotations

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from opentap.client import Device  # noqa: E402

# A device, as the original module described them (a URL works too: Device("http://host:port")).
VIRGO = {"name": "virgo", "ipaddr": "129.108.40.76", "portnum": "50080"}

# Well-known services by (protocol, port), for the picture's labels; other ports are shown as numbers.
SERVICES = {("TCP", 22): "SSH", ("TCP", 25): "SMTP", ("UDP", 53): "DNS", ("TCP", 53): "DNS", ("TCP", 80): "HTTP",
            ("UDP", 123): "NTP", ("UDP", 161): "SNMP", ("TCP", 179): "BGP", ("TCP", 443): "HTTPS",
            ("UDP", 443): "QUIC", ("UDP", 514): "syslog", ("TCP", 873): "rsync", ("TCP", 2049): "NFS",
            ("UDP", 2055): "NetFlow", ("TCP", 3306): "MySQL", ("TCP", 5201): "iperf3", ("TCP", 5432): "PostgreSQL",
            ("TCP", 6443): "Kubernetes", ("TCP", 8080): "HTTP-alt", ("UDP", 4789): "VXLAN"}


MAIN = ["ts", "te", "td", "sa", "da", "sp", "dp", "pr", "flg", "ipkt", "ibyt"]  # what the original client used


def application(protocol: str, sp: int, dp: int) -> str:
    """The service a flow belongs to, in either direction: a known port, else the lower (the server's) one."""
    if protocol in ("ICMP", "ICMP6"):
        return protocol
    for port in (dp, sp):
        if (protocol, port) in SERVICES:
            return SERVICES[(protocol, port)]
    return f"{protocol} {min(sp, dp)}"


def bytes_per_application(flows: pd.DataFrame, top: int = 12) -> pd.Series:
    """Bytes by application (both directions of its flows), largest first; beyond `top`, the rest as one bar."""
    apps = [application(*f) for f in zip(flows["pr"], flows["sp"], flows["dp"], strict=True)]
    totals = flows.groupby(pd.Series(apps, index=flows.index, name="application"))["ibyt"].sum()
    totals = totals.sort_values(ascending=False)
    if len(totals) > top:
        totals = pd.concat([totals.iloc[:top - 1], pd.Series({"other": totals.iloc[top - 1:].sum()})])
    return totals


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def draw(totals: pd.Series, title: str, path: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(totals) + 1.6), dpi=120)
    bars = ax.barh(totals.index[::-1], totals.values[::-1], color="#2b6f9e")
    ax.bar_label(bars, labels=[human(v) for v in totals.values[::-1]], padding=3, fontsize=9)
    ax.set_xlabel("bytes (sum of the flows' ibyt)")
    ax.set_title(title, fontsize=11)
    ax.xaxis.set_major_formatter(lambda v, _pos: human(v))
    ax.margins(x=0.15)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def draw_sensors(data: pd.DataFrame, units: dict[str, str], title: str, path: str) -> None:
    """A sensor capture: one panel per column (each has its own unit), against UTC time."""
    columns = [c for c in data.columns if c != "time"]
    fig, axes = plt.subplots(len(columns), 1, figsize=(8, 2.2 * len(columns) + 0.8), dpi=120, sharex=True,
                             squeeze=False)
    for ax, column in zip(axes[:, 0], columns, strict=True):
        ax.plot(data["time"], data[column], color="#2b6f9e", linewidth=1.2)
        ax.set_ylabel(f"{column} ({units[column]})" if units.get(column) else column)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[-1, 0].set_xlabel("time (UTC)")
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    fig.suptitle(title, fontsize=11)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sensor_capture(device: Device, caps: dict, point: str | None, duration: float, period: int):  # noqa: ANN201
    """A sensor capture over the demo's window on the named (or first) sensor point, or None without one."""
    points = {p["name"]: p for p in caps.get("observation_points", {}).get("sensor", [])}
    name = point or next((n for n, p in points.items() if p["available"]), None)
    if name is None:
        return None, None
    print(f"... and sensor point {name} every {period} ms{' (simulated)' if points[name]['simulated'] else ''}")
    capture = device.capture("sensor", "now", f"+{duration}s", observationpt=name, period=period)
    return capture, points[name]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default=os.environ.get("OPENTAP_URL", "http://127.0.0.1:2020"),
                   help="the device (default: $OPENTAP_URL or http://127.0.0.1:2020)")
    p.add_argument("--token", default=os.environ.get("OPENTAP_TOKEN"), help="default: $OPENTAP_TOKEN")
    p.add_argument("--point", help="observation point (default: the device's default)")
    p.add_argument("--duration", type=float, default=60, help="seconds (default 60)")
    p.add_argument("--png", default="netflow_by_application.png", help="where to draw the picture")
    p.add_argument("--sensor-point", help="sensor point (default: the device's first that can capture, if any)")
    p.add_argument("--sensor-period", type=int, default=1000, help="sensor sampling period, ms (default 1000)")
    p.add_argument("--sensor-png", default="sensors.png", help="where to draw the sensor capture")
    args = p.parse_args(argv)

    device = Device(args.url, token=args.token)
    caps = device.capabilities()
    point = args.point or caps["default_observation_point"]
    print(f"Capturing NetFlow records on {device.name}:{point} for {args.duration:g} s ...")
    capture = device.capture("netflow", "now", f"+{args.duration}s", observationpt=point)
    sensors, sensor_point = sensor_capture(device, caps, args.sensor_point, args.duration, args.sensor_period)
    capture.wait(progress=sys.stderr.isatty())
    flows = capture.retrieve()
    if sensors is not None:
        sensors.wait(progress=False)
        readings = sensors.retrieve()
        units = {c["name"]: c["unit"] for c in sensor_point["columns"]}
        print(f"\n{len(readings)} sensor readings at {device.name}:{sensor_point['name']}:")
        print(readings.describe().loc[["mean", "min", "max"]].to_string())
        simulated = " (simulated)" if sensor_point["simulated"] else ""
        draw_sensors(readings, units, f"Sensors at {device.name}:{sensor_point['name']}{simulated}", args.sensor_png)
        print(f"wrote {args.sensor_png}")

    print(f"\n{len(flows)} flow records. The DataFrame's structure (the original client's columns; "
          f"{flows.shape[1] - len(MAIN)} more nfdump columns follow them):")
    flows[MAIN].info()
    if flows.empty:
        print("\nNo traffic was seen: nothing to draw.")
        return 0
    print("\nIts first row:")
    print(flows[MAIN].iloc[0].to_string())
    totals = bytes_per_application(flows)
    window = f"{flows['ts'].min():%Y-%m-%d %H:%M:%S} to {flows['te'].max():%H:%M:%S} UTC"
    draw(totals, f"Bytes per application at {device.name}:{point}\n{window}", args.png)
    print(f"\nBytes per application:\n{totals.map(human).to_string()}\n\nwrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
