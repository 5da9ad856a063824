"""Several OpenTap hosts on one machine: network namespaces as hosts on an underlay bridge, each running its own
`opentap serve` inside its namespace (its own data directory, config and Unix socket), all sharing one
PostgreSQL server that listens on the underlay with password authentication; "VMs" are namespaces behind veths
on the hosts, and a monitor namespace sits behind a host's port too.

    root namespace:        <p>u 198.19.<n>.254 (PostgreSQL) --veth-- pg, a port of the switch
    the switch (ns <p>n):  bridge ubridge, its ports pg and u<i> (one per host)
    host i (ns <p>h<i>):   u0 198.19.<n>.<i>/24 --veth-- u<i> (tunnel_ip, the API on :2020 over HTTPS)
                           <name> 198.18.<20+i>.1/24 --veth-- eth0 198.18.<20+i>.2 in ns <p>v<i> (a VM)
                           montap (no address)     --veth-- m0 in ns <p>m (the monitor)

<n> is the pid's, so that two labs (two test runs, a test and the benchmark) never share a subnet in the root
namespace. IPv6 is off and neighbours are static, so the only packets are the tests'. The underlay's bridge is in
a namespace of its own, with bridge-nf-call-iptables (and arp-, ip6-) off there: it stands in for a switch, and in
the root namespace, where br_netfilter's switches are on here (for whoever loaded it), every frame it forwarded,
each tunnelled copy included, went through the host's netfilter hooks, work no switch does and ~2% of all the
CPU in a mirrored run of bench/mirror.py --hosts (perf). The API listens beyond
loopback, so it is HTTPS with a certificate made here (its SAN names the host's address): clients verify it with
`cert`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from opentap import tlscert

from .configs import write_config
from .netns import ip, sysctl

API_PORT = 2020
PASSWORD = "hunter2-opentap"


def in_ns(ns: str, *argv: str, check: bool = True, timeout: float = 30) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], check=check, capture_output=True, text=True,
                          timeout=timeout).stdout


def _netns(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)
    sysctl("net.ipv6.conf.all.disable_ipv6", "1", name)
    sysctl("net.ipv6.conf.default.disable_ipv6", "1", name)
    ip("link", "set", "lo", "up", ns=name)


def _mac(ns: str, dev: str) -> str:
    return in_ns(ns, "cat", f"/sys/class/net/{dev}/address").strip()


@dataclass
class Vm:
    ns: str
    ip: str  # its address
    host_ip: str  # the host's address on the VM's link
    tap: str  # the host end's name, in the host's namespace


@dataclass
class Host:
    name: str  # its host name in the deployment
    ns: str
    tunnel_ip: str
    workdir: Path
    cert: Path
    proc: subprocess.Popen | None = None
    vms: dict[str, Vm] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://{self.tunnel_ip}:{API_PORT}"

    def start(self, database_url: str, **settings: object) -> None:
        conf = write_config(self.workdir, {}, host=self.name, tunnel_ip=self.tunnel_ip, database_url=database_url,
                            listen=f"{self.tunnel_ip}:{API_PORT}", data_dir=str(self.workdir / "data"),
                            socket=str(self.workdir / "opentap.sock"), tls_cert=str(self.cert),
                            tls_key=str(self.workdir / "tls.key"), **settings)
        with open(self.workdir / "daemon.log", "ab") as log:
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-m", "opentap", "serve",
                                          "--config", str(conf)], stdout=subprocess.DEVNULL, stderr=log)

    def wait_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/healthz", verify=str(self.cert), timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc is not None and self.proc.poll() is None, self.log()[-3000:]
            assert time.monotonic() < deadline, f"host {self.name}'s daemon did not come up: {self.log()[-3000:]}"
            time.sleep(0.1)

    def log(self) -> str:
        return (self.workdir / "daemon.log").read_text(errors="replace")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # `ip netns exec` execs the daemon: this is its pid
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # again, if down() sent it already: SIGTERM twice is one clean stop
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def api(self, token: str = "tok-admin") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Auth-Token": token}, verify=str(self.cert), timeout=30)

    def ours(self) -> dict[str, str]:
        """What of OpenTap's is in this host's kernel: VXLAN devices, and tc filters or clsact qdiscs on any
        interface, as iproute2 shows them (interface -> its text), read with iproute2, not the code under test."""
        found = {}
        for line in in_ns(self.ns, "ip", "-o", "-d", "link", "show").splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if " vxlan " in line:
                found[name] = line
            qdiscs = in_ns(self.ns, "tc", "qdisc", "show", "dev", name)
            filters = in_ns(self.ns, "tc", "-s", "filter", "show", "dev", name, "ingress", check=False) + in_ns(
                self.ns, "tc", "-s", "filter", "show", "dev", name, "egress", check=False)
            if "clsact" in qdiscs or filters.strip():
                found[name] = found.get(name, "") + qdiscs + filters
        return found


class Lab:
    """`hosts` hosts (h1, h2, ...), a VM on each host named in `vms` (host -> the VM's name), and the monitor
    behind montap on `monitor_host`. Everything is removed by down(), whatever was made."""

    def __init__(self, workdir: Path, hosts: int = 3, vms: dict[str, str] | None = None, monitor_host: str = "h3",
                 prefix: str | None = None, underlay_mtu: int = 1500, vm_mtu: int = 1500) -> None:
        self.prefix = prefix or f"ot{os.getpid() % 100000}"
        # 1500 both: a VM's full-size frame does not fit one VXLAN packet (DESIGN.md, "MTU"); Neutron gives VMs on
        # VXLAN networks 1450, which does
        self.underlay_mtu, self.vm_mtu = underlay_mtu, vm_mtu
        self.underlay = f"198.19.{os.getpid() % 250}"
        self.pg_ip = f"{self.underlay}.254"  # where PostgreSQL listens for the hosts
        self.workdir = workdir
        self.switch = f"{self.prefix}n"  # the underlay's namespace, with its bridge "ubridge"
        self.pg_link = f"{self.prefix}u"  # the root namespace's link into it, with PostgreSQL's address
        self.hosts = {f"h{i}": Host(f"h{i}", f"{self.prefix}h{i}", f"{self.underlay}.{i}", workdir / f"h{i}",
                                    workdir / f"h{i}" / "tls.crt") for i in range(1, hosts + 1)}
        self.vm_spec = vms if vms is not None else {"h1": "vm1", "h2": "vm2"}
        self.monitor_host = monitor_host
        self.monitor = f"{self.prefix}m"

    def namespaces(self) -> list[str]:
        return [h.ns for h in self.hosts.values()] + [f"{self.prefix}v{name[-1]}" for name in self.vm_spec.values()
                                                      ] + [self.monitor, self.switch]

    def up(self) -> None:
        self.down()
        _netns(self.switch)
        for table in ("iptables", "ip6tables", "arptables"):  # present only while br_netfilter is loaded
            if Path(f"/proc/sys/net/bridge/bridge-nf-call-{table}").exists():
                sysctl(f"net.bridge.bridge-nf-call-{table}", "0", self.switch)
        ip("link", "add", "name", "ubridge", "type", "bridge", ns=self.switch)
        ip("link", "set", "ubridge", "up", ns=self.switch)
        # PostgreSQL's link from the root namespace (port "pg"), then each host's uplink (port u<i>, u0 in the host)
        ip("link", "add", self.pg_link, "type", "veth", "peer", "name", "pg", "netns", self.switch)
        for i, h in enumerate(self.hosts.values(), start=1):
            _netns(h.ns)
            ip("link", "add", f"u{i}", "type", "veth", "peer", "name", "u0", "netns", h.ns, ns=self.switch)
        for port in ["pg"] + [f"u{i}" for i in range(1, len(self.hosts) + 1)]:
            ip("link", "set", port, "master", "ubridge", "mtu", str(self.underlay_mtu), "up", ns=self.switch)
        ip("link", "set", self.pg_link, "mtu", str(self.underlay_mtu), "up")
        sysctl(f"net.ipv6.conf.{self.pg_link}.disable_ipv6", "1")
        ip("addr", "add", f"{self.pg_ip}/24", "dev", self.pg_link)
        for h in self.hosts.values():
            h.workdir.mkdir(parents=True, exist_ok=True)
            tlscert.generate(h.cert, h.workdir / "tls.key", [h.name], [h.tunnel_ip])
            ip("link", "set", "u0", "mtu", str(self.underlay_mtu), ns=h.ns)
            ip("addr", "add", f"{h.tunnel_ip}/24", "dev", "u0", ns=h.ns)
            ip("link", "set", "u0", "up", ns=h.ns)
        for h in self.hosts.values():  # static neighbours on the underlay: no ARP in any count
            for other in self.hosts.values():
                if other is not h:
                    ip("neigh", "replace", other.tunnel_ip, "lladdr", _mac(other.ns, "u0"), "dev", "u0",
                       "nud", "permanent", ns=h.ns)
        for host_name, vm_name in self.vm_spec.items():
            self._vm(self.hosts[host_name], vm_name)
        self._monitor(self.hosts[self.monitor_host])
        time.sleep(0.2)  # let the links settle before anything is counted

    def _vm(self, h: Host, name: str) -> None:
        n = int(name[-1])
        vm = Vm(f"{self.prefix}v{n}", f"198.18.{20 + n}.2", f"198.18.{20 + n}.1", f"{name}tap")
        _netns(vm.ns)
        ip("link", "add", vm.tap, "type", "veth", "peer", "name", "eth0", "netns", vm.ns, ns=h.ns)
        ip("link", "set", vm.tap, "mtu", str(self.vm_mtu), ns=h.ns)
        ip("link", "set", "eth0", "mtu", str(self.vm_mtu), ns=vm.ns)
        ip("addr", "add", f"{vm.host_ip}/24", "dev", vm.tap, ns=h.ns)
        ip("link", "set", vm.tap, "up", ns=h.ns)
        ip("addr", "add", f"{vm.ip}/24", "dev", "eth0", ns=vm.ns)
        ip("link", "set", "eth0", "up", ns=vm.ns)
        ip("neigh", "replace", vm.host_ip, "lladdr", _mac(h.ns, vm.tap), "dev", "eth0", "nud", "permanent", ns=vm.ns)
        ip("neigh", "replace", vm.ip, "lladdr", _mac(vm.ns, "eth0"), "dev", vm.tap, "nud", "permanent", ns=h.ns)
        h.vms[name] = vm

    def _monitor(self, h: Host) -> None:
        _netns(self.monitor)
        ip("link", "add", "montap", "type", "veth", "peer", "name", "m0", "netns", self.monitor, ns=h.ns)
        ip("link", "set", "montap", "up", ns=h.ns)
        ip("link", "set", "m0", "up", ns=self.monitor)

    def start(self, database_url_for: dict[str, str], **settings: object) -> None:
        """Start every host's daemon at once (they migrate the empty database together), then wait for each."""
        for name, h in self.hosts.items():
            h.start(database_url_for[name], **settings)
        for h in self.hosts.values():
            h.wait_up()

    def down(self) -> None:
        for h in self.hosts.values():  # every daemon told first, so that their clean stops overlap
            if h.proc is not None and h.proc.poll() is None:
                h.proc.terminate()
        for h in self.hosts.values():
            h.stop()
        for ns in self.namespaces():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        ip("link", "del", self.pg_link, check=False)  # gone with its peer in the switch's namespace, normally
