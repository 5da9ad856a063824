"""JSON Schemas of OpenTap's own routes for the OpenAPI document: what each accepts, exactly (the same limits
the checks in capture/plan.py apply, so a client generated from the document sends what the device takes),
and what each answers. Objects the device may grow keep additionalProperties open; request bodies do not."""

from __future__ import annotations

from typing import Any

from opentap import exportaddr
from opentap.capture.bpf import MAX_FILTER_LEN
from opentap.capture.plan import MAX_UNIX_TIME, OPTION_LIMITS
from opentap.capture.registry import REGISTRY
from opentap.taas.attributes import NO_NUL
from opentap.wire import MAX_DIGITS

NULL = {"type": "null"}
TEXT = {"type": "string", "pattern": NO_NUL}
EMPTY = {"type": "string", "maxLength": 0, "description": "empty: as if not given"}
TIME_TEXT = {"type": "string", "maxLength": MAX_DIGITS, "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
             "description": "UNIX seconds in ASCII digits with an optional fraction; 0 to 4102444800"}
TIME = {"anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_UNIX_TIME}, TIME_TEXT]}
CAPTURE_ID = {"type": "string", "pattern": "^(|(?!\\.{1,2}$)[A-Za-z0-9_.-]{1,128})$",
              "description": "your own id for the capture: 1-128 of letters, digits, '_', '.', '-' (not . or ..)"}
FILTER = {"type": "string", "maxLength": MAX_FILTER_LEN, "pattern": NO_NUL,
          "description": "a BPF expression, as tcpdump takes it; blanks only: no filter (the answer's msg says so)"}
QUERY_FLAG = {"type": "string", "pattern": "^(|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0|[Yy][Ee][Ss]|[Nn][Oo])$",
              "description": "true, false, 1, 0, yes or no (any case)"}
EXPORT = {"type": "string", "maxLength": exportaddr.MAX_LEN, "pattern": f"(^none$)|({exportaddr.PATTERN})",
          "description": "netflow, admins only: also send the flow records to a collector, ipfix://HOST:PORT (UDP), "
                         "ipfix+tcp://HOST:PORT or netflow9://HOST:PORT (UDP); none: not even the config's default"}
TYPES = list(REGISTRY)
FORMATS = sorted({name for t in REGISTRY.values() for name in t.formats})
MEDIA_TYPES = sorted({f.media_type for t in REGISTRY.values() for f in t.formats.values()})
STATES = ["scheduled", "running", "complete", "truncated", "failed", "cancelled"]


def _option(name: str) -> dict[str, Any]:
    low, high = OPTION_LIMITS[name]
    return {"type": "integer", "minimum": low, "maximum": high}


def capture_query() -> dict[str, dict[str, Any]]:
    """GET /capture/{type}'s query parameters: name -> (schema, required)."""
    return {
        "start": {"schema": TIME_TEXT, "required": True, "description": "UNIX seconds; in the past means now"},
        "stop": {"schema": TIME_TEXT, "required": True, "description": "UNIX seconds"},
        "observationpt": {"schema": TEXT, "description": "an observation point; 0 or absent: the default"},
        "observationPt": {"schema": TEXT, "description": "the original client's spelling of observationpt"},
        "id": {"schema": CAPTURE_ID},
        "filter": {"schema": FILTER, "description": "ethernet and netflow"},
        "snaplen": {"schema": {"anyOf": [_option("snaplen"), EMPTY]}, "description": "bytes kept per packet"},
        "period": {"schema": {"anyOf": [_option("period"), EMPTY]}, "description": "linkstats and sensor: sampling ms "
                   "(default 1000)"},
        "keep_packets": {"schema": QUERY_FLAG, "description": "netflow: keep the pcap after metering"},
        "exclude_device_traffic": {"schema": QUERY_FLAG, "description": "ethernet and netflow: leave out the "
                                   "device's own API and SSH traffic (default true; only admins may say false)"},
        "export": {"schema": {"anyOf": [EXPORT, EMPTY]}, "description": EXPORT["description"]},
    }


CAPTURE_BODY = {
    "type": "object", "additionalProperties": False, "required": ["type", "start", "stop"],
    "properties": {
        "type": {"type": "string", "enum": TYPES},
        "start": TIME, "stop": TIME,
        "observationpt": {"anyOf": [TEXT, NULL]}, "observationPt": {"anyOf": [TEXT, NULL]},
        "id": {"anyOf": [CAPTURE_ID, NULL]},
        "filter": {"anyOf": [FILTER, NULL]},
        "snaplen": {"anyOf": [_option("snaplen"), NULL]},
        "period": {"anyOf": [_option("period"), NULL]},
        "keep_packets": {"anyOf": [{"type": "boolean"}, NULL]},
        "exclude_device_traffic": {"anyOf": [{"type": "boolean"}, NULL]},
        "export": {"anyOf": [EXPORT, NULL]},
    },
}

NUMBER = {"type": "number"}
COUNT = {"type": "integer", "minimum": 0}
MAYBE_TIME = {"anyOf": [NUMBER, NULL]}
CAPTURE = {
    "type": "object",
    "required": ["id", "type", "project_id", "observationpt", "device_filter", "state", "startTime", "stopTime",
                 "duration", "options", "created_at", "started_at", "finished_at", "packets", "bytes", "drops_kernel",
                 "drops_interface", "data_bytes", "reason", "stats"],
    "properties": {
        "id": {"type": "string"}, "type": {"type": "string", "enum": TYPES}, "project_id": {"type": "string"},
        "observationpt": {"type": "string"}, "state": {"type": "string", "enum": STATES},
        "startTime": NUMBER, "stopTime": NUMBER, "duration": NUMBER, "options": {"type": "object"},
        "created_at": NUMBER, "started_at": MAYBE_TIME, "finished_at": MAYBE_TIME, "packets": COUNT,
        "bytes": COUNT, "drops_kernel": COUNT, "drops_interface": COUNT, "data_bytes": COUNT,
        "reason": {"type": "string"}, "stats": {"type": "object"},
        "device_filter": {"anyOf": [{"type": "string"}, NULL],
                          "description": "the filter the device added to leave out its own API and SSH traffic"},
        "interface": {"type": "string", "description": "admins only"},
    },
}
SCHEDULED = {"allOf": [CAPTURE, {"type": "object", "required": ["status", "msg"], "properties": {
    "status": {"const": "success"}, "msg": {"type": "string", "description": "what was changed, if anything"}}}]}
SENSOR_COLUMN = {
    "type": "object", "required": ["name", "kind", "unit", "simulated"],
    "properties": {"name": {"type": "string", "description": "the CSV column"}, "kind": {"type": "string"},
                   "unit": {"type": "string"}, "simulated": {"type": "boolean"},
                   "sensor": {"type": "string", "description": "admins: the [sensors.NAME] it is read from"},
                   "driver": {"type": "string", "enum": ["phidget22", "sysfs", "simulated"], "description": "admins"},
                   "serial": COUNT, "port": COUNT, "part": {"type": "string"}, "path": {"type": "string"}},
}
SENSOR_POINT = {
    "type": "object", "required": ["name", "columns", "simulated", "available"],
    "properties": {"name": {"type": "string"}, "columns": {"type": "array", "items": SENSOR_COLUMN},
                   "simulated": {"type": "boolean"}, "available": {"type": "boolean"},
                   "why": {"type": "string", "description": "why it cannot capture now (when it cannot)"}},
}
CAPABILITIES = {
    "type": "object",
    "required": ["device", "version", "capture_types", "types", "observation_points", "network_observation_pts",
                 "sensor_observation_pts", "default_observation_point", "capture_length_limit", "retention",
                 "max_concurrent_captures"],
    "properties": {
        "device": {"type": "string"}, "version": {"type": "string"},
        "capture_types": {"type": "array", "items": {"type": "string"}}, "types": {"type": "object"},
        "observation_points": {"type": "object", "required": ["network", "sensor"], "properties": {
            "network": {"type": "array", "items": {"type": "object", "required": ["name", "ring_since"], "properties": {
                "ring_since": {"anyOf": [NUMBER, NULL], "description": "how far back the point's ring reaches "
                                                                      "(UNIX seconds); null: no ring"}}}},
            "sensor": {"type": "array", "items": SENSOR_POINT}}},
        "network_observation_pts": {"type": "array", "items": {"type": "string"}},
        "sensor_observation_pts": {"type": "array", "items": {"type": "string"},
                                   "description": "the sensor points (the original's key)"},
        "default_observation_point": {"anyOf": [{"type": "string"}, NULL]},
        "capture_length_limit": NUMBER, "retention_minutes": NUMBER,
        "retention": {"type": "string", "description": "minutes, as text (the original's key)"},
        "max_concurrent_captures": COUNT, "disk_quota_mb": NUMBER, "project": {"type": "string"},
        "roles": {"type": "array", "items": {"type": "string"}}, "versions": {"type": "array"},
    },
}
OPENTAP_ERROR = {"type": "object", "required": ["status", "msg"], "additionalProperties": False,
                 "properties": {"status": {"const": "error"}, "msg": {"type": "string"}}}
NEUTRON_ERROR = {"type": "object", "required": ["NeutronError"], "additionalProperties": False, "properties": {
    "NeutronError": {"type": "object", "required": ["type", "message", "detail"], "additionalProperties": False,
                     "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                                    "detail": {"type": "string"}}}}}


TENANT = {"type": "object", "required": ["id", "name", "description", "enabled"], "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
    "enabled": {"type": "boolean"}}}
PROJECT = {"type": "object", "required": ["id", "name", "domain_id", "enabled", "links"], "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "domain_id": {"type": "string"},
    "enabled": {"type": "boolean"}, "links": {"type": "object"}}}
KEYSTONE = {  # the Keystone v2.0 tenants and v3 projects the clients resolve --project with (api/keystone.py)
    "IdentityVersion": {"type": "object", "required": ["version"], "properties": {"version": {
        "type": "object", "required": ["id", "status", "links"]}}},
    "ProjectOne": {"type": "object", "required": ["project"], "properties": {"project": PROJECT}},
    "ProjectList": {"type": "object", "required": ["projects"], "properties": {
        "projects": {"type": "array", "items": PROJECT}, "links": {"type": "object"}}},
    "TenantOne": {"type": "object", "required": ["tenant"], "properties": {"tenant": TENANT}},
    "TenantList": {"type": "object", "required": ["tenants"], "properties": {
        "tenants": {"type": "array", "items": TENANT}, "tenants_links": {"type": "array"}}},
    "KeystoneError": {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {
        "error": {"type": "object", "required": ["code", "title", "message"], "additionalProperties": False,
                  "properties": {"code": {"type": "integer"}, "title": {"type": "string"},
                                 "message": {"type": "string"}}}}},
}


def capture_request(generated: dict[str, Any] | None) -> dict[str, Any]:
    """POST /captures' body: the model's own schema (FastAPI's), each field it has here stated exactly. A field
    added to the model and not here stays documented as the model says (tests/unit/test_openapi.py asks for it here)."""
    base = dict(generated or {})
    return {**base, **CAPTURE_BODY, "properties": {**base.get("properties", {}), **CAPTURE_BODY["properties"]},
            "required": sorted(set(base.get("required", [])) | set(CAPTURE_BODY["required"]))}


def components(generated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Ours, given FastAPI's generated components."""
    return {
        "OpenTapError": OPENTAP_ERROR, "NeutronError": NEUTRON_ERROR,
        "CaptureRequest": capture_request(generated.get("CaptureBody")),
        "Capture": CAPTURE, "ScheduledCapture": SCHEDULED, "Capabilities": CAPABILITIES,
        "CaptureOne": {"type": "object", "required": ["capture"], "properties": {"capture": CAPTURE}},
        "CaptureList": {"type": "object", "required": ["captures"],
                        "properties": {"captures": {"type": "array", "items": CAPTURE},
                                       "total": {**COUNT, "description": "with limit: the captures that match"},
                                       "offset": COUNT, "limit": COUNT}},
        "CaptureCancelled": {"type": "object", "required": ["status", "msg", "capture"], "properties": {
            "status": {"const": "success"}, "msg": {"type": "string"}, "capture": CAPTURE}},
        "Health": {"type": "object", "required": ["status", "database", "engine"], "properties": {
            "status": {"type": "string", "enum": ["ok", "error"]}, "database": {"type": "string"},
            "engine": {"type": "string", "enum": ["ok", "stopped"]}, "msg": {"type": "string"}}},
    }
