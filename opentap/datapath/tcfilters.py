"""tc on a plain netlink socket: reading filters back, adding our mirrors with their owner's cookie, and
deleting filters.

dump() is one RTM_GETTFILTER dump, decoding only what tells our mirrors apart (priority, handle, classifier,
the mirred action's target, index and cookie, a bpf program). pyroute2 decodes every attribute of every message
into objects, about 0.3 ms a filter: a full pass over 1,000 mirrors spent seconds there, holding the GIL while
API requests waited. This reads the same dump some 20 times faster.

The requests are built here too because pyroute2 (0.9.7) cannot send an action cookie (TCA_ACT_COOKIE), which
is how a device marks its rules as its own. The layouts are the kernel's uapi (linux/pkt_cls.h, rtnetlink.h,
tc_act/tc_mirred.h)."""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Iterator
from typing import NamedTuple

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWQDISC, RTM_DELQDISC, RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER = 36, 37, 44, 45, 46
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # on an error: request not echoed; extended ack attributes follow
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NLMSGERR_ATTR_MSG = 270, 10, 11, 1
NLA_F_NESTED, NLA_TYPE_MASK = 0x8000, 0x3FFF  # the mask drops the nested / byte-order flags
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_U32_ACT = 7  # the previous version's mirrors were u32 filters: read, never made
TCA_BPF_ACT, TCA_BPF_OPS_LEN, TCA_BPF_OPS = 1, 4, 5
TCA_ACT_KIND, TCA_ACT_OPTIONS, TCA_ACT_STATS, TCA_ACT_COOKIE, TCA_MIRRED_PARMS = 1, 2, 4, 6, 2
TCA_STATS_BASIC = 1  # struct gnet_stats_basic: u64 bytes, u32 packets
TCA_EGRESS_REDIR, TCA_EGRESS_MIRROR = 1, 2
TC_ACT_STOLEN = 4  # a redirect: the packet is taken, nothing after the filter sees it
# "continue": after copying, classification goes on, so a mirror never hides the packet from the filters after
# it (another tap flow's or another device's mirror on the same hook); TC_ACT_PIPE, tc's default, stops there
TC_ACT_UNSPEC = -1
TC_H_CLSACT, CLSACT_HANDLE = 0xFFFFFFF1, 0xFFFF0000
COOKIE_MAX = 16  # TC_COOKIE_MAX_SIZE

HEADER, TCMSG, RTA = struct.Struct("=IHHII"), struct.Struct("=BxxxiIII"), struct.Struct("=HH")
MIRRED = struct.Struct("=IIiiiiI")  # tc_mirred: tc_gen (index, capab, action, refcnt, bindcnt), eaction, ifindex


class Filter(NamedTuple):
    parent: int
    prio: int
    handle: int
    kind: str
    target: int  # the mirred action's interface index; -1: no mirred action
    ops: bytes  # a bpf classifier's classic program; b"" otherwise
    cookie: bytes | None = None  # the mirred action's cookie: whose rule this is (None: nobody said)
    packets: int = 0  # what the mirred action has copied (or redirected) since the filter was made
    redirect: bool = False  # a redirect (the packet moves), not a mirror (a copy moves)

    @property
    def real(self) -> bool:
        """A filter, not a bare header: each priority comes with one (handle 0), and u32 adds its hash table."""
        return bool(self.handle) and (self.kind != "u32" or bool(self.handle & 0xFFF))


