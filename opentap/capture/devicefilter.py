"""The filter every packet capture gets unless an admin turns it off: it leaves out the device's own API and
SSH traffic. Without it a capture would hold other users' tokens on their way to the API, and a retrieve over
the same interface would feed the very capture it is reading.

Only traffic to or from the device's own addresses on its API and SSH ports is left out, so the same ports
between other machines (on a mirrored port, say) are still captured."""

from __future__ import annotations

from opentap import hostif
from opentap.config import Config

WILDCARDS = ("0.0.0.0", "::")


def _hosts(addresses: list[str]) -> str:
    return " or ".join(f"host {a}" for a in addresses)


def device_filter(cfg: Config) -> str:
    """A BPF expression matching everything but the device's own API and SSH conversations."""
    mine = hostif.addresses()
    api = mine if cfg.listen_host in WILDCARDS else ["127.0.0.1" if cfg.listen_host == "localhost" else cfg.listen_host]
    parts = [f"(port {cfg.listen_port} and ({_hosts(api)}))"]
    if mine:
        parts.append(f"(port {cfg.ssh_port} and ({_hosts(mine)}))")
    return f"not (tcp and ({' or '.join(parts)}))"
