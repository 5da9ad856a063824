"""The OpenAPI description of the Neutron routes, made from the same attribute declarations as the routes, so
the document cannot drift from what they accept: request bodies (create, bulk create, update), the list and
show query parameters, and the objects they answer with. api/openapi.py puts these into the document."""

from __future__ import annotations

from typing import Any

from opentap.config import QUOTA_MAX, TAAS_QUOTA_DEFAULTS
from opentap.wire import MAX_DIGITS

from .attributes import ACCEPTS, NO_NUL, REQUIRED, Resource, boolean
from .query import PAGING

TEXT = {"type": "string", "pattern": NO_NUL}
QUERY_BOOLEAN = {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)$",
                 "description": "true, false, 1 or 0 (any case)"}
LINK = {"type": "object", "additionalProperties": False, "required": ["rel", "href"],
        "properties": {"rel": {"type": "string", "enum": ["next", "previous"]}, "href": {"type": "string"}}}
# any JSON without NUL in a string or key (the boundary refuses those), for binding:profile's free-form keys
JSON_VALUE = {"anyOf": [
    TEXT, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
    {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
    {"type": "object", "propertyNames": TEXT, "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}},
]}
NULLABLE = {"status_reason", "vlan_filter", "availability_zone", "resources_synced", "started_at",
            "heartbeat_timestamp"}
# an envelope's other keys are ignored, as Neutron ignores them, but still pass the boundary's checks
ENVELOPE = {"type": "object", "propertyNames": TEXT, "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}}


def _input(check: Any) -> dict[str, Any]:
    return dict(ACCEPTS[check])


def _output(res: Resource, name: str) -> dict[str, Any]:
    attr = res.by_name[name]
    schema: dict[str, Any]
    if attr.check is boolean:
        schema = {"type": "boolean"}
    elif name == "binding:profile" or attr.check is dict:
        schema = {"type": "object"}
    elif name == "direction":
        schema = _input(attr.check)
    elif attr.check is int:
        schema = {"type": "integer"}
    elif attr.check is list:
        schema = {"type": "array", "items": {"type": "string"}}
    elif attr.column == "time":
        schema = {"type": "string", "format": "date-time", "description": "UTC, to the second"}
    else:
        schema = {"type": "string"}
    return {"anyOf": [schema, {"type": "null"}]} if name in NULLABLE else schema


def object_schema(res: Resource) -> dict[str, Any]:
    """An object as the API shows it; `fields=` may leave out any attribute, so none is required."""
    return {"type": "object", "additionalProperties": False,
            "properties": {a.name: _output(res, a.name) for a in res.attrs if a.visible}}


def _item(res: Resource, put: bool) -> dict[str, Any]:
    attrs = [a for a in res.attrs if (a.allow_put if put else a.allow_post)]
    item: dict[str, Any] = {"type": "object", "additionalProperties": False,
                            "properties": {a.name: _input(a.check) for a in attrs}}
    required = [a.name for a in attrs if not put and a.default is REQUIRED]
    if required:
        item["required"] = required
    return item


def create_body(res: Resource) -> dict[str, Any]:
    member = {**ENVELOPE, "required": [res.member], "properties": {res.member: _item(res, put=False)}}
    bulk = {**ENVELOPE, "required": [res.collection], "properties": {
        res.collection: {"type": "array", "minItems": 1, "items": _item(res, put=False)}}}
    return {"anyOf": [member, bulk],
            "description": f"one {res.member}, or several as {res.collection} (bulk: all are created or none). "
                           "A member may name only its own project_id/tenant_id; the two must agree."}


def update_body(res: Resource) -> dict[str, Any]:
    return {**ENVELOPE, "required": [res.member], "properties": {res.member: _item(res, put=True)}}


def member_response(res: Resource) -> dict[str, Any]:
    return {"type": "object", "required": [res.member], "additionalProperties": False,
            "properties": {res.member: object_schema(res)}}


def create_response(res: Resource) -> dict[str, Any]:
    bulk = {"type": "object", "required": [res.collection], "additionalProperties": False,
            "properties": {res.collection: {"type": "array", "items": object_schema(res)}}}
    return {"anyOf": [member_response(res), bulk]}


def list_response(res: Resource) -> dict[str, Any]:
    return {"type": "object", "required": [res.collection], "additionalProperties": False, "properties": {
        res.collection: {"type": "array", "items": object_schema(res)},
        f"{res.collection}_links": {"type": "array", "items": LINK}}}


def _query(name: str, schema: dict[str, Any], description: str, many: bool = True) -> dict[str, Any]:
    if many:
        schema = {"type": "array", "items": schema}
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema,
            **({"style": "form", "explode": True} if many else {})}


def fields_parameter() -> dict[str, Any]:
    return _query("fields", TEXT, "show only these attributes (repeat for several)")


def list_parameters(res: Resource) -> list[dict[str, Any]]:
    sortable = [a.name for a in res.attrs if a.visible and a.sortable]
    params = [fields_parameter()]
    for a in res.attrs:
        if a.visible and a.name not in PAGING:
            value = QUERY_BOOLEAN if a.check is boolean else TEXT
            words = "has all of these" if a.check is list else "is one of these"
            params.append(_query(a.name, value, f"only objects whose {a.name} {words}"))
    params += [
        _query("sort_key", {"type": "string", "enum": sortable}, "sort by these attributes, most significant first "
               "(neutron-lib's sort keys only)"),
        _query("sort_dir", {"type": "string", "enum": ["asc", "desc"]},
               "one per sort_key, in the same order (Neutron requires as many as there are sort keys)"),
        _query("limit", {"type": "integer", "minimum": 0, "maximum": 10**MAX_DIGITS - 1},
               "page size (0: no limit); the answer links the next page", many=False),
        _query("marker", TEXT, "the id of the last object of the previous page (404 if there is none)", many=False),
        _query("page_reverse", QUERY_BOOLEAN, "page backwards from the marker", many=False),
    ]
    return params


# --- quotas ------------------------------------------------------------------------------------------------
QUOTA_VALUE = {"type": "integer", "minimum": -1, "maximum": QUOTA_MAX, "description": "-1: unlimited"}
QUOTA = {"type": "object", "additionalProperties": False, "required": list(TAAS_QUOTA_DEFAULTS),
         "properties": {name: QUOTA_VALUE for name in TAAS_QUOTA_DEFAULTS}}
QUOTA_USAGE = {"type": "object", "additionalProperties": False, "required": ["limit", "used", "reserved"],
               "properties": {"limit": QUOTA_VALUE, "used": {"type": "integer", "minimum": 0},
                              "reserved": {"type": "integer", "minimum": 0}}}
PROJECT_ID = {"type": "string", "maxLength": 255, "pattern": NO_NUL}


def quota_schemas() -> dict[str, dict[str, Any]]:
    listed = {**QUOTA, "required": ["project_id", "tenant_id", *TAAS_QUOTA_DEFAULTS],
              "properties": {"project_id": {"type": "string"}, "tenant_id": {"type": "string"}, **QUOTA["properties"]}}
    return {
        "Quota": {"type": "object", "additionalProperties": False, "required": ["quota"],
                  "properties": {"quota": QUOTA}},
        "QuotaDetails": {"type": "object", "additionalProperties": False, "required": ["quota"], "properties": {
            "quota": {**QUOTA, "properties": {name: QUOTA_USAGE for name in TAAS_QUOTA_DEFAULTS}}}},
        "QuotaList": {"type": "object", "additionalProperties": False, "required": ["quotas"],
                      "properties": {"quotas": {"type": "array", "items": listed}}},
        "QuotaUpdate": {**ENVELOPE, "required": ["quota"], "properties": {"quota": {
            "type": "object", "additionalProperties": False,
            "properties": {**QUOTA["properties"],
                           "check_limit": {"type": "boolean", "description": "refuse a limit below the usage"},
                           "force": {"type": "boolean", "description": "accepted as Neutron does; the default"}}}}},
    }


EXTENSION = {"type": "object", "additionalProperties": False,
             "required": ["alias", "name", "description", "updated", "links"],
             "properties": {k: {"type": "string"} for k in ("alias", "name", "description", "updated")}
             | {"links": {"type": "array"}}}
