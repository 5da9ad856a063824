"""VXLAN tunnels between hosts for tap services fed from other hosts: one device per tap service (its tap id is
the VNI) on each host that takes part, through netlink (pyroute2 for links, tcfilters.py for the filter).

Why a device per VNI and not per remote host: this kernel has no `tunnel_key` action and no `act_bpf`, so a
packet's VNI cannot be chosen per packet on an external-mode (collect_metadata) device; it can only be the
device's own. A sending host's mirrors of every source port into one tap service copy into that service's
device, whose single remote is the service's host; the receiving host has one device of the same VNI, which
takes what every sender sends with it, so a service fed from several hosts gets each host's copies once.

- sending: `vxlan id VNI local OURS remote THEIRS dstport PORT nolearning`, up. Frames too large for the
  underlay once encapsulated are fragmented by the underlay's IP (the device leaves DF clear) and reassembled by
  the receiving host: a full-size copy arrives whole, as two outer packets (fits() says where that begins).
- receiving: `vxlan id VNI local OURS dstport PORT nolearning`, up, with on its clsact ingress one bpf filter
  (match-all) whose mirred action redirects (egress) into the tap service's port, with our cookie, at priority
  RECEIVE_PRIO, outside the mirrors' range (so the reconciler's survey never takes it for a mirror).

Ownership: a device is ours when its alias (IFLA_IFALIAS) is "opentap:" + the owner's hex; names are
"ot" + the owner's first 2 bytes in hex + "v" + VNI (at most 15 characters), so two devices on one host name
theirs apart. The alias is set right after the device is made: a device of our exact name without any alias is
one a crash left half-made, and is ours to finish. Anyone else's device is never touched, whatever its name."""

from __future__ import annotations

import contextlib
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from opentap import hostif

from . import cbpf
from .base import SLOTS, Tunnel
from .tc import ETH_P_ALL, HOOKS, PRIO_BASE
from .tcfilters import FilterSocket

VXLAN_PORT = 4789  # IANA's
RECEIVE_PRIO = PRIO_BASE + SLOTS  # 0xFFFF: past the last mirror's priority
# what VXLAN over IPv4 adds to an inner frame (its own Ethernet header included in the frame): outer IPv4 20,
# UDP 8, VXLAN 8. A frame of up to path MTU - 36 bytes fits one outer packet.
ENCAP = 20 + 8 + 8
EEXIST = 17


class TunnelError(OSError):
    pass


