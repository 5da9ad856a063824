"""Tap flow and tap service statuses as the reconciler writes them, on one host or across two.

A flow with both ends on one host is judged by that host alone. A flow across hosts has two halves: the source
host's mirror into the tunnel, and the service host's receive path out of it. Each host writes only its own half
(`source_side` or `service_side`: "ok", or why not, naming the host) and the status both make:

- its own half not installable: ERROR with its reason;
- the other end's agent unknown, dead (no heartbeat for `agent_down_time`) or unable to mirror: ERROR naming
  that host;
- else whatever the other half says: ACTIVE when it is "ok" too, ERROR with its reason, DOWN while it has not
  said anything yet.

That last case is computed by the database from the row as it is when the UPDATE runs (a CASE on the other
column), not from what this host read earlier: two hosts finishing their halves at the same moment each wait for
the other's row lock, and PostgreSQL re-evaluates the second UPDATE on the row the first one committed, so the
flow ends ACTIVE rather than DOWN. Hosts go through flows in id order, so their locks never cross."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .agents import Host
from .store import TABLES

log = logging.getLogger("opentap.datapath")
OK = "ok"
REASON_MAX = 255


@dataclass(frozen=True)
class Role:
    """What this host is for a flow: side None = both ends are here; else "source_side" or "service_side", with
    the host of the other end."""

    side: str | None = None
    peer: str | None = None

    @property
    def other(self) -> str:
        return "service_side" if self.side == "source_side" else "source_side"


LOCAL = Role()


def peer_problem(name: str, host: Host | None, down_time: float) -> str | None:
    """Why the other end's host cannot do its half, or None."""
    if host is None:
        return f"host {name} has no agent (no daemon of that host name has registered)"
    if not host.alive(down_time):
        since = "never" if host.age is None else f"for {host.age:.0f} s"
        return f"host {name}: its agent is dead (no heartbeat {since})"
    if not host.datapath:
        return f"host {name} cannot mirror (its daemon runs without CAP_NET_ADMIN)"
    return None


def report(s: Session, flow: Any, role: Role, problem: str | None, me: str, hosts: dict[str, Host],
           down_time: float) -> None:
    """This host's verdict on its part of a flow (problem None: installed and read back)."""
    if role.side is None:
        set_status(s, flow, "ACTIVE" if problem is None else "ERROR", problem)
        return
    assert role.peer is not None
    # a reason that already names a host (the other end's: unknown, no tunnel address) keeps it
    mine = OK if problem is None else (problem if problem.startswith("host ") else f"host {me}: {problem}")
    mine = mine[:REASON_MAX]
    other = getattr(flow, role.other)
    blocked = mine if problem is not None else peer_problem(role.peer, hosts.get(role.peer), down_time)
    if blocked is not None:
        status, reason = "ERROR", blocked[:REASON_MAX]
    else:  # what the database will compute below, from the row as it is by then
        status = "ACTIVE" if other == OK else "DOWN" if other is None else "ERROR"
        reason = other if status == "ERROR" else None
    if (getattr(flow, role.side), flow.status, flow.status_reason) == (mine, status, reason):
        return
    t = TABLES["tap_flows"]
    values: dict[str, Any] = {role.side: mine}
    if blocked is not None:
        values.update(status=status, status_reason=reason)
    else:
        column = t.c[role.other]
        values["status"] = sa.case((column == OK, "ACTIVE"), (column.is_(None), "DOWN"), else_="ERROR")
        values["status_reason"] = sa.case((column == OK, None), (column.is_(None), None), else_=column)
    if status == "ERROR" and flow.status != "ERROR":
        log.warning("tap flow %s: %s", flow.id, reason)
    s.execute(sa.update(t).where(t.c.id == flow.id).values(**values))


def set_status(s: Session, row: Any, status: str, reason: str | None = None, table: str = "tap_flows") -> None:
    """Write a status (and for tap flows its reason) when it changed; an ERROR is logged once, as it starts."""
    t = TABLES[table]
    values: dict[str, Any] = {"status": status}
    if table == "tap_flows":
        values["status_reason"] = None if reason is None else reason[:REASON_MAX]
    if any(getattr(row, k) != v for k, v in values.items()):
        if status == "ERROR":
            log.warning("tap flow %s: %s", row.id, reason)
        s.execute(sa.update(t).where(t.c.id == row.id).values(**values))
