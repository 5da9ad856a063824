"""Questions asked of a flow index (flowtable.py): which records match a filter, a sorted page of them read
back from the file, and the aggregates a person looks at first (top talkers, ports, protocols over time)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .flowtable import SHOWN, FlowIndex

# well-known ports a person recognises: the label shown beside "UDP/53"
SERVICES = {20: "ftp-data", 21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "dns", 67: "dhcp", 68: "dhcp",
            69: "tftp", 80: "http", 110: "pop3", 123: "ntp", 137: "netbios", 143: "imap", 161: "snmp", 179: "bgp",
            389: "ldap", 443: "https", 445: "smb", 514: "syslog", 587: "submission", 636: "ldaps", 853: "dns-tls",
            993: "imaps", 995: "pop3s", 1194: "openvpn", 1812: "radius", 3306: "mysql", 3389: "rdp", 4789: "vxlan",
            5060: "sip", 5432: "postgresql", 5353: "mdns", 6379: "redis", 6443: "kubernetes", 8080: "http-alt",
            8443: "https-alt", 9092: "kafka", 2020: "opentap"}
PORTED = ("TCP", "UDP", "SCTP", "UDP-L", "DCCP")  # protocols whose records carry ports


@dataclass(frozen=True)
class Filter:
    """Records to keep; None is no condition. Addresses are exact; a port matches either side with `port`."""

    host: str | None = None
    sa: str | None = None
    da: str | None = None
    port: int | None = None
    sp: int | None = None
    dp: int | None = None
    pr: str | None = None
    since: float | None = None  # records that end at or after this UNIX time
    until: float | None = None  # records that start at or before it


def _address(index: FlowIndex, text: str) -> int:
    return index._address_code.get(text.strip(), -1)  # -1: no record has it, so nothing matches


def matching(index: FlowIndex, flt: Filter) -> np.ndarray:
    """The positions of the matching records, in file order."""
    c = index.cols
    mask = np.ones(len(index), dtype=bool)
    if flt.host is not None:
        code = _address(index, flt.host)
        mask &= (c["sa"] == code) | (c["da"] == code)
    for name in ("sa", "da"):
        if getattr(flt, name) is not None:
            mask &= c[name] == _address(index, getattr(flt, name))
    if flt.port is not None:
        mask &= (c["sp"] == flt.port) | (c["dp"] == flt.port)
    for name in ("sp", "dp"):
        if getattr(flt, name) is not None:
            mask &= c[name] == getattr(flt, name)
    if flt.pr is not None:
        wanted = [i for i, name in enumerate(index.protocols) if name.lower() == flt.pr.strip().lower()]
        mask &= np.isin(c["pr"], wanted)
    if flt.since is not None:
        mask &= c["te"] >= int(flt.since)  # ts/te are whole seconds: a record of that second still counts
    if flt.until is not None:
        mask &= c["ts"] <= flt.until
    return np.flatnonzero(mask)


def _sort_key(index: FlowIndex, column: str, rows: np.ndarray) -> np.ndarray:
    if column in ("sa", "da"):  # by address text: the codes' rank in sorted order of their texts
        order = sorted(range(len(index.addresses)), key=lambda i: _address_sort(index.addresses[i]))
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        return rank[index.cols[column][rows]] if len(order) else index.cols[column][rows]
    if column == "pr":
        rank = np.array([name.lower() for name in index.protocols]).argsort().argsort() if index.protocols else None
        return rank[index.cols["pr"][rows]] if rank is not None else index.cols["pr"][rows]
    return index.cols[column][rows]


def _address_sort(text: str) -> tuple[int, tuple[int, ...] | str]:
    """IPv4 before IPv6, each in numeric order (198.18.0.10 after 198.18.0.9)."""
    if text.count(".") == 3 and ":" not in text:
        try:
            return (0, tuple(int(p) for p in text.split(".")))
        except ValueError:
            pass
    return (1, text)


def page(index: FlowIndex, rows: np.ndarray, column: str, descending: bool, offset: int, limit: int,
         flt_key: object = None) -> np.ndarray:
    """The positions of one page of rows sorted by column (ties in file order, either direction). flt_key names
    the filter that chose rows (any hashable), for remembering a whole order."""
    if offset >= len(rows):
        return rows[:0]
    wanted = offset + limit
    if wanted >= len(rows) // 8:  # a page past the first ones: the whole order, worked out once per question
        order = index.remember(("order", column, descending, flt_key),
                               lambda: _order(index, rows, column, descending))
        return rows[order[offset:wanted]]
    key = _sort_key(index, column, rows)
    if descending:
        key = -key.astype(np.float64) if key.dtype.kind == "f" else -key.astype(np.int64)
    # a first page: partition out the smallest keys, then sort only those
    part = np.argpartition(key, wanted - 1)[:wanted]
    bound = key[part].max()
    part = np.flatnonzero(key <= bound)  # every tie at the bound, so that ties keep file order
    order = part[np.argsort(key[part], kind="stable")]
    return rows[order[offset:wanted]]


def _order(index: FlowIndex, rows: np.ndarray, column: str, descending: bool) -> np.ndarray:
    key = _sort_key(index, column, rows)
    if descending:
        key = -key.astype(np.float64) if key.dtype.kind == "f" else -key.astype(np.int64)
    return np.argsort(key, kind="stable")


def _typed(name: str, text: str) -> Any:
    if name in ("sp", "dp", "ipkt", "ibyt", "stos", "svln"):
        try:
            return int(text)
        except ValueError:
            return text
    if name == "td":
        try:
            return float(text)
        except ValueError:
            return text
    return text.strip()


def read_rows(path: Path, index: FlowIndex, positions: np.ndarray) -> list[list[Any]]:
    """The shown columns of the records at these positions, read back from the file."""
    offsets = index.cols["offset"][positions]
    out = []
    with open(path, "rb") as f:
        for at in offsets.tolist():
            f.seek(at)
            fields = f.readline().decode("utf-8", "replace").rstrip("\n").split(",")
            out.append([_typed(name, fields[i]) if i < len(fields) else "" for name, i in SHOWN.items()])
    return out


def _top(keys: np.ndarray, rows: np.ndarray, index: FlowIndex, n: int) -> list[tuple[int, int, int, int]]:
    """(key, bytes, packets, flows) of the n keys with the most bytes among the rows."""
    if not len(rows):
        return []
    if keys.min() >= 0 and keys.max() < 1 << 22:  # dense codes: counted in place, no sort (np.unique sorts)
        inverse = keys.astype(np.int64)
        uniq = np.arange(int(inverse.max()) + 1)
    else:
        uniq, inverse = np.unique(keys, return_inverse=True)
    nbytes = np.bincount(inverse, weights=index.cols["ibyt"][rows].astype(np.float64))
    packets = np.bincount(inverse, weights=index.cols["ipkt"][rows].astype(np.float64))
    flows = np.bincount(inverse)
    present = np.flatnonzero(flows)
    best = present[np.argsort(-nbytes[present], kind="stable")[:n]]
    return [(int(uniq[i]), int(nbytes[i]), int(packets[i]), int(flows[i])) for i in best]


def _app_ports(index: FlowIndex, rows: np.ndarray) -> np.ndarray:
    """A record's application port: the lower of its two ports (a server's port, not a client's ephemeral
    one), for protocols that have ports; 0 for the rest. Combined with the protocol code as pr * 65536 + port."""
    c = index.cols
    sp, dp, pr = c["sp"][rows], c["dp"][rows], c["pr"][rows].astype(np.int64)
    low = np.where((sp > 0) & ((sp < dp) | (dp == 0)), sp, dp)
    ported = np.isin(c["pr"][rows], [i for i, n in enumerate(index.protocols) if n in PORTED])
    return pr * 65536 + np.where(ported, low, 0)


def _port_label(index: FlowIndex, key: int) -> tuple[str, int, str]:
    protocol, port = index.protocols[key // 65536], key % 65536
    if protocol not in PORTED:
        return protocol, 0, protocol
    service = SERVICES.get(port, "")
    return protocol, port, f"{protocol}/{port}" + (f" {service}" if service else "")


def summary(index: FlowIndex, rows: np.ndarray, top: int, buckets: int,
            span: tuple[float, float] | None = None) -> dict[str, Any]:
    """span: the capture's window, which the timeline covers (with every record, should one fall outside it), so
    that a burst shows where in the window it happened."""
    c = index.cols
    ts, te = c["ts"][rows], c["te"][rows]
    first, last = (int(ts.min()), int(te.max())) if len(rows) else (0, 0)
    line_first, line_last = first, last
    if span is not None:
        line_first = min(int(span[0]), first) if len(rows) else int(span[0])
        line_last = max(int(span[1]), last) if len(rows) else int(span[1])
    talkers = [{"address": index.addresses[k], "bytes": b, "packets": p, "flows": f}
               for k, b, p, f in _top(c["sa"][rows], rows, index, top)]
    listeners = [{"address": index.addresses[k], "bytes": b, "packets": p, "flows": f}
                 for k, b, p, f in _top(c["da"][rows], rows, index, top)]
    ports = _app_ports(index, rows)
    top_ports = _top(ports, rows, index, top)
    port_rows = [dict(zip(("protocol", "port", "label"), _port_label(index, k), strict=True))
                 | {"bytes": b, "packets": p, "flows": f} for k, b, p, f in top_ports]
    pr = c["pr"][rows].astype(np.int64)
    top_protocols = _top(pr, rows, index, len(index.protocols))
    protocols = [{"protocol": index.protocols[k], "bytes": b, "packets": p, "flows": f}
                 for k, b, p, f in top_protocols]
    # over time: each record's bytes in the bucket of its start (seconds are nfdump's resolution)
    step = max(1, -(-(line_last + 1 - line_first) // buckets))
    count = max(1, -(-(line_last + 1 - line_first) // step))
    slot = (ts - line_first) // step if len(rows) else ts
    nbytes = c["ibyt"][rows].astype(np.float64)

    def series(keys: np.ndarray, key: int) -> list[int]:
        picked = keys == key
        return np.bincount(slot[picked], weights=nbytes[picked], minlength=count)[:count].astype(np.int64).tolist()

    return {
        "matched": int(len(rows)), "bytes": int(nbytes.sum()), "packets": int(c["ipkt"][rows].sum()),
        "first": first, "last": last, "talkers": talkers, "listeners": listeners, "ports": port_rows,
        "protocols": protocols,
        "timeline": {"start": line_first, "step": step, "buckets": count,
                     "protocols": {index.protocols[k]: series(pr, k) for k, *_ in top_protocols[:top]},
                     "ports": {p["label"]: series(ports, k) for p, (k, *_) in zip(port_rows[:5], top_ports[:5],
                                                                                 strict=True)}},
    }
