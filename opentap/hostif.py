"""This host's network interfaces: names, existence, state, MAC and addresses, read in one place.

sysfs for what one file answers (fast, no socket), netlink (pyroute2) for addresses."""

from __future__ import annotations

import re
import socket
from pathlib import Path

SYS_NET = Path("/sys/class/net")
IFF_UP = 0x1
# What Linux accepts as an interface name (dev_valid_name: no '/', ':' or C-locale blank, not . or ..), minus
# NUL, which the API boundary refuses anywhere. Spelled out rather than \s, whose Unicode meaning differs between
# Python and the JSON Schema (ECMAScript) regex that the OpenAPI document states it in.
NAME_PATTERN = "^(?!\\.{1,2}$)[^/: \\t\\n\\v\\f\\r\\u0000]{1,15}$"
_NAME = re.compile(NAME_PATTERN[:-1] + "\\Z")  # \Z: Python's $ also matches before a final newline


def valid_name(name: object) -> bool:
    """The one rule for interface names, for the config's observation points and the API's ports alike."""
    return isinstance(name, str) and bool(_NAME.match(name))


def names() -> list[str]:
    """Every interface, in index order."""
    return [name for _idx, name in sorted(socket.if_nameindex()) if valid_name(name)]


def exists(name: str) -> bool:
    return (SYS_NET / name).exists()


def present() -> set[str]:
    """The interfaces there are, in one directory read."""
    return {p.name for p in SYS_NET.iterdir()}


def operstate(name: str) -> str:
    """The kernel's operstate ("up", "down", "unknown", ...), or "absent"."""
    try:
        return (SYS_NET / name / "operstate").read_text().strip()
    except OSError:
        return "absent"


def is_up(name: str) -> bool:
    """Administratively up with a carrier, or with no notion of one (lo says "unknown")."""
    return operstate(name) in ("up", "unknown")


def mtu(name: str) -> int | None:
    """An interface's MTU; None when it does not exist."""
    try:
        return int((SYS_NET / name / "mtu").read_text())
    except (OSError, ValueError):
        return None


def state(name: str) -> tuple[str, bool]:
    """(MAC address, administratively up) of an interface; ("", False) when it does not exist."""
    base = SYS_NET / name
    try:
        mac = (base / "address").read_text().strip()
        up = bool(int((base / "flags").read_text(), 16) & IFF_UP)
    except (OSError, ValueError):
        return "", False
    return mac, up


def addresses(name: str | None = None) -> list[str]:
    """The host's IPv4 and IPv6 addresses (of one interface, if named), without scope suffixes."""
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        query = {}
        if name is not None:
            index = socket.if_nametoindex(name)
            query["index"] = index
        out = []
        for msg in ip.get_addr(**query):
            addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")  # LOCAL: ours on a point-to-point link
            if addr:
                out.append(addr.split("%")[0])
    return list(dict.fromkeys(out))
