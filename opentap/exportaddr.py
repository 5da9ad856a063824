"""A flow collector's address: `ipfix://HOST:PORT` (UDP), `ipfix+udp://`, `ipfix+tcp://`, `netflow9://HOST:PORT`
(UDP). Checked in one place for the config's `export` key, a capture's `export` option and the exporter
(opentap/flows/export.py), which sends to it. Syntax only: nothing here resolves or connects."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = {"ipfix": ("ipfix", "udp"), "ipfix+udp": ("ipfix", "udp"), "ipfix+tcp": ("ipfix", "tcp"),
           "netflow9": ("netflow9", "udp"), "netflow9+udp": ("netflow9", "udp")}
DEFAULT_PORTS = {"ipfix": 4739, "netflow9": 2055}
PATTERN = "^(ipfix|ipfix\\+udp|ipfix\\+tcp|netflow9|netflow9\\+udp)://[^/?#@\\s]+$"  # for the OpenAPI document
MAX_LEN = 300


class ExportError(ValueError):
    """A collector address that cannot be used."""


@dataclass(frozen=True)
class Target:
    protocol: str  # "ipfix" or "netflow9"
    transport: str  # "udp" or "tcp"
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = self.protocol if self.transport == "udp" else f"{self.protocol}+{self.transport}"
        return f"{scheme}://{host}:{self.port}"


def parse(url: object) -> Target:
    """The collector a URL names; ExportError saying what is wrong with it. HOST is a name, an IPv4 address, or
    an IPv6 address in brackets; PORT defaults to IPFIX's 4739 or NetFlow's customary 2055."""
    if not isinstance(url, str) or not url or len(url) > MAX_LEN or any(c.isspace() or ord(c) < 32 for c in url):
        raise ExportError(f"not a collector address: {str(url)[:80]!r}")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        if parts.scheme.startswith("netflow9+"):
            raise ExportError("NetFlow v9 is sent over UDP only (RFC 3954); use ipfix+tcp:// for TCP")
        raise ExportError(f"unknown export scheme {parts.scheme!r} in {url!r} (use ipfix://HOST:PORT, "
                          "ipfix+tcp://HOST:PORT or netflow9://HOST:PORT)")
    protocol, transport = SCHEMES[parts.scheme]
    try:
        port = parts.port or DEFAULT_PORTS[protocol]
    except ValueError:
        raise ExportError(f"bad port in {url!r}") from None
    if not parts.hostname or parts.path or parts.query or parts.fragment or parts.username is not None:
        raise ExportError(f"a collector address is SCHEME://HOST:PORT and nothing more (got {url!r})")
    return Target(protocol, transport, parts.hostname, port)
