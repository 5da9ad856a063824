"""TaaS state: one table per resource, built from its attribute declarations, and the operations on them.

Ownership and cascades are Neutron's: another project's object does not exist for a non-admin (404), a tap
service's port and a tap flow's source port and tap service must be the creator's project's, deleting a port
deletes the tap services on it and the tap flows from it, and deleting a tap service deletes its tap flows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from opentap import hostif
from opentap.auth import Principal
from opentap.config import ObservationPoint
from opentap.datapath.base import SLOTS
from opentap.db import shared
from opentap.db.models import Base

from . import errors, revision
from .attributes import PORTS, RESOURCES, TAP_FLOWS, TAP_SERVICES, Resource

COLUMN_TYPES: dict[str, Callable[[], sa.types.TypeEngine]] = {
    "uuid": lambda: sa.String(36), "name": lambda: sa.String(255), "status": lambda: sa.String(16),
    "direction": lambda: sa.String(4), "vlan_filter": lambda: sa.String(1024), "bool": sa.Boolean,
    "json": sa.JSON, "int": sa.Integer, "time": sa.Float,  # time: UNIX seconds, shown as Neutron's UTC text
}
REQUIRED_COLUMNS = ("id", "created_at")
REVISION_TRIES = 5  # a port update overtaken this many times by concurrent ones gives up (409)


def _table(res: Resource) -> sa.Table:
    columns = [sa.Column(a.column_name, COLUMN_TYPES[a.column](), primary_key=a.name == "id",
                         nullable=a.name not in REQUIRED_COLUMNS) for a in res.attrs if a.column is not None]
    if "created_at" not in res.by_name:  # every row has its creation time; ports show it, the others sort by it
        columns.append(sa.Column("created_at", sa.Float, nullable=False))
    return sa.Table(res.collection, Base.metadata, *columns, sa.Index(f"ix_{res.collection}_project_id", "project_id"))


TABLES = {res.collection: _table(res) for res in RESOURCES}


def interface_state(name: str) -> tuple[str, str]:
    """(mac_address, status) of a host interface as a port shows them: ACTIVE when it exists and is up."""
    mac, up = hostif.state(name)
    return mac, "ACTIVE" if up else "DOWN"


def observation_points(s: Session, who: Principal) -> dict[str, ObservationPoint]:
    """The caller's tap services (an admin's: all) as observation points on their ports' interfaces, by id, and
    by name when they have one (a capture there records what the tap service receives). Only the caller's, so
    that another project's tap service of the same name cannot hide the caller's own."""
    services, ports = TABLES["tap_services"], TABLES["ports"]
    query = (sa.select(services.c.id, services.c.name, services.c.project_id, ports.c.binding_profile)
             .join(ports, ports.c.id == services.c.port_id).order_by(services.c.created_at))
    if not who.is_admin:
        query = query.where(services.c.project_id == who.project)
    rows = s.execute(query)
    points: dict[str, ObservationPoint] = {}
    for ts_id, name, project, profile in rows:
        # one point per tap service, listed by its name (by its id when it has none, or the name is taken),
        # and found by either
        point = ObservationPoint(name if name and name not in points else ts_id, profile["interface"], (project,))
        for key in (ts_id, name):
            if key:
                points.setdefault(key, point)
    return points


def owners(s: Session) -> set[str]:
    """The projects that own a port, a tap service or a tap flow."""
    return {project for table in TABLES.values() for (project,) in s.execute(sa.select(table.c.project_id).distinct())}


def timestamp(seconds: float) -> str:
    """UNIX seconds as Neutron shows its times: UTC, to the second, 2024-05-01T12:00:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def render(res: Resource, row: Any, here: str | None = None) -> dict[str, Any]:
    """A row as clients see it: visible attributes only, tenant_id beside project_id. here: this host's name
    when the deployment has several; a port bound to another host has an interface this one cannot read, so its
    mac_address is empty and its status Neutron's "N/A"."""
    data = {a.name: getattr(row, a.column_name) for a in res.attrs if a.column is not None and a.visible}
    data["tenant_id"] = data["project_id"]
    if res is PORTS:
        elsewhere = here is not None and data["binding:host_id"] != here
        data["mac_address"], data["status"] = ("", "N/A") if elsewhere else interface_state(
            data["binding:profile"]["interface"])
        data["created_at"], data["updated_at"] = timestamp(row.created_at), timestamp(row.updated_at)
        data["tags"] = []
    return {a.name: data[a.name] for a in res.attrs if a.visible}


