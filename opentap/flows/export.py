"""Sending flow records to a standard collector: IPFIX (RFC 7011) over UDP or TCP, or NetFlow v9 (RFC 3954) over
UDP, as softflowd does, so that nfcapd, pmacct, ElastiFlow or any flow pipeline can take the meter's records.

`Exporter.open("ipfix://host:4739")` (also `ipfix+udp://`, `ipfix+tcp://`, `netflow9://host:2055`); `send(flows)`
encodes each record (ipfix.py) into as few messages as fit (1,400 bytes over UDP, so that no datagram is
fragmented on an Ethernet path; 64 KiB over TCP) and sends them. Templates go first, then, over UDP, again every
TEMPLATE_REFRESH seconds or TEMPLATE_EVERY messages (RFC 7011 section 8.4: a collector that starts later, or lost a
datagram, must learn them again); over TCP once per connection (section 8.3). Sequence numbers: IPFIX counts data
records, NetFlow v9 counts messages, as each RFC says, so a collector counts what UDP lost.

A network error never stops metering: the records that could not be sent are counted (`lost`), and a TCP
connection is tried again at most every RECONNECT seconds.
"""

from __future__ import annotations

import socket
import time

from opentap.exportaddr import ExportError, Target, parse

from . import ipfix
from .meter import Flows

__all__ = ["ExportError", "Exporter", "Target", "parse"]

UDP_MESSAGE = 1400  # an Ethernet MTU less IP and UDP headers, with room to spare for tunnels
TCP_MESSAGE = 65535  # IPFIX's length field
TEMPLATE_REFRESH = 60.0  # seconds, over UDP
TEMPLATE_EVERY = 1000  # messages, over UDP
RECONNECT = 10.0  # seconds between TCP connection attempts
SEND_TIMEOUT = 10.0


class Exporter:
    def __init__(self, target: Target, domain: int = 1) -> None:
        self.target = target
        self.encoder = ipfix.Encoder(target.protocol, domain)
        self.max_message = UDP_MESSAGE if target.transport == "udp" else TCP_MESSAGE
        self.sock: socket.socket | None = None
        self.records = self.messages = self.lost = self.errors = 0
        self.last_error = ""
        self._templates_at = 0.0  # when templates were last sent (UDP)
        self._since_templates = 0  # messages since then
        self._connect_at = 0.0
        self._address = self._resolve()

    @classmethod
    def open(cls, url: str, domain: int = 1) -> Exporter:
        """Resolve and (TCP) connect: an address that cannot be used is an error here, not later."""
        exporter = cls(parse(url), domain)
        if not exporter._connect():
            raise ExportError(f"cannot reach the collector at {exporter.target}: {exporter.last_error}")
        return exporter

    def _resolve(self) -> tuple:
        kind = socket.SOCK_DGRAM if self.target.transport == "udp" else socket.SOCK_STREAM
        try:
            infos = socket.getaddrinfo(self.target.host, self.target.port, type=kind)
        except OSError as e:
            raise ExportError(f"cannot resolve the collector {self.target.host}: {e.strerror or e}") from None
        family, _type, proto, _name, address = infos[0]
        return family, kind, proto, address

    def _connect(self) -> bool:
        family, kind, proto, address = self._address
        self._connect_at = time.monotonic()
        try:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(SEND_TIMEOUT)
            if kind == socket.SOCK_DGRAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
            sock.connect(address)  # UDP too: the kernel then reports a collector that is not listening
        except OSError as e:
            self.last_error = e.strerror or str(e)
            return False
        self.sock = sock
        self._templates_at, self._since_templates = 0.0, 0  # a new TCP session starts with templates
        return True

    def _templates_due(self) -> bool:
        if self._templates_at == 0.0:
            return True
        if self.target.transport == "tcp":
            return False
        return (self._since_templates >= TEMPLATE_EVERY
                or time.monotonic() - self._templates_at >= TEMPLATE_REFRESH)

    def send(self, flows: Flows) -> None:
        """Send the records; count what could not be sent. Never raises for the network's sake."""
        records = self.encoder.records(flows)
        at = 0
        while at < len(records):
            if self.sock is None and (self.target.transport == "udp" or
                                      time.monotonic() - self._connect_at < RECONNECT or not self._connect()):
                self.lost += len(records) - at
                return
            with_templates = self._templates_due()
            message, taken = self.encoder.message(records, at, self.max_message, with_templates)
            try:
                assert self.sock is not None
                self.sock.sendall(message) if self.target.transport == "tcp" else self.sock.send(message)
            except OSError as e:
                self.errors += 1
                self.last_error = e.strerror or str(e)
                self.lost += taken
                if self.target.transport == "tcp":  # a broken session: templates again on the next one
                    self.sock.close()
                    self.sock = None
                at += taken
                continue
            if with_templates:
                self._templates_at, self._since_templates = time.monotonic(), 0
            self._since_templates += 1
            self.messages += 1
            self.records += taken
            at += taken

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def stats(self) -> dict[str, int]:
        return {"export_records": self.records, "export_messages": self.messages, "export_lost": self.lost,
                "export_errors": self.errors}

    def describe(self) -> str:
        lost = f", {self.lost} lost ({self.last_error})" if self.lost else ""
        return f"{self.records} records in {self.messages} messages{lost}"
