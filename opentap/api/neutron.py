"""The Neutron-compatible API: /v2.0/ports and /v2.0/taas/{tap_services,tap_flows}, plus /v2.0/ and
/v2.0/extensions. Routes are made from the attribute declarations, one set per resource."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from opentap.auth import Principal
from opentap.taas import agents, errors, policy, query, quota, revision, validate
from opentap.taas.agents import AGENTS
from opentap.taas.attributes import RESOURCES, Resource
from opentap.taas.store import render

from .boundary import BODY_KEY, BadBody, parse
from .deps import DeviceState, device, principal

router = APIRouter(tags=["taas (Neutron)"])

EXTENSIONS = [
    {"alias": "taas", "name": "Neutron Tap as a Service", "description": "Neutron Tap as a Service Extension.",
     "updated": "2015-01-14T10:00:00-00:00", "links": []},
    {"alias": "quotas", "name": "Quota management support",
     "description": "Expose functions for quotas management per project (here: tap_service, tap_flow)",
     "updated": "2012-07-29T10:00:00-00:00", "links": []},
    {"alias": "quota_details", "name": "Quota details management support",
     "description": "Expose functions for quotas usage statistics per project",
     "updated": "2017-02-10T10:00:00-00:00", "links": []},
    {"alias": "agent", "name": "agent", "description": "The agent management extension (read-only here: this "
     "deployment's hosts, alive or dead).", "updated": "2013-02-03T10:00:00-00:00", "links": []},
    {"alias": "taas-vlan-filter", "name": "VLAN filtering for Neutron Tap as a Service",
     "description": "Neutron Tap as a Service Extension for filtering VLANs.",
     "updated": "2019-11-15T10:00:00-00:00", "links": []},
]



def neutron_version(base_url: str) -> dict[str, Any]:
    """The version document keystoneauth looks for when a client is pointed at the endpoint directly."""
    return {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": base_url.rstrip("/") + "/v2.0/"}]}


async def _body(request: Request) -> Any:
    """The JSON body as the boundary middleware checked and parsed it; None when there is none."""
    if BODY_KEY in request.scope:
        return request.scope[BODY_KEY]
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return parse(raw)  # the middleware has done this already; here for an app assembled without it
    except BadBody as e:
        raise errors.bad_request(f"Malformed request body: {e.msg}") from None


def _run(dev: DeviceState, work: Any) -> Any:
    """work(session) in one transaction: all of it or, on any error, none of it (bulk creates too)."""
    with dev.sessions() as s, s.begin():
        return work(s)


def _run_locked(dev: DeviceState, work: Any) -> Any:
    """_run under the quota lock, held until the commit: counting and creating do not interleave."""
    with quota.CREATE_LOCK:
        return _run(dev, work)


def _poke(dev: DeviceState) -> None:
    """Let the datapath apply a change now rather than at its next periodic pass."""
    if dev.datapath:
        dev.datapath.poke()


def _if_match(request: Request) -> int | None:
    """The revision an If-Match header asks for (None: none). Read on every call, as Neutron does, so that a
    malformed one is a 400 even where it would not matter; only writes enforce it (taas/revision.py)."""
    return revision.constraint(request.headers.get("if-match"))


def _listing(res: Resource, request: Request, objs: list[dict[str, Any]]) -> JSONResponse:
    """A list answer: Neutron's filters, sorting, paging and fields= over the caller's objects."""
    params = list(request.query_params.multi_items())
    grouped: dict[str, list[str]] = {}
    for k, v in params:
        grouped.setdefault(k, []).append(v)
    objs = query.filtered(res, objs, params)
    objs = query.sorted_objs(res, objs, grouped.get("sort_key", []), grouped.get("sort_dir", []))
    objs, links = query.page(res, objs, grouped, str(request.url.remove_query_params(list(grouped))))
    body: dict[str, Any] = {res.collection: query.selected(objs, grouped.get("fields", []))}
    if links:
        body[f"{res.collection}_links"] = links
    return JSONResponse(body)


def _routes(res: Resource) -> None:
    @router.get(res.path, summary=f"List {res.collection}", name=f"list_{res.collection}")
    async def list_objects(request: Request, dev: DeviceState = Depends(device),
                           who: Principal = Depends(principal)) -> JSONResponse:
        policy.authorize(res, "get", who)
        _if_match(request)
        rows = await run_in_threadpool(_run, dev, lambda s: dev.taas.rows(s, res, who))
        return _listing(res, request, [render(res, r, dev.taas.here) for r in rows])

    @router.post(res.path, status_code=201, summary=f"Create {res.member} (or several: bulk)",
                 name=f"create_{res.member}")
    async def create(request: Request, dev: DeviceState = Depends(device),
                     who: Principal = Depends(principal)) -> JSONResponse:
        policy.authorize(res, "create", who)
        wanted = _if_match(request)
        items, bulk = validate.for_create(res, await _body(request), who)

        def work(s: Session) -> list[dict[str, Any]]:
            quota.enforce(s, res, items, dev.cfg.taas_quota)  # before any insert: all of a bulk create or none
            return [dev.taas.create(s, res, i, who, wanted) for i in items]

        made = await run_in_threadpool(_run_locked, dev, work)
        _poke(dev)
        return JSONResponse({res.collection: made} if bulk else {res.member: made[0]}, status_code=201)

    @router.get(res.path + "/{obj_id}", summary=f"Show a {res.member}", name=f"show_{res.member}")
    async def show(obj_id: str, request: Request, dev: DeviceState = Depends(device),
                   who: Principal = Depends(principal)) -> JSONResponse:
        policy.authorize(res, "get", who)
        _if_match(request)
        obj = await run_in_threadpool(_run, dev, lambda s: render(res, dev.taas.row(s, res, obj_id, who),
                                                                  dev.taas.here))
        fields = request.query_params.getlist("fields")
        return JSONResponse({res.member: query.selected([obj], fields)[0]})

    @router.put(res.path + "/{obj_id}", summary=f"Update a {res.member}", name=f"update_{res.member}")
    async def update(obj_id: str, request: Request, dev: DeviceState = Depends(device),
                     who: Principal = Depends(principal)) -> JSONResponse:
        body, wanted = await _body(request), _if_match(request)

        def work(s: Session) -> dict[str, Any]:
            dev.taas.row(s, res, obj_id, who)  # another project's object: 404 before any 403
            policy.authorize(res, "update", who)
            return dev.taas.update(s, res, obj_id, validate.for_update(res, body), who, wanted)

        obj = await run_in_threadpool(_run, dev, work)
        _poke(dev)
        return JSONResponse({res.member: obj})

    @router.delete(res.path + "/{obj_id}", status_code=204, summary=f"Delete a {res.member}",
                   name=f"delete_{res.member}")
    async def delete(obj_id: str, request: Request, dev: DeviceState = Depends(device),
                     who: Principal = Depends(principal)) -> Response:
        wanted = _if_match(request)

        def work(s: Session) -> None:
            dev.taas.row(s, res, obj_id, who)  # another project's object: 404 before any 403
            policy.authorize(res, "delete", who)
            dev.taas.delete(s, res, obj_id, wanted)

        await run_in_threadpool(_run, dev, work)
        if dev.datapath:  # a tap flow is PENDING_DELETE until its rules are gone: go now
            await run_in_threadpool(dev.datapath.run_once)
        return Response(status_code=204)


for _res in RESOURCES:
    _routes(_res)


async def _agents(dev: DeviceState, who: Principal) -> list[dict[str, Any]]:
    """The hosts of this deployment as Neutron's agents. As Neutron's default policy: admins only; for anyone
    else the list is empty and each one a 404."""
    if not who.is_admin:
        return []
    return await run_in_threadpool(_run, dev, lambda s: agents.agents(s, dev.cfg.agent_down_time))


@router.get(AGENTS.path, summary="List the agents: this deployment's hosts, alive or dead", name="list_agents")
async def list_agents(request: Request, dev: DeviceState = Depends(device),
                      who: Principal = Depends(principal)) -> JSONResponse:
    _if_match(request)
    return _listing(AGENTS, request, await _agents(dev, who))


@router.get(AGENTS.path + "/{obj_id}", summary="Show an agent (a host)", name="show_agent")
async def show_agent(obj_id: str, request: Request, dev: DeviceState = Depends(device),
                     who: Principal = Depends(principal)) -> JSONResponse:
    _if_match(request)
    found = [a for a in await _agents(dev, who) if a["id"] == obj_id]
    if not found:
        raise errors.not_found(AGENTS.not_found[0], AGENTS.not_found[1].format(id=obj_id))
    return JSONResponse({AGENTS.member: query.selected(found, request.query_params.getlist("fields"))[0]})


@router.get("/v2.0/extensions", summary="Neutron extensions served here")
def extensions(who: Principal = Depends(principal)) -> dict[str, Any]:
    return {"extensions": EXTENSIONS}


@router.get("/v2.0/extensions/{alias}", summary="One Neutron extension")
def extension(alias: str, who: Principal = Depends(principal)) -> dict[str, Any]:
    for ext in EXTENSIONS:
        if ext["alias"] == alias:
            return {"extension": ext}
    raise errors.not_found("HTTPNotFound", f"Extension with alias {alias} does not exist")


@router.get("/v2.0/", summary="The resources of this Neutron API")
@router.get("/v2.0", include_in_schema=False)
def resources(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {"resources": [{"name": r.member, "collection": r.collection,
                           "links": [{"rel": "self", "href": base + r.path}]} for r in RESOURCES],
            "version": neutron_version(base)}  # not in Neutron's answer, but lets clients discover /v2.0 here
