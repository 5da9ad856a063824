"""How this daemon takes part in a deployment: its datapath (mirrors, and on PostgreSQL tunnels to and from other
hosts), its host's heartbeat, and the notifications other hosts' APIs send it. A SQLite database is one host:
every port is this host's, there are no tunnels and nothing to listen to (DESIGN.md, "Hosts")."""

from __future__ import annotations

import logging

from sqlalchemy.orm import sessionmaker

from opentap.config import Config
from opentap.datapath.base import has_net_admin
from opentap.datapath.tc import TcDriver
from opentap.datapath.tunnels import VxlanDriver
from opentap.db import shared
from opentap.identity import device_id
from opentap.taas.agents import Heartbeat
from opentap.taas.reconcile import Reconciler

log = logging.getLogger("opentap")
QDISC_LEDGER = "clsact-made.json"  # the clsact qdiscs the datapath created, which it removes once empty


def multihost(cfg: Config) -> bool:
    return shared.is_postgres(cfg.database_url)


def datapath_for(sessions: sessionmaker, cfg: Config) -> Reconciler | None:
    """The tc datapath when this process may change tc rules; else tap flows stay DOWN (and say why in the log).
    Its rules carry this device's id, which outlives the database (opentap/identity.py)."""
    if not has_net_admin():
        log.warning("no CAP_NET_ADMIN: tap flows are stored but not mirrored (run the device as root)")
        return None
    owner = device_id(cfg.data_dir)
    mirrors = TcDriver(owner=owner, ledger=cfg.data_dir / QDISC_LEDGER)
    if not multihost(cfg):
        return Reconciler(sessions, mirrors)
    return Reconciler(sessions, mirrors, host=cfg.host, tunnels=VxlanDriver(owner, filters=mirrors.filters),
                      tunnel_ip=cfg.tunnel_ip, down_time=cfg.agent_down_time)


class Deployment:
    """The heartbeat (every daemon, SQLite too: the agents listing shows this host) and, on PostgreSQL, the
    listener that turns another host's NOTIFY into a quick pass here."""

    def __init__(self, sessions: sessionmaker, cfg: Config, reconciler: Reconciler | None) -> None:
        def configurations() -> dict[str, object]:
            counts = reconciler.counts() if reconciler else {}
            return {"tunnel_type": "vxlan", "tunnel_ip": cfg.tunnel_ip, "datapath": reconciler is not None,
                    "shared_database": multihost(cfg), **counts}

        if not multihost(cfg) and cfg.tunnel_ip is not None:  # the "SQLite stays single-host, and says so"
            log.warning("tunnel_ip is set, but the database is SQLite: this device is a deployment of one host, "
                        "with no tunnels (several hosts share one PostgreSQL database_url)")
        # three beats within the down time: one lost beat (a slow database) does not make this host look dead
        self.heartbeat = Heartbeat(sessions, cfg.host, cfg.tunnel_ip, cfg.agent_down_time / 3, configurations)
        self.listener = (shared.Listener(cfg.database_url, reconciler.notified)
                         if reconciler is not None and multihost(cfg) else None)

    def start(self) -> None:
        self.heartbeat.start()
        if self.listener:
            self.listener.start()

    def stop(self) -> None:
        if self.listener:
            self.listener.stop()
        self.heartbeat.stop()
