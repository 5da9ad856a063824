"""Hosts: every daemon sharing a database registers its host (its name, its tunnel address) in `hosts` and keeps a
heartbeat there; the API shows them as Neutron's agents (GET /v2.0/agents, read-only), alive or dead.

A host is alive while its last heartbeat is at most `agent_down_time` old, by the database's clock (db/shared.py):
the hosts' own clocks are never compared. The heartbeat runs in a thread of its own, so a long reconciler pass
does not make a host look dead; what it reports (`configurations`: the tunnel address and type, whether this
host can mirror at all, and the datapath's counts) is read from the reconciler at each beat."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from opentap.db import shared
from opentap.db.models import Base
from opentap.worker import Worker

from .attributes import Attr, Resource, boolean, string

log = logging.getLogger("opentap.agents")

HOSTS = sa.Table(
    "hosts", Base.metadata,
    sa.Column("id", sa.String(36), primary_key=True), sa.Column("host", sa.String(255), nullable=False),
    sa.Column("tunnel_ip", sa.String(64)), sa.Column("configurations", sa.JSON),
    sa.Column("created_at", sa.Float, nullable=False), sa.Column("started_at", sa.Float),
    sa.Column("heartbeat_at", sa.Float), sa.UniqueConstraint("host", name="uq_hosts_host"))

AGENT_TYPE, BINARY, TOPIC = "OpenTap agent", "opentap", "opentap-taas"
# Neutron's agent resource as its API shows it (read-only here: nothing may be POSTed or PUT)
AGENTS = Resource("agents", "agent", "/v2.0", ("AgentNotFound", "Agent {id} could not be found."), (
    Attr("id", string(36), None, sortable=True),
    Attr("agent_type", string(255), None, sortable=True),
    Attr("binary", string(255), None, sortable=True),
    Attr("topic", string(255), None, sortable=True),
    Attr("host", string(255), None, sortable=True),
    Attr("admin_state_up", boolean, None, sortable=True),
    Attr("alive", boolean, None),
    Attr("created_at", string(32), None),
    Attr("started_at", string(32), None),
    Attr("heartbeat_timestamp", string(32), None),
    Attr("description", string(255), None),
    Attr("availability_zone", string(255), None),
    Attr("configurations", dict, None),
    Attr("resources_synced", boolean, None),
))


def agent_time(seconds: float | None) -> str | None:
    """As Neutron shows an agent's times: UTC, '2024-05-01 12:00:00'."""
    return None if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


@dataclass(frozen=True)
class Host:
    """A registered host as an agent judges it: age is the seconds since its last heartbeat (the database's
    clock), None when it never beat."""

    name: str
    tunnel_ip: str | None
    age: float | None
    datapath: bool  # its daemon may change tc rules (runs with CAP_NET_ADMIN)

    def alive(self, down_time: float) -> bool:
        return self.age is not None and self.age <= down_time


def _rows(s: Session) -> list[Any]:
    age = (shared.now(s.get_bind().dialect.name) - HOSTS.c.heartbeat_at).label("age")
    return list(s.execute(sa.select(HOSTS, age).order_by(HOSTS.c.created_at, HOSTS.c.host)))


def hosts(s: Session) -> dict[str, Host]:
    return {r.host: Host(r.host, r.tunnel_ip, r.age, bool((r.configurations or {}).get("datapath")))
            for r in _rows(s)}


def render(row: Any, down_time: float) -> dict[str, Any]:
    return {"id": row.id, "agent_type": AGENT_TYPE, "binary": BINARY, "topic": TOPIC, "host": row.host,
            "admin_state_up": True, "alive": row.age is not None and row.age <= down_time,
            "created_at": agent_time(row.created_at), "started_at": agent_time(row.started_at),
            "heartbeat_timestamp": agent_time(row.heartbeat_at), "description": "", "availability_zone": None,
            "configurations": row.configurations or {}, "resources_synced": None}


def agents(s: Session, down_time: float) -> list[dict[str, Any]]:
    return [render(r, down_time) for r in _rows(s)]


class Heartbeat(Worker):
    """Registers this host, then beats every interval: writes the database's time and the host's configurations.
    A beat that fails (the database restarting) is logged and tried again at the next one; the row is made again
    if someone removed it."""

    thread_name = "heartbeat"

    def __init__(self, sessions: sessionmaker, host: str, tunnel_ip: str | None, interval: float,
                 configurations: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self.sessions, self.host, self.tunnel_ip = sessions, host, tunnel_ip
        self.interval, self.configurations = interval, configurations
        self.started_at = time.time()
        self._failing = False

    def start(self) -> None:
        self.beat()  # registered before the API serves: a listing shows this host at once
        super().start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        try:
            self._beat()
        except SQLAlchemyError as e:
            if not self._failing:
                log.warning("heartbeat of host %s failed (retrying every %.1f s): %s", self.host, self.interval,
                            str(getattr(e, "orig", None) or e).splitlines()[0])
            self._failing = True
            return
        if self._failing:
            log.info("heartbeat of host %s written again", self.host)
        self._failing = False

    def _beat(self) -> None:
        values = {"tunnel_ip": self.tunnel_ip, "configurations": self.configurations(),
                  "started_at": self.started_at}
        for _ in range(2):  # a row another daemon of the same host name inserted meanwhile: update it then
            with self.sessions() as s, s.begin():
                values["heartbeat_at"] = shared.now(s.get_bind().dialect.name)
                done = s.execute(sa.update(HOSTS).where(HOSTS.c.host == self.host).values(**values))
                if done.rowcount:
                    return
                try:
                    with s.begin_nested():
                        s.execute(sa.insert(HOSTS).values(id=str(uuid.uuid4()), host=self.host,
                                                          created_at=time.time(), **values))
                    log.info("host %s registered (tunnel address %s)", self.host, self.tunnel_ip or "none")
                    return
                except IntegrityError:
                    continue
