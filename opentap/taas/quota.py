"""TaaS quotas, as Neutron keeps them: a limit per project and resource (tap_service, tap_flow), -1 for
unlimited; a project with no row of its own has the config's default ([taas_quota]). Every object in the table
counts, whoever created it and whatever its state (a tap flow that is PENDING_DELETE still holds kernel rules)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from opentap.config import QUOTA_MAX, TAAS_QUOTA_DEFAULTS
from opentap.db.models import Base

from . import errors
from .attributes import TAP_FLOWS, TAP_SERVICES, Resource
from .store import TABLES

QUOTAS = sa.Table(
    "taas_quotas", Base.metadata,
    sa.Column("project_id", sa.String(255), primary_key=True),
    sa.Column("resource", sa.String(32), primary_key=True),
    sa.Column("limit", sa.Integer, nullable=False))

COUNTED: dict[str, Resource] = {"tap_service": TAP_SERVICES, "tap_flow": TAP_FLOWS}
assert set(COUNTED) == set(TAAS_QUOTA_DEFAULTS)

# Counting and inserting must not interleave, or two creates that each fit could together exceed the quota. One
# daemon owns the database (its scheduler assumes so too), so a process-wide lock held until the commit is enough.
CREATE_LOCK = threading.Lock()


def limits(s: Session, project: str, defaults: dict[str, int]) -> dict[str, int]:
    rows = s.execute(sa.select(QUOTAS.c.resource, QUOTAS.c.limit).where(QUOTAS.c.project_id == project))
    return {**defaults, **{r: n for r, n in rows if r in defaults}}


def usage(s: Session, project: str) -> dict[str, int]:
    out = {}
    for name, res in COUNTED.items():
        table = TABLES[res.collection]
        out[name] = s.execute(sa.select(sa.func.count()).select_from(table)
                              .where(table.c.project_id == project)).scalar_one()
    return out


def enforce(s: Session, res: Resource, items: list[dict[str, Any]], defaults: dict[str, int]) -> None:
    """Raise OverQuota (409) if creating all of items (a bulk create counts every one) would take any project
    past its quota for res. Call under CREATE_LOCK, in the transaction that creates them."""
    name = next((n for n, r in COUNTED.items() if r is res), None)
    if name is None:
        return
    for project, adding in Counter(i["project_id"] for i in items).items():
        limit = limits(s, project, defaults)[name]
        if limit >= 0 and usage(s, project)[name] + adding > limit:
            raise errors.over_quota([name])


def projects(s: Session, defaults: dict[str, int]) -> list[dict[str, Any]]:
    """Every project with a quota of its own (as Neutron's GET /quotas lists them)."""
    found = [r[0] for r in s.execute(sa.select(QUOTAS.c.project_id).distinct().order_by(QUOTAS.c.project_id))]
    return [{"project_id": p, "tenant_id": p, **limits(s, p, defaults)} for p in found]


def checked_update(body: Any) -> tuple[dict[str, int], bool]:
    """PUT /quotas/{project}'s body -> (the new limits, check_limit), or Neutron's 400s."""
    if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
        raise errors.bad_request("Unable to find 'quota' in request body")
    item = dict(body["quota"])
    flags = {k: item.pop(k) for k in ("check_limit", "force") if k in item}
    for flag, value in flags.items():
        if not isinstance(value, bool):
            raise errors.invalid_input(flag, f"'{value}' is not a boolean (JSON true or false)")
    unknown = [k for k in item if k not in TAAS_QUOTA_DEFAULTS]
    if unknown:
        raise errors.bad_request(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    for name, value in item.items():
        if type(value) is not int:  # a JSON integer: not true, 1.0 or "1"
            raise errors.invalid_input(name, f"'{value}' is not an integer")
        if not -1 <= value <= QUOTA_MAX:
            raise errors.invalid_input(name, f"'{value}' is not in range -1 through {QUOTA_MAX}")
    return item, bool(flags.get("check_limit", False))


def update(s: Session, project: str, changes: dict[str, int], check_limit: bool) -> None:
    if check_limit:
        used = usage(s, project)
        for name, limit in changes.items():
            if 0 <= limit < used[name]:
                raise errors.bad_request(f"Quota limit {limit} for {name} must be greater than or equal to already "
                                         f"used {used[name]}")
    for name, limit in changes.items():
        where = (QUOTAS.c.project_id == project) & (QUOTAS.c.resource == name)
        if s.execute(sa.update(QUOTAS).where(where).values(limit=limit)).rowcount == 0:
            s.execute(sa.insert(QUOTAS).values(project_id=project, resource=name, limit=limit))


def reset(s: Session, project: str) -> None:
    """Back to the defaults; Neutron's 404 when the project had no quota of its own."""
    if s.execute(sa.delete(QUOTAS).where(QUOTAS.c.project_id == project)).rowcount == 0:
        raise errors.not_found("TenantQuotaNotFound", f"Quota for tenant {project} could not be found.")
