"""`opentap capabilities|capture|captures|capture-show|retrieve|capture-delete`: captures from a shell, on any
device the client reaches (http://, https:// or ssh://). Tables for people, `-f json` for scripts; data goes
to a file (-o) or, as the API sends it, to standard output."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from opentap.cli.output import FORMATS, render, show

DEFAULT_URL = "http://127.0.0.1:2020"
TABLE_COLUMNS = ["id", "type", "observationpt", "state", "start (UTC)", "stop (UTC)", "packets", "bytes", "data"]
RAW_COLUMNS = ["id", "type", "observationpt", "state", "startTime", "stopTime", "packets", "bytes", "data_bytes"]


def device(args: argparse.Namespace) -> Any:
    from opentap.client import Device

    url = args.url or os.environ.get("OPENTAP_URL", DEFAULT_URL)
    token = None if url.startswith("ssh://") else args.token or os.environ.get("OPENTAP_TOKEN")  # ssh: the key
    return Device(url, token=token, identity=args.identity, ssh_options=args.ssh_option or (),
                  verify=verify_option(args))


def verify_option(args: argparse.Namespace) -> bool | str:
    """--verify / $OPENTAP_VERIFY: a CA file or a pinned "sha256:…" fingerprint; default the system's CAs."""
    return args.verify or os.environ.get("OPENTAP_VERIFY") or True


VERIFY_HELP = ("HTTPS: a CA file, or the device certificate's pinned fingerprint sha256:AB:CD:... (default: "
               "$OPENTAP_VERIFY, else the system's CAs)")


def when(seconds: float | None) -> str:
    return "" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def row(info: dict[str, Any]) -> dict[str, Any]:
    """A capture as a table row: times in UTC, sizes in units."""
    return {"id": info["id"], "type": info["type"], "observationpt": info["observationpt"], "state": info["state"],
            "start (UTC)": when(info["startTime"]), "stop (UTC)": when(info["stopTime"]),
            "packets": "" if info.get("packets") is None else str(info["packets"]),
            "bytes": size(info.get("bytes")), "data": size(info.get("data_bytes"))}


def _capabilities(args: argparse.Namespace) -> int:
    caps = device(args).capabilities()
    if args.format != "table":
        print(show(caps, args.format))
        return 0
    print(f"{caps['device']} (OpenTap {caps['version']}), you are {caps['project']} ({', '.join(caps['roles'])})")
    print(f"captures up to {caps['capture_length_limit']:g} s, kept {caps['retention_minutes']:g} min, "
          f"at most {caps['max_concurrent_captures']} at once")
    default = caps.get("default_observation_point")
    points = [{**p, "default": "yes" if p["name"] == default else ""} for p in caps["observation_points"]["network"]]
    columns = ["name", "interface", "default"] if any("interface" in p for p in points) else ["name", "default"]
    print("\nObservation points:\n" + render(points, "table", columns))
    sensors = [{"name": p["name"], "columns": ", ".join(f"{c['name']} ({c['unit']})" if c["unit"] else c["name"]
                                                    for c in p["columns"]),
                "note": "simulated" if p["simulated"] else "" if p["available"] else p.get("why", "")}
               for p in caps["observation_points"].get("sensor", [])]
    if sensors:
        print("\nSensor points:\n" + render(sensors, "table", ["name", "columns", "note"]))
    types = [{"type": name, "formats": ", ".join(t["formats"]), "options": ", ".join(t["options"]),
              "what": t["description"]} for name, t in caps["types"].items()]
    print("\nCapture types:\n" + render(types, "table", ["type", "formats", "options", "what"]))
    return 0


def _capture(args: argparse.Namespace) -> int:
    from opentap.client.times import parse_duration, parse_time

    now = time.time()
    start = parse_time(args.start, now)
    stop = start + parse_duration(args.duration) if args.duration else parse_time(args.stop, now)
    dev = device(args)
    cap = dev.capture(args.type, start, stop, observationpt=args.point, filter=args.filter, period=args.period,
                      snaplen=args.snaplen, keep_packets=args.keep_packets or None, id=args.id)
    info = cap.status()
    if args.wait or args.output:
        info = cap.wait(progress=sys.stderr.isatty() and args.format == "table")
    if args.output:
        _save(cap, args.output, args.data_format)
    print(show(info, args.format) if args.format != "table" else render([row(info)], "table", TABLE_COLUMNS))
    return 0


def _captures(args: argparse.Namespace) -> int:
    infos = [c.info for c in device(args).captures(state=args.state, type=args.type)]
    if args.format != "table":
        print(render(infos, args.format, RAW_COLUMNS))
    else:
        print(render([row(i) for i in infos], "table", TABLE_COLUMNS) if infos else "no captures")
    return 0


