"""Neutron's quota API for the TaaS resources (tap_service, tap_flow), shaped as Neutron's quotasv2 and
quota_details extensions: GET /v2.0/quotas (admin), GET /v2.0/quotas/{project}[/default|/details] (an admin,
or anyone of that project), PUT and DELETE /v2.0/quotas/{project} (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from opentap.auth import Principal
from opentap.taas import errors, quota

from .deps import DeviceState, device, principal
from .neutron import _body, _run, _run_locked

router = APIRouter(tags=["taas quotas (Neutron)"])
PREFIX = "/v2.0/quotas"
PROJECT = Path(max_length=255, description="a project id; a project without a quota of its own has the defaults")


def _may_read(who: Principal, project: str) -> None:
    """As Neutron: one's own project's quota is always readable; another's needs the get_quota policy (admin)."""
    if project != who.project and not who.is_admin:
        raise errors.policy("get_quota")


def _admin(who: Principal, action: str) -> None:
    if not who.is_admin:
        raise errors.policy(action)


@router.get(PREFIX, summary="Projects with a quota of their own (admin)", name="list_quotas")
async def list_quotas(dev: DeviceState = Depends(device), who: Principal = Depends(principal)) -> dict[str, Any]:
    _admin(who, "get_quota")
    return {"quotas": await run_in_threadpool(_run, dev, lambda s: quota.projects(s, dev.cfg.taas_quota))}


@router.get(PREFIX + "/{project_id}", summary="A project's quota", name="show_quota")
async def show_quota(project_id: str = PROJECT, dev: DeviceState = Depends(device),
                     who: Principal = Depends(principal)) -> dict[str, Any]:
    _may_read(who, project_id)
    return {"quota": await run_in_threadpool(_run, dev, lambda s: quota.limits(s, project_id, dev.cfg.taas_quota))}


@router.get(PREFIX + "/{project_id}/default", summary="The default quota (the config's)", name="show_quota_default")
async def show_default(project_id: str = PROJECT, dev: DeviceState = Depends(device),
                       who: Principal = Depends(principal)) -> dict[str, Any]:
    _may_read(who, project_id)
    return {"quota": dict(dev.cfg.taas_quota)}


@router.get(PREFIX + "/{project_id}/details", summary="A project's quota with its usage", name="show_quota_details")
async def show_details(project_id: str = PROJECT, dev: DeviceState = Depends(device),
                       who: Principal = Depends(principal)) -> dict[str, Any]:
    _may_read(who, project_id)

    def work(s: Session) -> dict[str, Any]:
        limits, used = quota.limits(s, project_id, dev.cfg.taas_quota), quota.usage(s, project_id)
        return {name: {"limit": limits[name], "used": used[name], "reserved": 0} for name in limits}

    return {"quota": await run_in_threadpool(_run, dev, work)}


@router.put(PREFIX + "/{project_id}", summary="Set a project's quota (admin)", name="update_quota")
async def update_quota(request: Request, project_id: str = PROJECT, dev: DeviceState = Depends(device),
                       who: Principal = Depends(principal)) -> dict[str, Any]:
    _admin(who, "update_quota")
    changes, check_limit = quota.checked_update(await _body(request))

    def work(s: Session) -> dict[str, int]:
        quota.update(s, project_id, changes, check_limit)
        return quota.limits(s, project_id, dev.cfg.taas_quota)

    return {"quota": await run_in_threadpool(_run_locked, dev, work)}  # check_limit counts: no create between


@router.delete(PREFIX + "/{project_id}", status_code=204, summary="Reset a project's quota to the defaults (admin)",
               name="delete_quota")
async def delete_quota(project_id: str = PROJECT, dev: DeviceState = Depends(device),
                       who: Principal = Depends(principal)) -> Response:
    _admin(who, "delete_quota")
    await run_in_threadpool(_run, dev, lambda s: quota.reset(s, project_id))
    return Response(status_code=204)