class TaasStore:
    def __init__(self, tap_ids: tuple[int, int] = (1, 4094), pending_delete: bool = False,
                 host: str = "localhost", shared: bool = False) -> None:
        self.tap_ids = tap_ids
        self.pending_delete = pending_delete  # a datapath runs: a tap flow's row goes once its rules are gone
        self.host = host  # a port's binding:host_id unless its creator names another: this host's name
        # several hosts share the database: changes are announced to the hosts they concern, ports elsewhere are
        # shown as such, and a flow's row waits for its source's host to remove its mirror
        self.multihost = shared
        self.here = host if shared else None  # render()'s: ports elsewhere are not read here

    # --- reads -----------------------------------------------------------------------------------------------
    def rows(self, s: Session, res: Resource, who: Principal) -> list[Any]:
        table = TABLES[res.collection]
        query = sa.select(table).order_by(table.c.created_at, table.c.id)
        if not who.is_admin:
            query = query.where(table.c.project_id == who.project)
        return list(s.execute(query))

    def row(self, s: Session, res: Resource, obj_id: str, who: Principal) -> Any:
        table = TABLES[res.collection]
        found = s.execute(sa.select(table).where(table.c.id == obj_id)).first()
        if found is None or not who.owns(found.project_id):
            raise errors.not_found(res.not_found[0], res.not_found[1].format(id=obj_id))
        return found

    # --- writes ----------------------------------------------------------------------------------------------
    def create(self, s: Session, res: Resource, item: dict[str, Any], who: Principal,
               wanted: int | None = None) -> dict[str, Any]:
        """wanted: an If-Match revision (revision.py), which a create of a resource without revisions refuses."""
        revision.enforce(res, wanted)
        values = {res.by_name[k].column_name: v for k, v in item.items()}
        values.update(id=str(uuid.uuid4()), created_at=time.time())
        if res is PORTS:
            values.update(revision_number=1, updated_at=values["created_at"])
            values["binding_host_id"] = values["binding_host_id"] or self.host
        elif res is TAP_SERVICES:
            self._own_port(s, item["port_id"], item["project_id"], who)
            values.update(status="DOWN", tap_id=self._free_number(s, TABLES["tap_services"].c.tap_id,
                                                                  *self.tap_ids, errors.tap_ids_exhausted))
        elif res is TAP_FLOWS:
            service = self.row(s, TAP_SERVICES, item["tap_service_id"], who)
            if service.project_id != item["project_id"]:
                raise errors.tap_service_not_owned()
            self._own_port(s, item["source_port"], item["project_id"], who)
            values.update(status="DOWN", slot=self._free_number(s, TABLES["tap_flows"].c.slot, 0, SLOTS - 1,
                                                                errors.mirror_slots_exhausted))
        s.execute(sa.insert(TABLES[res.collection]).values(**values))
        if res is TAP_SERVICES:
            self._notify(s, ports={item["port_id"]})
        elif res is TAP_FLOWS:
            self._notify(s, flows={values["id"]})
        return render(res, self.row(s, res, values["id"], who), self.here)

    # update and delete: the caller has already read the object with row() in this transaction (the API does,
    # so that another project's object is a 404 before any 403)
    def update(self, s: Session, res: Resource, obj_id: str, changes: dict[str, Any], who: Principal,
               wanted: int | None = None) -> dict[str, Any]:
        table = TABLES[res.collection]
        values = {res.by_name[k].column_name: v for k, v in changes.items()}
        if res is not PORTS:
            revision.enforce(res, wanted)
            if values:
                s.execute(sa.update(table).where(table.c.id == obj_id).values(**values))
            return render(res, self.row(s, res, obj_id, who), self.here)
        for _ in range(REVISION_TRIES):
            before = self.row(s, res, obj_id, who)
            revision.enforce(res, wanted, before)
            if all(getattr(before, k) == v for k, v in values.items()):  # as Neutron: no change, no new revision
                return render(res, before, self.here)
            self._notify(s, ports={obj_id})  # the hosts concerned before the change: the old host too
            # compare and swap: an update that another one overtook changes nothing here, and is tried again
            bumped = {**values, "revision_number": before.revision_number + 1, "updated_at": time.time()}
            done = s.execute(sa.update(table).where(table.c.id == obj_id, table.c.revision_number ==
                                                    before.revision_number).values(**bumped))
            if done.rowcount:
                if before.binding_host_id != values.get("binding_host_id", before.binding_host_id):
                    self._rebound(s, obj_id)
                self._notify(s, ports={obj_id})
                return render(res, self.row(s, res, obj_id, who), self.here)
        raise errors.NeutronError(409, "Conflict", f"Port {obj_id} is being changed by other requests; try again")

    def delete(self, s: Session, res: Resource, obj_id: str, wanted: int | None = None) -> None:
        services, flows, table = TABLES["tap_services"], TABLES["tap_flows"], TABLES[res.collection]
        if wanted is not None:
            revision.enforce(res, wanted, s.execute(sa.select(table).where(table.c.id == obj_id)).first())
        self._notify(s, **{{PORTS: "ports", TAP_SERVICES: "services", TAP_FLOWS: "flows"}[res]: {obj_id}})
        if res is PORTS:
            on_port = [r.id for r in s.execute(sa.select(services.c.id).where(services.c.port_id == obj_id))]
            s.execute(sa.delete(flows).where(flows.c.tap_service_id.in_(on_port) | (flows.c.source_port == obj_id)))
            s.execute(sa.delete(services).where(services.c.port_id == obj_id))
        elif res is TAP_SERVICES:
            s.execute(sa.delete(flows).where(flows.c.tap_service_id == obj_id))
        elif res is TAP_FLOWS and self.pending_delete:
            s.execute(sa.update(flows).where(flows.c.id == obj_id).values(status="PENDING_DELETE"))
            return
        s.execute(sa.delete(table).where(table.c.id == obj_id))

    def _notify(self, s: Session, ports: set[str] = frozenset(), services: set[str] = frozenset(),
                flows: set[str] = frozenset()) -> None:
        """NOTIFY the hosts a change concerns (at commit): those of the ports of the flows it touches, at both
        ends, and of the tap services' ports. Called before a delete, while the rows are still there."""
        if not self.multihost:
            return
        p, t, f = TABLES["ports"], TABLES["tap_services"], TABLES["tap_flows"]
        ports, services = set(ports), set(services)
        services |= {r[0] for r in s.execute(sa.select(t.c.id).where(t.c.port_id.in_(ports)))}
        touched = sa.select(f.c.source_port, f.c.tap_service_id).where(
            f.c.id.in_(flows) | f.c.source_port.in_(ports) | f.c.tap_service_id.in_(services))
        for source, service in s.execute(touched):
            ports.add(source)
            services.add(service)
        ports |= {r[0] for r in s.execute(sa.select(t.c.port_id).where(t.c.id.in_(services)))}
        hosts = {r[0] or "" for r in s.execute(sa.select(p.c.binding_host_id).where(p.c.id.in_(ports)))}
        shared.notify(s, hosts)

    @staticmethod
    def _rebound(s: Session, port_id: str) -> None:
        """A port moved to another host: what its flows' ends said no longer holds."""
        f, t = TABLES["tap_flows"], TABLES["tap_services"]
        on_port = sa.select(t.c.id).where(t.c.port_id == port_id)
        s.execute(sa.update(f).where((f.c.source_port == port_id) | f.c.tap_service_id.in_(on_port),
                                     f.c.status != "PENDING_DELETE")
                  .values(source_side=None, service_side=None, status="DOWN", status_reason=None))

    def _own_port(self, s: Session, port_id: str, project: str, who: Principal) -> None:
        port = self.row(s, PORTS, port_id, who)
        if port.project_id != project:
            raise errors.port_not_owned()

    def _free_number(self, s: Session, column: sa.Column, low: int, high: int,
                     exhausted: Callable[[], errors.NeutronError]) -> int:
        """The lowest number in low..high that no row has in column (tap ids, mirror slots)."""
        used = {r[0] for r in s.execute(sa.select(column))}
        for number in range(low, high + 1):
            if number not in used:
                return number
        raise exhausted()
