"""Checking a capture request: everything a caller can get wrong is caught here, before any side effect."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from opentap import exportaddr, wire
from opentap.auth import Principal
from opentap.capture import bpf, devicefilter, ringplan, sensor, storage
from opentap.capture.errors import RequestError
from opentap.capture.registry import REGISTRY
from opentap.capture.rings import RingSet
from opentap.config import Config, ObservationPoint

MAX_UNIX_TIME = 4_102_444_800  # 2100-01-01: anything later is a typo (ms instead of s, say)
MAX_SCHEDULE_AHEAD = 366 * 86400
OPTION_LIMITS = {"snaplen": (64, 262144), "period": (10, 3_600_000)}
BLANKS = " \t\r\n\f\v"  # what libpcap's lexer skips
ORIGINAL_ETHERNET_MSG = ("An ethernet capture with a period is the original OpenTap's interface counters capture: "
                         "it runs as linkstats, a CSV with a time column in ms.")
BLANK_FILTER_MSG = "The filter was blank, so no filter is applied: every packet is captured."


@dataclass
class Plan:
    """A checked request: what the engine will insert."""

    type: str
    point: ObservationPoint
    start: float
    stop: float
    id: str | None
    options: dict[str, Any]
    msg: str
    fresh_id_if_taken: bool = False  # the original's call: a taken id gets a fresh one (and says so) instead of a 409


def _time(name: str, value: Any) -> float:
    if value is None or value == "":
        raise RequestError(400, f"'{name}' is required (UNIX seconds)")
    try:
        t = wire.decimal(value)  # JSON true is not a time, nor is ' 1700000000' or '1_700_000_000'
    except wire.WireError:
        raise RequestError(400, f"'{name}' must be UNIX seconds in ASCII digits with an optional '.' fraction, "
                                f"like 1700000000.5 (got {str(value)[:40]!r})") from None
    if not math.isfinite(t) or t < 0 or t > MAX_UNIX_TIME:
        raise RequestError(400, f"'{name}' must be UNIX seconds between 0 and {MAX_UNIX_TIME} (got {value})")
    return t


def _int_option(name: str, value: Any) -> int:
    lo, hi = OPTION_LIMITS[name]
    try:
        n = wire.integer(value)
    except wire.WireError as e:
        raise RequestError(400, f"'{name}' {e}") from None
    if not lo <= n <= hi:
        raise RequestError(400, f"'{name}' must be between {lo} and {hi} (got {n})")
    return n


def _bool_option(name: str, value: Any) -> bool:
    try:
        return wire.query_boolean(value, yes_no=True)
    except wire.WireError as e:
        raise RequestError(400, f"'{name}' {e}") from None


def resolve_point(cfg: Config, who: Principal, kind: str, name: str | None,
                  points: dict[str, ObservationPoint]) -> ObservationPoint:
    if name in (None, "", "0"):
        # the network default is the config's; a sensor capture's is the first sensor point
        name = cfg.default_observation_point if kind == "network" else next(iter(points), None)
        if name is None:
            raise RequestError(400, "this device has no default observation point; name one" if kind == "network"
                               else "this device has no sensor points")
    point = points.get(name)
    # A point the caller may not use is reported exactly like one that does not exist.
    if point is None or not point.usable_by(who.project, who.is_admin):
        usable = sorted(p.name for p in points.values() if p.usable_by(who.project, who.is_admin))
        raise RequestError(400, f"unknown observation point '{name}' (available: {', '.join(usable) or 'none'})")
    return point


def check(cfg: Config, who: Principal, type_name: str, params: dict[str, Any], now: float | None = None,
          points: dict[str, ObservationPoint] | None = None, rings: RingSet | None = None) -> Plan:
    """Validate a request from GET /capture/{type} or POST /captures. Raises RequestError. points: where one
    may capture (default: the config's; the API adds the tap services); rings: the device's, for windows in
    the past."""
    if not who.can_write:
        raise RequestError(403, "your role may read captures but not start them (needs member or admin)")
    msg = ""
    if type_name == "ethernet" and params.get("period") not in (None, ""):
        # the original OpenTap's `ethernet` was the interface's counters every `period` ms: that is linkstats here
        type_name, msg = "linkstats", ORIGINAL_ETHERNET_MSG
    ctype = REGISTRY.get(type_name)
    if ctype is None:
        raise RequestError(400, f"unknown capture type '{type_name}' (supported: {', '.join(REGISTRY)})")
    lower, camel = params.get("observationpt"), params.get("observationPt")
    if lower not in (None, "") and camel not in (None, "") and str(lower) != str(camel):
        raise RequestError(400, "'observationpt' and 'observationPt' name different points; give one")
    point_name = lower if lower not in (None, "") else camel
    # a capture runs on points of its type's kind only: a sensor point is no network point, nor the reverse
    pool = (cfg.sensor_points if ctype.point_kind == "sensor"
            else cfg.observation_points if points is None else points)
    point = resolve_point(cfg, who, ctype.point_kind, None if point_name is None else str(point_name), pool)

    now = time.time() if now is None else now
    start, stop = _time("start", params.get("start")), _time("stop", params.get("stop"))
    ring = ringplan.from_ring(cfg, rings, type_name, point, start, now)
    moved = not ring and int(start) < int(now)  # in whole seconds, as the original: a client's "now" is a moment old
    if moved:
        start = int(now)
        msg = " ".join(m for m in (msg, "Changed startTime to now because it was in the past.") if m)
    if stop <= start:
        raise RequestError(400, "Stop time is earlier than current time." if moved
                           else "Start time is later than stop time." if stop < start
                           else "Start and stop times are equal: the window is empty.")
    if stop - start > cfg.capture_length_limit:
        raise RequestError(400, f"the window of {stop - start:g} s is longer than this device's capture length "
                                f"limit of {cfg.capture_length_limit:g} s")
    if start - now > MAX_SCHEDULE_AHEAD:
        raise RequestError(400, "captures can be scheduled at most 366 days ahead")

    cid = params.get("id")
    if cid not in (None, ""):
        try:
            cid = storage.check_id(str(cid))
        except storage.BadId as e:
            raise RequestError(400, f"bad 'id': {e}") from None
    else:
        cid = None
    options: dict[str, Any] = {}
    for name in ("filter", "snaplen", "period", "keep_packets", "exclude_device_traffic", "export"):
        value = params.get(name)
        if value in (None, ""):
            continue
        if name == "filter" and isinstance(value, str) and not value.strip(BLANKS):
            # libpcap compiles blanks to "capture everything": say so instead of storing a filter that is none
            if name in ctype.options:
                msg = " ".join(m for m in (msg, BLANK_FILTER_MSG) if m)
            continue
        if name not in ctype.options:
            raise RequestError(400, f"option '{name}' does not apply to {type_name} captures")
        if name in ("keep_packets", "exclude_device_traffic"):
            options[name] = _bool_option(name, value)
        elif name == "export":
            options[name] = _export_option(who, value)
        elif name == "filter":
            try:
                options[name] = bpf.check_filter(str(value))
            except bpf.BadFilter as e:
                raise RequestError(400, str(e)) from None
        else:
            options[name] = _int_option(name, value)
    if ring:
        ringplan.check_options(options)
    if "exclude_device_traffic" in ctype.options:
        _device_traffic(cfg, who, options)
    if ctype.point_kind == "sensor":
        msg = " ".join(m for m in (msg, sensor.plan_options(point, options)) if m)
    if "export" in ctype.options and "export" not in options and cfg.export:
        options["export"] = cfg.export  # the operator's default collector
    if options.get("export", "") is None:
        del options["export"]  # an admin's export=none: not even the default
    return Plan(type_name, point, start, stop, cid, options, msg)


def _export_option(who: Principal, value: Any) -> str | None:
    """A collector for a netflow capture's records. Only an admin may name one: a collector address is the
    operator's choice, and a member who could set it could make the device send their project's flows (addresses,
    ports, volumes, times) to any host reachable from it, past whatever guards the API. "none" turns the config's
    default off for this capture (admins too)."""
    if not who.is_admin:
        raise RequestError(403, "only an admin may choose where a capture's flow records are exported (export)")
    if value == "none":
        return None
    try:
        return str(exportaddr.parse(value))
    except exportaddr.ExportError as e:
        raise RequestError(400, f"'export': {e}") from None


def _device_traffic(cfg: Config, who: Principal, options: dict[str, Any]) -> None:
    """Packet captures leave out the device's own API and SSH traffic (other users' tokens travel there); only
    an admin may turn that off, for one capture."""
    if options.pop("exclude_device_traffic", True):
        options["device_filter"] = devicefilter.device_filter(cfg)
        try:
            bpf.check_filter(" and ".join(f"({f})" for f in (options.get("filter"), options["device_filter"]) if f),
                             max_len=None)
        except bpf.BadFilter as e:  # our own part always compiles: the combination is the caller's problem
            raise RequestError(400, str(e)) from None
    elif not who.is_admin:
        raise RequestError(403, "only an admin may capture the device's own API and SSH traffic "
                                "(exclude_device_traffic=false)")