class VxlanDriver:
    def __init__(self, owner: bytes, port: int = VXLAN_PORT, filters: FilterSocket | None = None) -> None:
        self.owner, self.port = owner, port
        self.mark = "opentap:" + owner.hex()
        self.prefix = f"ot{owner.hex()[:4]}v"
        self.filters = filters or FilterSocket()

    def name(self, vni: int) -> str:
        return f"{self.prefix}{vni}"

    # --- reading ---------------------------------------------------------------------------------------------
    def _mine(self, name: str) -> bool | None:
        """True: ours; None: our name without any alias (half-made by us); False: not ours, or not there."""
        try:
            alias = (hostif.SYS_NET / name / "ifalias").read_text().strip()
        except OSError:
            return False
        return True if alias == self.mark else None if alias == "" else False

    def tunnels(self) -> dict[int, Tunnel]:
        found: dict[int, Tunnel] = {}
        for name in hostif.present():
            if name.startswith(self.prefix) and name[len(self.prefix):].isdigit() and self._mine(name):
                tunnel = self._read(name)
                if tunnel is not None:
                    found[tunnel.vni] = tunnel
        return found

    def _read(self, name: str) -> Tunnel | None:
        with IPRoute() as ip:
            try:
                link = ip.get_links(ip.link_lookup(ifname=name)[0])[0]
            except (IndexError, NetlinkError):
                return None  # gone meanwhile
        info = link.get_attr("IFLA_LINKINFO")
        data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
        if info is None or info.get_attr("IFLA_INFO_KIND") != "vxlan" or data is None:
            return None
        if data.get_attr("IFLA_VXLAN_PORT") != self.port:
            return None  # a device of ours for another port: not what any tunnel of this driver describes
        deliver = None
        for f in self._dump(link["index"]):
            if f.cookie == self.owner and f.redirect:
                deliver = _ifname(f.target)
        return Tunnel(data.get_attr("IFLA_VXLAN_ID"), data.get_attr("IFLA_VXLAN_LOCAL") or "",
                      data.get_attr("IFLA_VXLAN_GROUP"), deliver, bool(link["flags"] & hostif.IFF_UP))

    def _dump(self, index: int) -> list:
        try:
            return self.filters.dump(index, HOOKS["ingress"], RECEIVE_PRIO, ETH_P_ALL)
        except OSError:
            return []  # no clsact qdisc on it (yet)

    # --- changing ----------------------------------------------------------------------------------------------
    def ensure(self, tunnel: Tunnel) -> bool:
        name = self.name(tunnel.vni)
        mine = self._mine(name)
        have = self._read(name) if mine else None
        if have == tunnel:
            return False
        # anything but the receive filter differs (someone set it down, too): made again
        remade = have is None or (have.vni, have.local, have.remote, have.up) != (tunnel.vni, tunnel.local,
                                                                                 tunnel.remote, tunnel.up)
        if remade:
            if mine is not False:  # ours, or half-made by us: made again from scratch
                self._delete(name)
            self._create(name, tunnel)
        index = socket.if_nametoindex(name)
        for f in self._dump(index):
            if f.cookie == self.owner:
                with contextlib.suppress(OSError):
                    self.filters.delete(index, HOOKS["ingress"], RECEIVE_PRIO, ETH_P_ALL, f.handle)
        if tunnel.deliver is not None:
            target = socket.if_nametoindex(tunnel.deliver)  # OSError: the service's port is not there
            self.filters.add_mirror(index, HOOKS["ingress"], RECEIVE_PRIO, ETH_P_ALL, target, self.owner,
                                    cbpf.program(None), redirect=True)
        return remade

    def _create(self, name: str, tunnel: Tunnel) -> None:
        spec = {"vxlan_id": tunnel.vni, "vxlan_local": tunnel.local, "vxlan_port": self.port, "vxlan_learning": 0}
        if tunnel.remote is not None:
            spec["vxlan_group"] = tunnel.remote
        with IPRoute() as ip:
            try:
                ip.link("add", ifname=name, kind="vxlan", **spec)
            except NetlinkError as e:
                reason = "another device here uses this VNI" if e.code == EEXIST else e.args[-1]
                raise TunnelError(e.code, f"cannot make VXLAN {tunnel.vni} ({name}): {reason}") from None
            index = ip.link_lookup(ifname=name)[0]
            # the mark first, then up: a device that is up is always marked
            ip.link("set", index=index, ifalias=self.mark)
            ip.link("set", index=index, state="up")
        if tunnel.deliver is not None:
            self.filters.add_clsact(index)  # on our own device: it goes with the device

    def remove(self, vni: int) -> None:
        name = self.name(vni)
        if self._mine(name) is not False:
            self._delete(name)

    @staticmethod
    def _delete(name: str) -> None:
        with IPRoute() as ip, contextlib.suppress(IndexError, NetlinkError):  # gone already
            ip.link("del", index=ip.link_lookup(ifname=name)[0])

    def fits(self, tunnel: Tunnel) -> int:
        """The path MTU towards the remote (the route's own MTU, else its device's) less the encapsulation."""
        mtu = 1500
        with IPRoute() as ip, contextlib.suppress(NetlinkError, IndexError):
            route = ip.route("get", dst=tunnel.remote)[0]
            metrics = route.get_attr("RTA_METRICS")
            mtu = (metrics.get_attr("RTAX_MTU") if metrics is not None else None) or _mtu(route.get_attr("RTA_OIF"))
        return mtu - ENCAP


def _ifname(index: int) -> str | None:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None


def _mtu(index: int) -> int:
    name = _ifname(index)
    return (hostif.mtu(name) if name is not None else None) or 1500  # gone meanwhile: Ethernet's


