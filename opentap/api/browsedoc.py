"""The OpenAPI entries of the routes the web interface needed (flowroutes.py, overview.py) and of GET /captures'
paging parameters: their exact parameters, answers and error statuses, in the tables openapi.py completes the
document from."""

from __future__ import annotations

from typing import Any

from .flowroutes import MAX_BUCKETS, MAX_LIMIT, MAX_TOP
from .flowtable import SHOWN, SORTABLE
from .schemas import EMPTY, NULL, STATES, TEXT

NUMBER = {"type": "number"}
COUNT = {"type": "integer", "minimum": 0}
DECIMAL_TEXT = {"type": "string", "maxLength": 30, "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
                "description": "UNIX seconds in ASCII digits with an optional fraction"}


def _int(low: int, high: int) -> dict[str, Any]:
    return {"anyOf": [{"type": "integer", "minimum": low, "maximum": high}, EMPTY]}


def _param(name: str, schema: dict[str, Any], description: str = "", where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema,
            **({"description": description} if description else {})}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def capture_list_params() -> list[dict[str, Any]]:
    """GET /captures: the original's filters, and what the web interface pages and filters a long list with."""
    return [
        _param("state", TEXT), _param("type", TEXT),
        _param("project", TEXT, "admins: only this project's captures"),
        _param("observationpt", TEXT, "only captures at this observation point"),
        _param("since", {"anyOf": [DECIMAL_TEXT, EMPTY]}, "only captures whose window ends at or after this time"),
        _param("until", {"anyOf": [DECIMAL_TEXT, EMPTY]}, "only captures whose window starts at or before it"),
        _param("limit", _int(1, 1000), "at most this many captures, and the answer's `total` (none: all of them)"),
        _param("offset", _int(0, 10**12), "with limit: skip this many"),
        _param("order", {"type": "string", "enum": ["", "asc", "desc"]}, "by creation: asc (default) or desc"),
    ]


FILTERS = [
    _param("host", TEXT, "records from or to this address"), _param("sa", TEXT, "records from this address"),
    _param("da", TEXT, "records to this address"), _param("port", _int(0, 65535), "either port"),
    _param("sp", _int(0, 65535), "source port"), _param("dp", _int(0, 65535), "destination port"),
    _param("pr", TEXT, "protocol as nfdump names it: TCP, UDP, ICMP, … (any case)"),
    _param("since", {"anyOf": [DECIMAL_TEXT, EMPTY]}, "records that end at or after this UNIX time"),
    _param("until", {"anyOf": [DECIMAL_TEXT, EMPTY]}, "records that start at or before it"),
]
FLOW_NOTE = ("A 400 when the capture is not a netflow capture or since/until is beyond 4102444800; a 409 while it "
             "has not started or when it has no flow records, or (admins) when several projects use the id and "
             "none is named. A capture's first call reads its whole flow file into an index (about 2.5 s for a "
             "million records on a small machine); later calls read only what was appended.")

GROUP = {"type": "object", "required": ["bytes", "packets", "flows"],
         "properties": {"bytes": COUNT, "packets": COUNT, "flows": COUNT}}
ADDRESS_GROUP = {"allOf": [GROUP, {"type": "object", "required": ["address"],
                                   "properties": {"address": {"type": "string"}}}]}
SERIES = {"type": "object", "additionalProperties": {"type": "array", "items": COUNT}}
CAPTURE_HEAD = {"id": {"type": "string"}, "state": {"type": "string", "enum": STATES}, "partial": {"type": "boolean"},
                "records": COUNT, "matched": COUNT}
