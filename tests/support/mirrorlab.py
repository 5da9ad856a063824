"""What the datapath tests share: a monitoring namespace, counting the copies it receives, and the TaaS calls of
the seed's workflow."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from opentap.pcap import pcapfile

from .netns import A_IP, B_IP, Lan, ip, sysctl

ALICE = {"X-Auth-Token": "tok-alice"}
ADMIN = {"X-Auth-Token": "tok-admin"}


@contextmanager
def monitoring(lan: Lan, name: str = "m") -> Iterator[tuple[str, str]]:
    """A monitoring namespace with interface m0: (namespace, the host end of its link)."""
    ns, host = f"{lan.prefix}{name}", f"{lan.prefix}h{name}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        sysctl("net.ipv6.conf.all.disable_ipv6", "1", ns)
        ip("link", "add", host, "type", "veth", "peer", "name", "m0", "netns", ns)
        sysctl(f"net.ipv6.conf.{host}.disable_ipv6", "1")
        sysctl("net.ipv6.conf.m0.disable_ipv6", "1", ns)
        ip("link", "set", host, "up")
        ip("link", "set", "m0", "up", ns=ns)
        yield ns, host
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        ip("link", "del", host, check=False)


def frame_source(frame: bytes) -> tuple[str, int | None]:
    """(IPv4 source, VLAN id or None) of a captured frame."""
    vlan, offset = None, 12
    if frame[12:14] in (b"\x81\x00", b"\x88\xa8"):
        vlan, offset = int.from_bytes(frame[14:16], "big") & 0x0FFF, 16
    return ".".join(str(b) for b in frame[offset + 14: offset + 18]), vlan


@contextmanager
def copies(ns: str, tmp_path: Path) -> Iterator[dict[tuple[str, int | None], int]]:
    """Counts, by (source address, VLAN id), the UDP copies the monitoring namespace receives inside the block."""
    out = tmp_path / f"m{time.monotonic_ns()}.pcap"
    # --immediate-mode: libpcap otherwise hands packets over in blocks, and the last one is lost at SIGTERM
    # -B 65536 (KiB): a ring for thousands of copies, so that a busy machine that leaves tcpdump unscheduled for a
    # while does not make the kernel drop copies the datapath delivered (the count would then blame the mirror)
    dump = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", "m0", "--immediate-mode", "-U", "-Z", "root",
                             "-B", "65536", "-w", str(out), "udp or (vlan and udp)"], stderr=subprocess.PIPE,
                            text=True)
    counts: dict[tuple[str, int | None], int] = {}
    try:
        assert dump.stderr is not None and "listening on" in dump.stderr.readline()
        yield counts
        time.sleep(0.5)
    finally:
        dump.terminate()
        dump.wait(10)
    report = dump.stderr.read() if dump.stderr else ""
    dropped = re.search(r"(\d+) packets? dropped by kernel", report)
    assert dropped is None or dropped.group(1) == "0", f"tcpdump in {ns} could not keep up: {report}"
    for _ts, _wire, frame in pcapfile.iter_records([out]):
        key = frame_source(frame)
        counts[key] = counts.get(key, 0) + 1


def mirrored(lan: Lan, ns: str, tmp_path: Path) -> dict[str, int]:
    """Send 20 datagrams A->B and 30 B->A; count the copies tcpdump sees in the monitoring namespace, by source."""
    with copies(ns, tmp_path) as seen:
        lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 64)
        lan.run(lan.ns_b, "udp", A_IP, 5001, 30, 64)
    counts = {A_IP: 0, B_IP: 0}
    for (src, _vlan), n in seen.items():
        counts[src] = counts.get(src, 0) + n
    return counts


def make_port(api: Any, name: str, iface: str, project: str = "alice") -> str:
    r = api.post("/v2.0/ports", headers=ADMIN, json={"port": {
        "project_id": project, "name": name, "port_security_enabled": False, "binding:profile": {"interface": iface}}})
    assert r.status_code == 201, r.text
    return r.json()["port"]["id"]


def create(api: Any, kind: str, headers: dict[str, str] = ALICE, **attrs: object) -> dict:
    r = api.post(f"/v2.0/taas/{kind}", headers=headers, json={kind[:-1]: attrs})
    assert r.status_code == 201, r.text
    return r.json()[kind[:-1]]


def wait_status(api: Any, kind: str, obj_id: str, wanted: str, timeout: float = 3) -> dict:
    return wait_for(lambda: api.get(f"/v2.0/taas/{kind}/{obj_id}", headers=ALICE).json()[kind[:-1]],
                    lambda obj: obj["status"] == wanted, timeout)


def wait_for(get: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not done(value := get()):
        assert time.monotonic() < deadline, value
        time.sleep(0.02)
    return value


class TcRule(NamedTuple):
    """One filter as `tc filter show` prints it: read with iproute2, not with the code under test."""
    hook: str
    pref: int
    handle: str
    target: str | None  # the device a mirred action copies to
    cookie: str | None  # hex
    text: str  # everything tc said about it (action index included: the same text is the same kernel object)


def tc_rules(ifname: str) -> list[TcRule]:
    """The filters on an interface's two clsact hooks, without the bare headers tc prints per priority (and the
    hash tables of u32)."""
    rules = []
    for hook in ("ingress", "egress"):
        out = subprocess.run(["tc", "filter", "show", "dev", ifname, hook], capture_output=True, text=True).stdout
        for block in re.split(r"\n(?=filter )", out.strip()):
            handle = re.search(r" (?:fh|handle) (\S+)", block.partition("\n")[0])
            if handle is None or "ht divisor" in block:
                continue
            target, cookie = re.search(r"Mirror to device (\S+)\)", block), re.search(r"cookie ([0-9a-f]+)", block)
            rules.append(TcRule(hook, int(re.search(r"pref (\d+)", block)[1]), handle[1],  # type: ignore[index]
                                target and target[1], cookie and cookie[1], block.strip()))
    return rules
