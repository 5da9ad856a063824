"""tc filters on a plain netlink socket: reading them back, and deleting one priority's.

dump() is one RTM_GETTFILTER dump, decoding only what tells our mirrors apart (priority, classifier, mirred
target, bpf program). pyroute2 decodes every attribute of every message into objects, about 0.3 ms a filter:
a full pass over 1,000 mirrors spent seconds there, holding the GIL while API requests waited. This reads the
same dump some 20 times faster.

delete() removes whatever classifier sits at a priority in one request; pyroute2 needs the kind named (and
the kernel refuses a wrong one), so removing a mirror took a guess per kind and hook."""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Iterator
from typing import NamedTuple

RTM_DELTFILTER, RTM_GETTFILTER, NLMSG_ERROR, NLMSG_DONE = 45, 46, 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_U32_ACT, TCA_BPF_ACT, TCA_BPF_OPS = 7, 1, 5
TCA_ACT_KIND, TCA_ACT_OPTIONS, TCA_MIRRED_PARMS = 1, 2, 2
NLA_TYPE_MASK = 0x3FFF  # without the nested / byte-order flags
HEADER, TCMSG, RTA = struct.Struct("=IHHII"), struct.Struct("=BxxxiIII"), struct.Struct("=HH")
MIRRED_IFINDEX = struct.Struct("=I")  # tc_mirred: tc_gen (index, capab, action, refcnt, bindcnt), eaction, ifindex
MIRRED_IFINDEX_AT = 24


class Filter(NamedTuple):
    parent: int
    prio: int
    handle: int
    kind: str
    target: int  # the mirred action's interface index; -1: no mirred action
    ops: bytes  # a bpf classifier's classic program; b"" otherwise


def attrs(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, payload start, payload end) of each netlink attribute in buf[start:end]."""
    while start + 4 <= end:
        length, kind = RTA.unpack_from(buf, start)
        if length < 4:
            return
        yield kind & NLA_TYPE_MASK, start + 4, start + length
        start += (length + 3) & ~3


def _mirred_target(buf: bytes, start: int, end: int) -> int:
    for _prio, a, b in attrs(buf, start, end):  # one nested attribute per action, by its order
        kind, options = b"", None
        for t, c, d in attrs(buf, a, b):
            if t == TCA_ACT_KIND:
                kind = buf[c:d].rstrip(b"\0")
            elif t == TCA_ACT_OPTIONS:
                options = (c, d)
        if kind == b"mirred" and options:
            for t, c, d in attrs(buf, *options):
                if t == TCA_MIRRED_PARMS and d - c >= MIRRED_IFINDEX_AT + 4:
                    return MIRRED_IFINDEX.unpack_from(buf, c + MIRRED_IFINDEX_AT)[0]
    return -1


def _decode(buf: bytes, start: int, end: int) -> Filter:
    _family, _index, handle, parent, info = TCMSG.unpack_from(buf, start)
    kind, target, ops = "", -1, b""
    for t, a, b in attrs(buf, start + TCMSG.size, end):
        if t == TCA_KIND:
            kind = buf[a:b].rstrip(b"\0").decode()
        elif t == TCA_OPTIONS:
            actions = TCA_U32_ACT if kind == "u32" else TCA_BPF_ACT
            for u, c, d in attrs(buf, a, b):
                if u == actions:
                    target = _mirred_target(buf, c, d)
                elif kind == "bpf" and u == TCA_BPF_OPS:
                    ops = buf[c:d]
    return Filter(parent, info >> 16, handle, kind, target, ops)


class FilterSocket:
    """Per thread one netlink socket (and sequence number), as the driver's pyroute2 sockets."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._sockets: list[socket.socket] = []

    def _socket(self) -> tuple[socket.socket, int]:
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = self._local.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._sockets.append(sock)
            self._local.seq = 0
        self._local.seq += 1
        return sock, self._local.seq

    def dump(self, ifindex: int, parent: int, prio: int | None = None, protocol: int = 0) -> list[Filter]:
        """The filters on one clsact hook, or only those at one priority (the kernel filters the dump)."""
        info = 0 if prio is None else prio << 16 | socket.htons(protocol)
        return self._request(RTM_GETTFILTER, NLM_F_DUMP, TCMSG.pack(socket.AF_UNSPEC, ifindex, 0, parent, info))

    def delete(self, ifindex: int, parent: int, prio: int, protocol: int) -> None:
        """Remove the classifier at this priority, of whatever kind (OSError ENOENT: there is none)."""
        if not prio:
            raise ValueError("priority 0 would mean every filter on the hook")
        info = prio << 16 | socket.htons(protocol)
        self._request(RTM_DELTFILTER, NLM_F_ACK, TCMSG.pack(socket.AF_UNSPEC, ifindex, 0, parent, info))

    def _request(self, msg_type: int, flags: int, body: bytes) -> list[Filter]:
        sock, seq = self._socket()
        sock.send(HEADER.pack(HEADER.size + len(body), msg_type, NLM_F_REQUEST | flags, seq, 0) + body)
        found: list[Filter] = []
        while True:
            buf = sock.recv(1 << 18)
            at = 0
            while at + HEADER.size <= len(buf):
                length, kind, _flags, msg_seq, _pid = HEADER.unpack_from(buf, at)
                if length < HEADER.size:
                    raise OSError(errno.EBADMSG, "a malformed netlink message")
                if msg_seq == seq:
                    if kind == NLMSG_DONE:
                        return found
                    if kind == NLMSG_ERROR:  # an error, or (code 0) the acknowledgement
                        code = -struct.unpack_from("=i", buf, at + HEADER.size)[0]
                        if code:
                            raise OSError(code, f"tc filters: {errno.errorcode.get(code, code)}")
                        return found
                    found.append(_decode(buf, at + HEADER.size, at + length))
                at += (length + 3) & ~3

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