def _capture_show(args: argparse.Namespace) -> int:
    print(show(device(args).get_capture(args.id).status(), args.format))
    return 0


def _save(cap: Any, path: str, data_format: str | None) -> None:
    if data_format == "parquet" or (data_format is None and path.endswith(".parquet")):
        written = cap.to_parquet(path)
    else:
        written = cap.download(path, format=data_format)
    print(f"wrote {written} ({size(os.path.getsize(written))})", file=sys.stderr)


def _retrieve(args: argparse.Namespace) -> int:
    cap = device(args).get_capture(args.id)
    if args.output:
        _save(cap, args.output, args.data_format)
        return 0
    if args.data_format == "parquet":
        raise ValueError("parquet is a file format: give -o FILE")
    out = sys.stdout.buffer
    with cap.device.stream("GET", "/retrieve", {"id": cap.id, "format": args.data_format}) as reply:  # as sent
        if out.isatty() and not reply.headers.get("content-type", "").startswith("text/"):
            raise ValueError("that is binary data (pcap): give -o FILE, or pipe it (| tcpdump -r -)")
        for chunk in reply.chunks:
            out.write(chunk)
    out.flush()
    return 0


def _capture_delete(args: argparse.Namespace) -> int:
    cancelled = device(args).get_capture(args.id).delete()  # its status when cancelled; None when deleted
    print(f"{'cancelled' if cancelled else 'deleted'} capture {args.id}"
          + (" (its data so far is kept until you delete it)" if cancelled else ""))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    def command(name: str, fn: Any, help: str, fmt: bool = True) -> argparse.ArgumentParser:  # noqa: A002
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--url", help=f"the device: http(s)://HOST:PORT or ssh://USER@HOST[:PORT] "
                                     f"(default: $OPENTAP_URL or {DEFAULT_URL})")
        p.add_argument("--token", help="API token for http(s) (default: $OPENTAP_TOKEN)")
        p.add_argument("--verify", help=VERIFY_HELP)
        p.add_argument("--identity", help="SSH private key for ssh:// devices")
        p.add_argument("--ssh-option", action="append", metavar="OPTION", help="an ssh -o option (repeatable)")
        if fmt:
            p.add_argument("-f", "--format", choices=FORMATS, default="table")
        p.set_defaults(fn=fn)
        return p

    command("capabilities", _capabilities, "capture types, observation points and limits of a device")
    cap = command("capture", _capture, "schedule a capture (and, with --wait or -o, wait for it)")
    cap.add_argument("type", help="netflow, ethernet, linkstats or sensor (see `opentap capabilities`)")
    cap.add_argument("--point", help="observation point, or sensor point for sensor (default: the device's default, "
                                  "the first sensor point)")
    cap.add_argument("--start", default="now", help="now, +10s, UNIX seconds or ISO 8601 (default: now)")
    window = cap.add_mutually_exclusive_group(required=True)
    window.add_argument("--stop", help="like --start")
    window.add_argument("--duration", help="60, 60s, 5m, 1h")
    cap.add_argument("--filter", help="BPF filter (ethernet, netflow)")
    cap.add_argument("--period", type=int, help="sampling period, ms (linkstats, sensor; default 1000)")
    cap.add_argument("--snaplen", type=int, help="bytes kept per packet (ethernet)")
    cap.add_argument("--keep-packets", action="store_true", help="keep the pcap beside the flows (netflow)")
    cap.add_argument("--id", help="your own id for it")
    cap.add_argument("--wait", action="store_true", help="wait until it is over (a progress bar on a terminal)")
    cap.add_argument("-o", "--output", help="wait, then save its data here")
    cap.add_argument("--data-format", choices=("csv", "pcap", "parquet"), help="of the -o file")
    lst = command("captures", _captures, "your captures")
    lst.add_argument("--state", choices=("scheduled", "running", "complete", "truncated", "failed", "cancelled"))
    lst.add_argument("--type")
    command("capture-show", _capture_show, "one capture, all its fields").add_argument("id")
    ret = command("retrieve", _retrieve, "a capture's data, to a file (-o) or standard output", fmt=False)
    ret.add_argument("id")
    ret.add_argument("-o", "--output", help="file to write (parquet when it ends in .parquet)")
    ret.add_argument("--format", dest="data_format", choices=("csv", "pcap", "parquet"),
                     help="default: the type's own (csv for netflow, linkstats and sensor, pcap for ethernet)")
    command("capture-delete", _capture_delete, "cancel a scheduled or running capture, or delete a finished one",
            fmt=False).add_argument("id")
