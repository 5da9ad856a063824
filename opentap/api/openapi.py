"""The OpenAPI document, describing the API as it behaves: FastAPI's document of the routes, completed here
with what FastAPI cannot see — the X-Auth-Token security scheme, every error status each operation can answer
with its body (OpenTap's {"status", "msg"}, Neutron's {"NeutronError": ...} or, for the tenants the clients
resolve --project with, Keystone's {"error": ...}), the exact limits of every parameter and body (schemas.py,
taas/apidoc.py), and no 422, which the API never sends (validation errors are 400s). Every operation needs an
entry in ops(): an unknown one stops the document from being built, so a new route cannot be served
undescribed (tests/unit/test_openapi.py builds it). Built from the routes and these tables, never from what a handler
returns, so it holds when a route answers with a Response object."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from opentap.taas import apidoc
from opentap.taas.agents import AGENTS
from opentap.taas.attributes import RESOURCES

from . import browsedoc, rings, schemas
from .boundary import MAX_BODY, MAX_DEPTH
from .errors import KEYSTONE_PREFIX, KEYSTONE_V3, is_keystone

SCHEME = "token"
PUBLIC = {"/healthz", "/v3"}  # no token: liveness, and Keystone's version document (as Keystone serves it)
NEUTRON_PREFIX = "/v2.0"
PATH_TEXT = {"type": "string", "pattern": "^(?!\\.{1,2}$)[^/\\u0000]+$",
             "description": "any text without '/' (or a NUL)"}
ERRORS = {  # status -> what it means wherever it is listed; an operation's description may say more
    400: "bad input: a body or parameter the operation does not take (also JSON nested deeper than "
         f"{MAX_DEPTH} levels, a string with a NUL or a lone surrogate, a repeated parameter on OpenTap's routes)",
    401: "no X-Auth-Token, or an unknown one (OpenTap's error body, on Neutron's routes too)",
    403: "the caller's role may not do this",
    404: "no such object, or another project's",
    409: "conflict with the device's state",
    410: "the capture's data files are gone (removed or cut after it finished); the capture now says so",
    412: "If-Match: revision_number=N, and the port is at another revision (nothing was changed)",
    413: f"the body is larger than {MAX_BODY} bytes",
    429: "the caller's project, or the device, already runs its maximum of concurrent captures in that window",
    503: "the database or the capture engine is not working",
    507: "the disk quota for captured data (the project's or the device's) is full",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any] | None, description: str) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, where: str, schema: dict[str, Any], required: bool = False,
           description: str = "", **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            **({"description": description} if description else {}), **extra}


@dataclass
class Op:
    """What the document says about one operation beyond what FastAPI wrote: its success responses, the error
    statuses it can answer with, its parameters and body (when FastAPI cannot see them), and a note on the 400s
    and 409s that no schema can express."""

    ok: dict[str, dict[str, Any]]
    errors: list[int]
    params: list[dict[str, Any]] | None = None
    body: dict[str, Any] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


SEMANTIC = ("A 400 also when the window is empty, in the past, longer than the capture length limit or more "
            "than 366 days ahead, when the observation point is not one the caller may use, an option does not "
            "apply to the type, or the filter does not compile, or a sensor point cannot capture now (the message "
            "says why: a Phidget without the Phidget22 library, an unreadable file) or its sensors cannot follow "
            "the period; a 409 when the id is taken.")


AMBIGUOUS = "A 409 when the caller is an admin, several projects use the id and no project is named."


def _opentap_ops() -> dict[tuple[str, str], Op]:
    caps = Op({"200": _json(_ref("Capabilities"), "the device's capabilities")}, [400, 401])
    query = [_param(n, "query", p["schema"], p.get("required", False), p.get("description", ""))
             for n, p in schemas.capture_query().items()]
    project = _param("project", "query", schemas.TEXT,
                     description="the capture's project: admins, when several projects use the id")
    capture_id = [_param("capture_id", "path", PATH_TEXT), project]
    data = {"description": "the data, streamed",
            "content": {mt: {"schema": {"type": "string", "format": "binary"}} for mt in schemas.MEDIA_TYPES},
            "headers": {"X-OpenTap-State": {"schema": {"type": "string", "enum": schemas.STATES}},
                        "X-OpenTap-Partial": {"description": "true while the capture runs",
                                              "schema": {"type": "string", "enum": ["true", "false"]}}}}
    return {
        ("get", "/"): caps, ("get", "/capabilities"): caps,
        ("get", "/capture/{capture_type}"): Op(
            {"200": _json(_ref("ScheduledCapture"), "scheduled")}, [400, 401, 403, 409, 429, 507],
            [_param("capture_type", "path", {"type": "string", "enum": schemas.TYPES})] + query, note=SEMANTIC),
        ("post", "/captures"): Op({"201": _json(_ref("ScheduledCapture"), "scheduled")},
                                  [400, 401, 403, 409, 413, 429, 507], body=_ref("CaptureRequest"), note=SEMANTIC),
        ("get", "/captures"): Op({"200": _json(_ref("CaptureList"), "the caller's captures (an admin's: all)")},
                                 [400, 401], browsedoc.capture_list_params()),
        ("get", "/captures/{capture_id}"): Op({"200": _json(_ref("CaptureOne"), "the capture")},
                                              [400, 401, 404, 409], capture_id, note=AMBIGUOUS),
        ("delete", "/captures/{capture_id}"): Op(
            {"200": _json(_ref("CaptureCancelled"), "cancelled; its data so far is kept"),
             "204": _json(None, "deleted with its data")}, [400, 401, 403, 404, 409], capture_id, note=AMBIGUOUS),
        ("get", "/retrieve"): Op(
            {"200": data}, [400, 401, 404, 409, 410],
            [_param("id", "query", schemas.TEXT, required=True),
             _param("format", "query", {"type": "string", "enum": ["", *schemas.FORMATS]},
                    description="empty or absent: the type's default"), project],
            note="A 400 for a format the capture's type does not have; a 409 while the capture has not started, "
                 "when it failed with nothing captured, has no data in that format, or (admins) its id is used by "
                 "several projects and no project is named; a 410 when its data files are gone."),
        ("get", "/rings"): Op({"200": _json({"type": "object", "required": ["rings"], "properties": {
            "rings": {"type": "array", "items": rings.RING_SCHEMA}}}, "every network point's ring")}, [400, 401, 403]),
        ("put", "/rings/{point}"): Op({"200": _json({"type": "object", "required": ["ring"], "properties": {
            "ring": rings.RING_SCHEMA}}, "the ring as it is now")}, [400, 401, 403, 404, 413],
            [_param("point", "path", PATH_TEXT)], body=rings.RING_REQUEST),
        ("delete", "/rings/{point}"): Op({"204": _json(None, "off, and its blocks deleted")}, [400, 401, 403, 404],
                                         [_param("point", "path", PATH_TEXT)]),
        ("get", "/metrics"): Op({"200": {"description": "Prometheus' text exposition format",
                                         "content": {"text/plain": {"schema": {"type": "string"}}}}},
                                [400, 401, 403]),
        ("get", "/healthz"): Op({"200": _json(_ref("Health"), "the daemon is up"),
                                 "503": _json(_ref("Health"), "the database or the capture engine is not working")},
                                [400]),
    }


IF_MATCH = ("`If-Match: revision_number=N` makes the call conditional: a 412 when the port is at another revision. "
            "A malformed or repeated revision_number tag is a 400 on every call of Neutron's resources.")
NO_IF_MATCH = ("`If-Match: revision_number=N` is a 400, as Neutron answers it for resources without revisions "
               "(\"Revision matching not supported for this resource\"), on creates too.")


def _neutron_ops() -> dict[tuple[str, str], Op]:
    ops: dict[tuple[str, str], Op] = {}
    obj_id = [_param("obj_id", "path", PATH_TEXT)]
    fields = [apidoc.fields_parameter()]
    for res in RESOURCES:
        one = f"#/components/schemas/{res.member}"
        member = _json({"$ref": one + "_response"}, f"the {res.member}")
        ops[("get", res.path)] = Op(
            {"200": _json(apidoc.list_response(res), f"the caller's {res.collection} (an admin's: all)")},
            [400, 401, 404], apidoc.list_parameters(res),
            note="A 400 when sort_dir does not pair with sort_key; a 404 for an unknown marker.")
        ops[("post", res.path)] = Op(
            {"201": _json(apidoc.create_response(res), "created")}, [400, 401, 403, 404, 409, 413],
            body=apidoc.create_body(res),
            note="A 400 for a project other than the caller's (non-admins) or project_id and tenant_id that "
                 "differ, or a VLAN range whose first id is above its last; a 404 for a port or tap service the "
                 "caller cannot see; a 409 OverQuota or when the device's ids for it are used up.")
        ops[("get", res.path + "/{obj_id}")] = Op({"200": member}, [400, 401, 404], obj_id + fields)
        revised = "revision_number" in res.by_name
        ops[("put", res.path + "/{obj_id}")] = Op(
            {"200": member}, [400, 401, 403, 404, 413] + ([412] if revised else []), obj_id,
            body=apidoc.update_body(res), note=IF_MATCH if revised else NO_IF_MATCH)
        ops[("delete", res.path + "/{obj_id}")] = Op(
            {"204": _json(None, "deleted")}, [400, 401, 403, 404] + ([412] if revised else []), obj_id,
            note=IF_MATCH if revised else NO_IF_MATCH)
    ops[("get", AGENTS.path)] = Op(
        {"200": _json(apidoc.list_response(AGENTS), "this deployment's hosts (admins; anyone else: none)")},
        [400, 401, 404], apidoc.list_parameters(AGENTS),
        note="A 400 when sort_dir does not pair with sort_key; a 404 for an unknown marker.")
    ops[("get", AGENTS.path + "/{obj_id}")] = Op(
        {"200": _json({"$ref": "#/components/schemas/agent_response"}, "the agent")}, [400, 401, 404],
        obj_id + fields, note="A 404 for anyone but an admin, as Neutron hides agents.")
    extension = {"type": "object", "required": ["extension"], "properties": {"extension": apidoc.EXTENSION}}
    ops[("get", "/v2.0/extensions")] = Op({"200": _json({"type": "object", "required": ["extensions"], "properties": {
        "extensions": {"type": "array", "items": apidoc.EXTENSION}}}, "the extensions served")}, [400, 401])
    ops[("get", "/v2.0/extensions/{alias}")] = Op({"200": _json(extension, "the extension")}, [400, 401, 404],
                                                  [_param("alias", "path", PATH_TEXT)])
    ops[("get", "/v2.0/")] = Op({"200": _json({"type": "object", "required": ["resources"]}, "the resources")},
                                [400, 401])
    project = [_param("project_id", "path", {**PATH_TEXT, "maxLength": 255})]
    read = "Anyone of the project may read its quota; another project's needs an admin (403)."
    ops[("get", "/v2.0/quotas")] = Op({"200": _json(_ref("QuotaList"), "projects with a quota of their own")},
                                      [400, 401, 403])
    ops[("get", "/v2.0/quotas/{project_id}")] = Op({"200": _json(_ref("Quota"), "the project's quota")},
                                                   [400, 401, 403], project, note=read)
    ops[("get", "/v2.0/quotas/{project_id}/default")] = Op({"200": _json(_ref("Quota"), "the defaults")},
                                                           [400, 401, 403], project, note=read)
    ops[("get", "/v2.0/quotas/{project_id}/details")] = Op(
        {"200": _json(_ref("QuotaDetails"), "the project's quota and usage")}, [400, 401, 403], project, note=read)
    ops[("put", "/v2.0/quotas/{project_id}")] = Op(
        {"200": _json(_ref("Quota"), "the project's quota now")}, [400, 401, 403, 413], project,
        body=_ref("QuotaUpdate"), note="A 400 with check_limit when a limit is below the project's usage.")
    ops[("delete", "/v2.0/quotas/{project_id}")] = Op(
        {"204": _json(None, "back to the defaults")}, [400, 401, 403, 404], project,
        note="A 404 when the project had no quota of its own (Neutron's TenantQuotaNotFound).")
    seen = "Admins see every project this device knows (its tokens', SSH keys' and the owners of TaaS objects); " \
           "anyone else only their own."
    ops[("get", KEYSTONE_PREFIX)] = Op({"200": _json(_ref("TenantList"), "the projects the caller may see")},
                                       [400, 401], note=seen)
    ops[("get", KEYSTONE_PREFIX + "/{tenant_id}")] = Op(
        {"200": _json(_ref("TenantOne"), "the project")}, [400, 401, 404],
        [_param("tenant_id", "path", PATH_TEXT)], note=seen + " A 404 for another project or an unknown one.")
    ops[("get", KEYSTONE_V3)] = Op({"200": _json(_ref("IdentityVersion"), "Keystone v3's version document")}, [400])
    ops[("get", KEYSTONE_V3 + "/projects")] = Op(
        {"200": _json(_ref("ProjectList"), "the projects the caller may see (the one named, with name=)")},
        [400, 401], [_param("name", "query", schemas.TEXT, description="only the project of this name")], note=seen)
    ops[("get", KEYSTONE_V3 + "/projects/{project_id}")] = Op(
        {"200": _json(_ref("ProjectOne"), "the project")}, [400, 401, 404],
        [_param("project_id", "path", PATH_TEXT)], note=seen + " A 404 for another project or an unknown one.")
    return ops


def ops() -> dict[tuple[str, str], Op]:
    project = _param("project", "query", schemas.TEXT, description="the capture's project: admins, when several "
                     "projects use the id")
    return _opentap_ops() | _neutron_ops() | browsedoc.ops(Op, _json, PATH_TEXT, project)


def _complete(path: str, method: str, op: dict[str, Any], spec: Op) -> None:
    error_body = ("KeystoneError" if is_keystone(path) else "NeutronError" if path.startswith(NEUTRON_PREFIX)
                  else "OpenTapError")
    named = {p["name"]: p for p in spec.params or []}
    kept = [p for p in op.get("parameters", []) if p["name"].lower() != "x-auth-token" and p["name"] not in named]
    params = kept + list(named.values())
    if params:
        op["parameters"] = params
    else:
        op.pop("parameters", None)
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": spec.body}}}
    responses = dict(spec.ok)
    for status in spec.errors:
        body = "OpenTapError" if status == 401 else error_body
        responses[str(status)] = _json(_ref(body), ERRORS[status])
    op["responses"] = responses
    if spec.note:
        op["description"] = (op.get("description", "") + "\n\n" + spec.note).strip()
    if path not in PUBLIC:
        op["security"] = [{SCHEME: []}]


def _links(doc: dict[str, Any]) -> None:
    """OpenAPI links from each create to the calls on what it made, so clients and stateful testers can follow
    an id from one call to the next."""
    paths = doc["paths"]

    def link(source: tuple[str, str], status: str, targets: list[tuple[str, str]], param: str, value: str) -> None:
        response = paths[source[1]][source[0]]["responses"][status]
        for method, path in targets:
            op = paths[path][method]
            response.setdefault("links", {})[op["operationId"]] = {
                "operationId": op["operationId"], "parameters": {param: value}}

    for res in RESOURCES:
        one = res.path + "/{obj_id}"
        link(("post", res.path), "201", [("get", one), ("put", one), ("delete", one)], "obj_id",
             f"$response.body#/{res.member}/id")
    link(("post", "/captures"), "201", [("get", "/captures/{capture_id}"), ("delete", "/captures/{capture_id}")],
         "capture_id", "$response.body#/id")
    link(("post", "/captures"), "201", [("get", "/retrieve")], "id", "$response.body#/id")


def document(app: FastAPI) -> dict[str, Any]:
    """The document, built once (FastAPI keeps it in app.openapi_schema)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    table = ops()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            spec = table.get((method, path))
            if spec is None:
                raise LookupError(f"{method.upper()} {path} is not described in opentap/api/openapi.py")
            _complete(path, method, op, spec)
    missing = set(table) - {(m, p) for p, item in doc["paths"].items() for m in item}
    if missing:
        raise LookupError(f"described but not served: {sorted(missing)}")
    _links(doc)
    parts = doc.setdefault("components", {})
    generated = parts.get("schemas", {})
    kept = {k: v for k, v in generated.items() if k not in ("HTTPValidationError", "ValidationError", "CaptureBody")}
    parts["schemas"] = kept | schemas.components(generated) | apidoc.quota_schemas() | schemas.KEYSTONE | {
        "JsonValue": apidoc.JSON_VALUE} | browsedoc.SCHEMAS | {
        f"{r.member}_response": apidoc.member_response(r) for r in (*RESOURCES, AGENTS)}
    parts["securitySchemes"] = {SCHEME: {
        "type": "apiKey", "in": "header", "name": "X-Auth-Token",
        "description": "a token from `opentap token create` (or the admin token `opentap config init` wrote)"}}
    app.openapi_schema = copy.deepcopy(doc)
    return app.openapi_schema


def install(app: FastAPI) -> None:
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
