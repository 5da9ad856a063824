"""The keys that place a daemon in a deployment of several hosts (DESIGN.md, "Hosts and tunnels"): `host`,
`tunnel_ip` and `agent_down_time`. Apart from config.py only to keep that file readable; config.py calls it."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from opentap.config import NAME_RE, ConfigError, number


def apply(path: Path, raw: dict, cfg: Any) -> None:
    """host (default device_name, so ports made before keep their host), tunnel_ip (an IPv4 address: the tunnels
    are VXLAN over IPv4) and agent_down_time."""
    cfg.host = raw.get("host", cfg.device_name)  # device_name is any text: only a given host is checked
    if "host" in raw and (not isinstance(cfg.host, str) or not NAME_RE.match(cfg.host)):
        raise ConfigError(path, "host", f"must be a host name (letters, digits, '_', '.', '-'; got {cfg.host!r})")
    if "tunnel_ip" in raw:
        try:
            cfg.tunnel_ip = str(ipaddress.IPv4Address(raw["tunnel_ip"]))
        except (ValueError, TypeError):
            raise ConfigError(path, "tunnel_ip", f"must be an IPv4 address (got {raw['tunnel_ip']!r})") from None
    if "agent_down_time" in raw:
        cfg.agent_down_time = number(path, "agent_down_time", raw["agent_down_time"])