SCHEMAS: dict[str, dict[str, Any]] = {
    "FlowPage": {"type": "object", "required": [*CAPTURE_HEAD, "offset", "limit", "sort", "order", "columns", "rows"],
                 "properties": {**CAPTURE_HEAD, "offset": COUNT, "limit": COUNT,
                                "sort": {"type": "string", "enum": list(SORTABLE)},
                                "order": {"type": "string", "enum": ["asc", "desc"]},
                                "columns": {"type": "array", "items": {"type": "string", "enum": list(SHOWN)}},
                                "rows": {"type": "array", "items": {"type": "array", "items": {
                                    "anyOf": [{"type": "string"}, NUMBER]}}}}},
    "FlowSummary": {"type": "object", "required": [
        *CAPTURE_HEAD, "bytes", "packets", "first", "last", "talkers", "listeners", "ports", "protocols", "timeline"],
        "properties": {
            **CAPTURE_HEAD, "bytes": COUNT, "packets": COUNT, "first": NUMBER, "last": NUMBER,
            "talkers": {"type": "array", "items": ADDRESS_GROUP, "description": "sources, most bytes first"},
            "listeners": {"type": "array", "items": ADDRESS_GROUP, "description": "destinations, most bytes first"},
            "ports": {"type": "array", "description": "applications by their lower port, most bytes first", "items": {
                "allOf": [GROUP, {"type": "object", "required": ["protocol", "port", "label"], "properties": {
                    "protocol": {"type": "string"}, "port": COUNT, "label": {"type": "string"}}}]}},
            "protocols": {"type": "array", "items": {"allOf": [GROUP, {
                "type": "object", "required": ["protocol"], "properties": {"protocol": {"type": "string"}}}]}},
            "timeline": {"type": "object", "required": ["start", "step", "buckets", "protocols", "ports"],
                         "description": "bytes per `step` seconds from `start`, by the records' start times",
                         "properties": {"start": NUMBER, "step": COUNT, "buckets": COUNT, "protocols": SERIES,
                                        "ports": SERIES}}}},
    "ObservationPoints": {"type": "object", "required": ["points"], "properties": {"points": {
        "type": "array", "items": {
            "type": "object", "required": ["name", "kind", "state", "time", "history"],
            "properties": {
                "name": {"type": "string"}, "kind": {"type": "string"}, "state": {"type": "string"},
                "interface": {"type": "string", "description": "admins only"}, "time": NUMBER,
                **{k: {"anyOf": [COUNT, NULL]} for k in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")},
                **{k: {"anyOf": [NUMBER, NULL]} for k in ("rx_bps", "tx_bps", "rx_pps", "tx_pps")},
                "history": {"type": "array", "description": "[UNIX time, rx B/s, tx B/s, rx packets/s, tx packets/s]",
                            "items": {"type": "array", "items": NUMBER}}}}}}},
    "Usage": {"type": "object", "required": ["project", "device"], "properties": {
        "project": {"type": "object", "required": ["name", "used_bytes", "quota_bytes", "running",
                                                   "max_concurrent_captures"],
                    "properties": {"name": {"type": "string"}, "used_bytes": COUNT, "quota_bytes": COUNT,
                                   "running": COUNT, "max_concurrent_captures": COUNT}},
        "device": {"type": "object", "required": ["quota_bytes", "max_concurrent_captures"],
                   "description": "used_bytes, running and the filesystem's size: admins only",
                   "properties": {"quota_bytes": COUNT, "max_concurrent_captures": COUNT,
                                  "capture_length_limit": NUMBER, "retention_minutes": NUMBER, "used_bytes": COUNT,
                                  "running": COUNT, "filesystem_bytes": COUNT, "filesystem_free_bytes": COUNT}}}},
}


def ops(op: Any, json: Any, path_text: dict[str, Any], project: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """openapi.py's Op entries (op: its Op class, json: its _json) for these routes."""
    capture = [_param("capture_id", path_text, where="path"), project]
    table = [_param("sort", {"type": "string", "enum": ["", *SORTABLE]}, "the column to sort by (default ts)"),
             _param("order", {"type": "string", "enum": ["", "asc", "desc"]}, "asc (default) or desc"),
             _param("offset", _int(0, 10**12), "skip this many matching records"),
             _param("limit", _int(1, MAX_LIMIT), "records in the page (default 50)")]
    glance = [_param("top", _int(1, MAX_TOP), "entries in each top list (default 10)"),
              _param("buckets", _int(1, MAX_BUCKETS), "time buckets in the timeline, at most (default 60)")]
    return {
        ("get", "/captures/{capture_id}/flows"): op(
            {"200": json(_ref("FlowPage"), "one page of the matching records, in the order asked")},
            [400, 401, 404, 409], capture + table + FILTERS, note=FLOW_NOTE),
        ("get", "/captures/{capture_id}/flows/summary"): op(
            {"200": json(_ref("FlowSummary"), "the matching records at a glance")},
            [400, 401, 404, 409], capture + glance + FILTERS, note=FLOW_NOTE),
        ("get", "/observation-points"): op(
            {"200": json(_ref("ObservationPoints"), "the points the caller may use")}, [400, 401],
            note="Rates are computed between samples taken when someone asks (at most one every half second per "
                 "interface; the last 120 kept): null until two samples exist."),
        ("get", "/usage"): op({"200": json(_ref("Usage"), "the caller's project's use and the device's limits")},
                              [400, 401]),
    }

