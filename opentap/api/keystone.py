"""The part of Keystone's identity API that the OpenStack clients use to resolve `--project NAME_OR_ID`:
GET /v2.0/tenants/{id} and GET /v2.0/tenants, read-only, shaped as Keystone's v2.0 tenants; and the same
projects as v3 has them (GET /v3, /v3/projects?name=, /v3/projects/{id}), for a client configured with an
identity v3 endpoint on this device.

Why v2.0 and these two calls only: with the documented setup (the admin_token plugin and OS_ENDPOINT=<url>/v2.0)
the client has no catalog, so its identity client gets the same endpoint as the network one, and keystoneauth
takes the identity version from the /v2.0 in that URL without asking anyone. `openstack tap service list
--project demo` (python-openstackclient 10.5, openstacksdk 4.22) then sends GET /v2.0/tenants/demo and, when
that is a 404, GET /v2.0/tenants to match the name itself; no version document is requested. Both answer from
the projects this device knows:

- those of the config's tokens and SSH keys (read as the file is now: a new token counts at once), and the one
  everybody is in without authentication;
- those that own a port, a tap service or a tap flow: an admin may make objects for any project, and must be
  able to name that project again (`list --project`) without giving it a token first.

An admin sees every one of them; anyone else sees only their own project, whatever their role. Another project
and an unknown one are the same 404 in Keystone's error body ("Could not find project: demo."), so nobody
learns which other projects exist. (Keystone's own listing is admin-only; here a member may list the one project
it can see, which is what lets a member's `--project` work.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from opentap.auth import Principal, config_projects
from opentap.taas.store import owners

from .deps import DeviceState, device, principal
from .errors import KEYSTONE_PREFIX, KEYSTONE_V3, keystone_response
from .neutron import _run

router = APIRouter(tags=["identity (Keystone v2.0 tenants)"])


def tenant(project: str) -> dict[str, Any]:
    """A project as Keystone v2.0 shows a tenant; here a project's id is its name."""
    return {"id": project, "name": project, "description": "", "enabled": True}


async def _visible(dev: DeviceState, who: Principal, wanted: str | None = None) -> list[str]:
    """The projects the caller may see (only `wanted`, when given and visible), sorted."""
    if not who.is_admin:
        return [who.project] if wanted in (None, who.project) else []
    known = config_projects(dev.cfg)
    if wanted is not None and wanted in known:
        return [wanted]  # a project of the config: no need to read the database
    known |= await run_in_threadpool(_run, dev, owners)
    return sorted(known) if wanted is None else [wanted] if wanted in known else []


@router.get(KEYSTONE_PREFIX, summary="Projects the caller may see, as Keystone's tenants", name="list_tenants")
async def list_tenants(dev: DeviceState = Depends(device), who: Principal = Depends(principal)) -> JSONResponse:
    return JSONResponse({"tenants": [tenant(p) for p in await _visible(dev, who)], "tenants_links": []})


@router.get(KEYSTONE_PREFIX + "/{tenant_id}", summary="One project, as a Keystone tenant", name="show_tenant")
async def show_tenant(tenant_id: str, dev: DeviceState = Depends(device),
                      who: Principal = Depends(principal)) -> JSONResponse:
    if await _visible(dev, who, tenant_id):
        return JSONResponse({"tenant": tenant(tenant_id)})
    return keystone_response(404, f"Could not find project: {tenant_id}.")


def project(name: str, base: str) -> dict[str, Any]:
    """A project as Keystone v3 shows one (in the default domain; a project's id is its name here)."""
    return {"id": name, "name": name, "domain_id": "default", "parent_id": "default", "description": "",
            "enabled": True, "is_domain": False, "tags": [], "options": {},
            "links": {"self": f"{base}{KEYSTONE_V3}/projects/{name}"}}


@router.get(KEYSTONE_V3, summary="Keystone v3's version document (no token needed, as Keystone's)",
            name="identity_v3_version")
async def v3_version(request: Request) -> JSONResponse:
    base = str(request.base_url).rstrip("/")
    return JSONResponse({"version": {
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}{KEYSTONE_V3}/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}})


@router.get(KEYSTONE_V3 + "/projects", summary="Projects the caller may see, as Keystone v3's", name="list_projects")
async def list_projects(request: Request, name: str | None = None, dev: DeviceState = Depends(device),
                        who: Principal = Depends(principal)) -> JSONResponse:
    base = str(request.base_url).rstrip("/")
    found = await _visible(dev, who, name)
    return JSONResponse({"projects": [project(p, base) for p in found],
                         "links": {"self": f"{base}{KEYSTONE_V3}/projects", "previous": None, "next": None}})


@router.get(KEYSTONE_V3 + "/projects/{project_id}", summary="One project, as Keystone v3's", name="show_project")
async def show_project(project_id: str, request: Request, dev: DeviceState = Depends(device),
                       who: Principal = Depends(principal)) -> JSONResponse:
    if await _visible(dev, who, project_id):
        return JSONResponse({"project": project(project_id, str(request.base_url).rstrip("/"))})
    return keystone_response(404, f"Could not find project: {project_id}.")
