"""Which parts of a ring can hold packets that a BPF filter matches, judged from their summaries alone.

This only ever decides what to *skip*: the packets of the parts that are read are then filtered exactly by
libpcap (tcpdump -r). So every answer here must be a superset: when in doubt, "may match". The language
understood is the common part of pcap-filter(7): `host`, `net` (CIDR), `port`, `tcp`/`udp`/`sctp`/`icmp`/
`icmp6`, `ip`/`ip6`, `src`/`dst`, `and`/`or`/`not` and parentheses. A filter with anything else (a byte
offset, `vlan`, which shifts every later primitive, `ether`, a host name, a port name, `portrange`, ...) is
not judged at all: every part may match.

pcap-filter's grammar has `and` and `or` at the same precedence, associating left to right ("a or b and c"
is "(a or b) and c"), and a bare value after `and`/`or` inherits the qualifiers before it ("host a or b");
both are followed here, the second by treating such a value as "may match".
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PROTOS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmp6": 58}
PORT_PROTOS = frozenset({6, 17, 132})
BLOOM_BITS = 32768  # per stretch, when its addresses or ports are too many to list: 4 KiB, ~0.2 % false "may"
BLOOM_HASHES = 4
_TOKEN_RE = re.compile(r"\(|\)|&&|\|\||!|[^\s()!]+")
_ALLOWED_RE = re.compile(r"^[A-Za-z0-9.:/()!&| \t\r\n]*$")  # no offsets, comparisons or arithmetic
_KEYWORDS = {"and", "or", "not", "&&", "||", "!", "(", ")", "host", "net", "port", "src", "dst", "ip", "ip6",
             *PROTOS}


def bloom_positions(key: bytes) -> list[int]:
    """The bits a key sets in a stretch's Bloom filter (double hashing over one BLAKE2b digest)."""
    digest = hashlib.blake2b(key, digest_size=8).digest()
    h1, h2 = int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little") | 1
    return [(h1 + i * h2) % BLOOM_BITS for i in range(BLOOM_HASHES)]


def addr_key(addr: Address) -> bytes:
    return bytes([addr.version]) + addr.packed


def port_key(port: int) -> bytes:
    return b"p" + port.to_bytes(2, "big")


@dataclass(frozen=True)
class Summary:
    """What a stretch of a ring holds. addrs/ports None: too many to list, and then the Bloom filter (if any)
    answers for single addresses and ports (a set bit pattern: "may"); opaque: some packet looks like IP or ARP
    but could not be decoded, so libpcap might match it on any field."""

    addrs: frozenset[str] | None  # as ipaddress writes them (compressed): text is compared, not parsed
    ports: frozenset[int] | None
    protos: frozenset[int]
    opaque: bool
    bloom: bytes | None = None

    def _bloom_has(self, key: bytes) -> bool:
        if self.bloom is None:
            return True
        return all(self.bloom[i >> 3] >> (i & 7) & 1 for i in bloom_positions(key))

    def may_have_addr(self, addr: Address) -> bool:
        return str(addr) in self.addrs if self.addrs is not None else self._bloom_has(addr_key(addr))

    def may_have_port(self, port: int) -> bool:
        return port in self.ports if self.ports is not None else self._bloom_has(port_key(port))


Predicate = Callable[[Summary], bool]


def _always(_s: Summary) -> bool:
    return True


class _Unjudged(Exception):
    """The filter uses something this module does not model: no part can be skipped."""


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise _Unjudged
        self.i += 1
        return tok

    def expr(self) -> Predicate:
        left = self.term()
        while self.peek() in ("and", "&&", "or", "||"):
            op = self.take()
            right = self.term()
            if op in ("and", "&&"):
                left = (lambda a, b: lambda s: a(s) and b(s))(left, right)
            else:
                left = (lambda a, b: lambda s: a(s) or b(s))(left, right)
        return left

    def term(self) -> Predicate:
        tok = self.peek()
        if tok in ("not", "!"):
            self.take()
            self.term()  # parsed for its extent only: "not P" may match wherever any packet is
            return _always
        if tok == "(":
            self.take()
            inner = self.expr()
            if self.take() != ")":
                raise _Unjudged
            return inner
        return self.primitive()

    def primitive(self) -> Predicate:
        proto: str | None = None
        if self.peek() in ("ip", "ip6", *PROTOS):
            proto = self.take()
        if self.peek() in ("src", "dst"):
            self.take()
            if self.peek() in ("or", "and") and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1] in (
                    "src", "dst"):
                self.i += 2  # "src or dst", "src and dst": a direction, not a boolean
            kind = self.peek()
            if kind not in ("host", "net", "port"):
                self._value()  # "src 198.18.0.1" is a host: judged as "may match"
                return _always
        kind = self.peek() if self.peek() in ("host", "net", "port") else None
        if kind is None:
            if proto is not None:  # a protocol alone
                return _always if proto in ("ip", "ip6") else _proto(PROTOS[proto])
            self._value()  # a bare value: it inherits qualifiers from before it
            return _always
        self.take()
        value = self._value()
        if kind == "port":
            if proto in ("ip", "ip6", "icmp", "icmp6") or not value.isdigit() or int(value) > 65535:
                raise _Unjudged
            return _port(int(value), PROTOS[proto] if proto else None)
        if proto not in (None, "ip", "ip6"):
            raise _Unjudged
        if kind == "host":
            return _host(ipaddress.ip_address(value))
        if "/" not in value:
            raise _Unjudged  # "net 10.1" and friends: libpcap's own rules for short forms
        return _net(ipaddress.ip_network(value, strict=False))

    def _value(self) -> str:
        tok = self.take()
        if tok in _KEYWORDS:
            raise _Unjudged
        if not (tok.isdigit() or _is_address(tok)):
            raise _Unjudged  # a name: libpcap resolves it, we would have to guess
        return tok


def _is_address(tok: str) -> bool:
    try:
        if "/" in tok:
            ipaddress.ip_network(tok, strict=False)
        else:
            ipaddress.ip_address(tok)
    except ValueError:
        return False
    return True


def _host(addr: Address) -> Predicate:
    return lambda s: s.opaque or s.may_have_addr(addr)


def _net(net: Network) -> Predicate:
    def may(s: Summary) -> bool:
        if s.opaque or s.addrs is None:
            return True
        return any((a := ipaddress.ip_address(text)).version == net.version and a in net for text in s.addrs)
    return may


def _port(port: int, proto: int | None) -> Predicate:
    wanted = PORT_PROTOS if proto is None else frozenset({proto})

    def may(s: Summary) -> bool:
        return s.opaque or (s.may_have_port(port) and bool(wanted & s.protos))
    return may


def _proto(proto: int) -> Predicate:
    return lambda s: s.opaque or proto in s.protos


def compile_may(expression: str | None) -> tuple[Predicate, bool]:
    """(may_match, judged): may_match(summary) is False only when no packet of that stretch can match;
    judged is False when the filter is beyond this module, and then every stretch may match."""
    if not expression or not expression.strip():
        return _always, False
    if not _ALLOWED_RE.match(expression):
        return _always, False
    tokens = _TOKEN_RE.findall(expression)
    if any(t.isalpha() and t not in _KEYWORDS for t in tokens):
        return _always, False  # a keyword we do not model (arp, ether, vlan, less, proto, ...) or a name
    parser = _Parser(tokens)
    try:
        may = parser.expr()
        if parser.peek() is not None:
            raise _Unjudged
    except (_Unjudged, ValueError):
        return _always, False
    return may, True
