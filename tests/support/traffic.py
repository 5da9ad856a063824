"""Test traffic, run inside a network namespace with `ip netns exec NS python traffic.py ...`.

Every loop is bounded in count and time. Prints a JSON summary of what was sent.
  udp DST PORT COUNT PAYLOAD [RATE]   COUNT datagrams of PAYLOAD bytes (RATE per second, if given)
  icmp DST COUNT                  COUNT echo requests (raw socket), waits for the replies
  tcpserve PORT SECONDS           accept one connection, read it to the end, close
  tcp DST PORT BYTES              connect, send BYTES, close
  frames IFACE SRC DST VLAN COUNT  COUNT raw UDP frames out of IFACE, 802.1Q-tagged with VLAN (or "none")
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def udp(dst: str, port: int, count: int, payload: int, rate: float = 0) -> dict:
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(count):
            s.sendto(bytes([i % 256]) * payload, (dst, port))
            if rate:  # a steady stream: datagram i leaves at start + i / rate
                time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
            elif i % 100 == 99:
                time.sleep(0.001)  # keep well inside socket buffers
    return {"sent": count}


def icmp(dst: str, count: int) -> dict:
    replies = 0
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        s.settimeout(2)
        ident = os.getpid() & 0xFFFF
        for seq in range(count):
            hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"opentap-test"
            s.sendto(hdr[:2] + struct.pack("!H", checksum(hdr)) + hdr[4:], (dst, 0))
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                data = s.recv(2048)
                ihl = (data[0] & 0x0F) * 4
                if data[ihl] == 0 and struct.unpack("!HH", data[ihl + 4: ihl + 8]) == (ident, seq):
                    replies += 1
                    break
    return {"sent": count, "replies": replies}


def tcpserve(port: int, seconds: float) -> dict:
    total = 0
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(1)
        srv.settimeout(seconds)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(seconds)
            while chunk := conn.recv(65536):
                total += len(chunk)
    return {"received": total}


def tcp(dst: str, port: int, nbytes: int) -> dict:
    deadline = time.monotonic() + 5
    while True:  # the server in the other namespace may not be listening yet
        try:
            s = socket.create_connection((dst, port), timeout=5)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with s:
        s.sendall(b"x" * nbytes)
    return {"sent": nbytes}


def tagged_frame(vlan: int | None, src: str, dst: str) -> bytes:
    """An Ethernet frame carrying a UDP datagram, with an inline 802.1Q tag when vlan is given."""
    udp = struct.pack("!HHHH", 4000, 4001, 8 + 16, 0) + bytes(16)
    ipv4 = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(src),
                       socket.inet_aton(dst))
    tag = b"" if vlan is None else struct.pack("!HH", 0x8100, vlan)
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02" + tag + b"\x08\x00" + ipv4 + udp


def frames(iface: str, src: str, dst: str, vlan: int | str, count: int) -> dict:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((iface, 0))
        for _ in range(count):
            s.send(tagged_frame(None if vlan == "none" else int(vlan), src, dst))
    return {"sent": count}


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"udp": udp, "icmp": icmp, "tcpserve": tcpserve, "tcp": tcp, "frames": frames}[cmd]
    conv = [int(a) if a.isdigit() else (float(a) if a.replace(".", "", 1).isdigit() else a) for a in args]
    print(json.dumps(fn(*conv)))