def attrs(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, payload start, payload end) of each netlink attribute in buf[start:end]."""
    while start + 4 <= end:
        length, kind = RTA.unpack_from(buf, start)
        if length < 4:
            return
        yield kind & NLA_TYPE_MASK, start + 4, start + length
        start += (length + 3) & ~3


def attr(kind: int, payload: bytes, nested: bool = False) -> bytes:
    return RTA.pack(4 + len(payload), kind | (NLA_F_NESTED if nested else 0)) + payload + bytes(-len(payload) % 4)


def _mirred(buf: bytes, start: int, end: int) -> tuple[int, bytes | None, int, bool]:
    """(target, cookie, packets, redirect) of the first mirred action in a list of actions."""
    for _order, a, b in attrs(buf, start, end):  # one nested attribute per action, by its order
        kind, options, cookie, packets = b"", None, None, 0
        for t, c, d in attrs(buf, a, b):
            if t == TCA_ACT_KIND:
                kind = buf[c:d].rstrip(b"\0")
            elif t == TCA_ACT_OPTIONS:
                options = (c, d)
            elif t == TCA_ACT_COOKIE:
                cookie = buf[c:d]
            elif t == TCA_ACT_STATS:
                for u, e, f in attrs(buf, c, d):
                    if u == TCA_STATS_BASIC and f - e >= 12:
                        packets = struct.unpack_from("=QI", buf, e)[1]
        if kind == b"mirred" and options:
            for t, c, d in attrs(buf, *options):
                if t == TCA_MIRRED_PARMS and d - c >= MIRRED.size:
                    parms = MIRRED.unpack_from(buf, c)
                    return parms[-1], cookie, packets, parms[-2] == TCA_EGRESS_REDIR
    return -1, None, 0, False


def _decode(buf: bytes, start: int, end: int) -> Filter:
    _family, _index, handle, parent, info = TCMSG.unpack_from(buf, start)
    kind, target, ops, cookie, packets, redirect = "", -1, b"", None, 0, False
    for t, a, b in attrs(buf, start + TCMSG.size, end):
        if t == TCA_KIND:
            kind = buf[a:b].rstrip(b"\0").decode()
        elif t == TCA_OPTIONS:
            actions = TCA_U32_ACT if kind == "u32" else TCA_BPF_ACT
            for u, c, d in attrs(buf, a, b):
                if u == actions:
                    target, cookie, packets, redirect = _mirred(buf, c, d)
                elif kind == "bpf" and u == TCA_BPF_OPS:
                    ops = buf[c:d]
    return Filter(parent, info >> 16, handle, kind, target, ops, cookie, packets, redirect)


def mirror_action(target: int, cookie: bytes, redirect: bool = False) -> bytes:
    """A list of one action: mirred egress mirror (or redirect) to target, with our cookie."""
    if not 0 < len(cookie) <= COOKIE_MAX:
        raise ValueError(f"a tc cookie is 1 to {COOKIE_MAX} bytes")
    eaction, verdict = (TCA_EGRESS_REDIR, TC_ACT_STOLEN) if redirect else (TCA_EGRESS_MIRROR, TC_ACT_UNSPEC)
    parms = MIRRED.pack(0, 0, verdict, 0, 0, eaction, target)
    action = attr(TCA_ACT_KIND, b"mirred\0") + attr(TCA_ACT_OPTIONS, attr(TCA_MIRRED_PARMS, parms), nested=True)
    return attr(1, action + attr(TCA_ACT_COOKIE, cookie), nested=True)  # attribute type 1: the first action


def _info(prio: int, protocol: int) -> int:
    return prio << 16 | socket.htons(protocol)


class FilterSocket:
    """Per thread one netlink socket (and sequence number): the API's passes and the full pass's dumps run
    concurrently."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._sockets: list[socket.socket] = []

    def _socket(self) -> tuple[socket.socket, int]:
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = self._local.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)  # errors without a copy of our request
            sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # and with the kernel's reason, for status_reason
            self._sockets.append(sock)
            self._local.seq = 0
        self._local.seq += 1
        return sock, self._local.seq

    def dump(self, ifindex: int, parent: int, prio: int | None = None, protocol: int = 0) -> list[Filter]:
        """The filters on one clsact hook, or only those at one priority (the kernel filters the dump)."""
        info = 0 if prio is None else _info(prio, protocol)
        return self._request(RTM_GETTFILTER, NLM_F_DUMP, TCMSG.pack(socket.AF_UNSPEC, ifindex, 0, parent, info))

    def add_clsact(self, ifindex: int) -> None:
        """A clsact qdisc (OSError EEXIST: there is one already, ours or anyone's)."""
        body = TCMSG.pack(socket.AF_UNSPEC, ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0) + attr(TCA_KIND, b"clsact\0")
        self._request(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)

    def delete_clsact(self, ifindex: int) -> None:
        """Remove the interface's clsact qdisc, and with it every filter on its two hooks (OSError ENOENT or
        EINVAL: there is none). The caller makes sure it is its own and empty (tc.py)."""
        body = TCMSG.pack(socket.AF_UNSPEC, ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0) + attr(TCA_KIND, b"clsact\0")
        self._request(RTM_DELQDISC, NLM_F_ACK, body)

    def add_mirror(self, ifindex: int, parent: int, prio: int, protocol: int, target: int, cookie: bytes,
                   ops: bytes, redirect: bool = False) -> None:
        """A bpf filter running the classic program ops, mirroring (or redirecting) what it matches to target.
        The kernel picks the handle, so the filter joins whatever bpf filters already sit at this priority
        (another device's mirrors) instead of replacing them."""
        options = (attr(TCA_BPF_ACT, mirror_action(target, cookie, redirect), nested=True)
                   + attr(TCA_BPF_OPS_LEN, struct.pack("=H", len(ops) // 8)) + attr(TCA_BPF_OPS, ops))
        body = TCMSG.pack(socket.AF_UNSPEC, ifindex, 0, parent, _info(prio, protocol))
        body += attr(TCA_KIND, b"bpf\0") + attr(TCA_OPTIONS, options, nested=True)
        self._request(RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)

    def delete(self, ifindex: int, parent: int, prio: int, protocol: int, handle: int = 0) -> None:
        """Remove one filter (by handle), or with handle 0 the whole priority whatever its kind, in one request
        (OSError ENOENT: there is none)."""
        if not prio:
            raise ValueError("priority 0 would mean every filter on the hook")
        body = TCMSG.pack(socket.AF_UNSPEC, ifindex, handle, parent, _info(prio, protocol))
        self._request(RTM_DELTFILTER, NLM_F_ACK, body)

    def _request(self, msg_type: int, flags: int, body: bytes) -> list[Filter]:
        sock, seq = self._socket()
        sock.send(HEADER.pack(HEADER.size + len(body), msg_type, NLM_F_REQUEST | flags, seq, 0) + body)
        found: list[Filter] = []
        while True:
            buf = sock.recv(1 << 18)
            at = 0
            while at + HEADER.size <= len(buf):
                length, kind, msg_flags, msg_seq, _pid = HEADER.unpack_from(buf, at)
                if length < HEADER.size:
                    raise OSError(errno.EBADMSG, "a malformed netlink message")
                if msg_seq == seq:
                    if kind == NLMSG_DONE:
                        return found
                    if kind == NLMSG_ERROR:  # an error, or (code 0) the acknowledgement
                        code = -struct.unpack_from("=i", buf, at + HEADER.size)[0]
                        if code:
                            raise OSError(code, _reason(buf, at, length, msg_flags, code))
                        return found
                    found.append(_decode(buf, at + HEADER.size, at + length))
                at += (length + 3) & ~3

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


def _reason(buf: bytes, at: int, length: int, flags: int, code: int) -> str:
    """The errno's name, with the kernel's own message when it gave one (extended ack)."""
    reason = f"tc: {errno.errorcode.get(code, code)}"
    if flags & NLM_F_ACK_TLVS:
        start = at + HEADER.size + 4  # after the error code: the request's header, and its body unless capped
        start += HEADER.size if flags & NLM_F_CAPPED else HEADER.unpack_from(buf, start)[0]
        for t, a, b in attrs(buf, start, at + length):
            if t == NLMSGERR_ATTR_MSG:
                message = buf[a:b].rstrip(b"\0").decode(errors="replace")
                reason += f" ({message})"
    return reason
