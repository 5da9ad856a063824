"""TaaS rows for the reconciler's unit tests, made and deleted as the API makes them (checked by
opentap.taas.validate, written by TaasStore with a datapath running, so a deleted tap flow turns PENDING_DELETE),
in a real database, and read back by id."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from opentap.auth import Principal
from opentap.db.session import open_database
from opentap.taas import validate
from opentap.taas.attributes import PORTS, TAP_FLOWS, TAP_SERVICES, Resource
from opentap.taas.store import TABLES, TaasStore

ADMIN = Principal("admin", ("admin",))


@contextmanager
def database(directory: Path) -> Iterator[sessionmaker]:
    """A migrated SQLite database in directory, disposed of afterwards."""
    engine, sessions = open_database(f"sqlite:///{directory / 'opentap.db'}")
    try:
        yield sessions
    finally:
        engine.dispose()


class TaasRows:
    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions
        self.store = TaasStore(pending_delete=True)

    def _create(self, res: Resource, item: dict[str, Any]) -> str:
        with self.sessions() as s, s.begin():
            return self.store.create(s, res, validate.one_for_create(res, item, ADMIN), ADMIN)["id"]

    def port(self, interface: str, host_side: bool = False, host: str | None = None) -> str:
        """host: the port's binding:host_id (default: the store's host, "localhost")."""
        profile: dict[str, Any] = {"interface": interface, **({"host_side": True} if host_side else {})}
        return self._create(PORTS, {"project_id": "alice", "binding:profile": profile,
                                    **({"binding:host_id": host} if host else {})})

    def service(self, port: str) -> str:
        return self._create(TAP_SERVICES, {"project_id": "alice", "port_id": port})

    def flow(self, service: str, source: str, direction: str = "BOTH", vlan_filter: str | None = None) -> str:
        return self._create(TAP_FLOWS, {"project_id": "alice", "tap_service_id": service, "source_port": source,
                                        "direction": direction, "vlan_filter": vlan_filter})

    def monitored(self, source: str = "vm1-tap", target: str = "mon-tap", **flow: str) -> tuple[str, str]:
        """A tap service on a port of target and a tap flow into it from a port of source: (service, flow)."""
        service = self.service(self.port(target))
        return service, self.flow(service, self.port(source), **flow)

    def delete(self, res: Resource, obj_id: str) -> None:
        """As DELETE does: a tap flow turns PENDING_DELETE; a port or tap service goes at once, with its flows."""
        with self.sessions() as s, s.begin():
            self.store.delete(s, res, obj_id)

    def _row(self, s: Session, collection: str, obj_id: str) -> Any:
        table = TABLES[collection]
        return s.execute(sa.select(table).where(table.c.id == obj_id)).first()

    def flow_row(self, flow: str) -> Any:
        """The tap flow's row (status, status_reason, slot, ...), or None once it is gone."""
        with self.sessions() as s:
            return self._row(s, "tap_flows", flow)

    def status(self, flow: str) -> tuple[str, str | None]:
        row = self.flow_row(flow)
        assert row is not None, f"tap flow {flow} is gone"
        return row.status, row.status_reason

    def service_status(self, service: str) -> str:
        with self.sessions() as s:
            return self._row(s, "tap_services", service).status
