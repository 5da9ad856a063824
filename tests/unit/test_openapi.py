"""Finding 10: the OpenAPI document describes the API as it behaves. Its shape is checked here directly;
schemathesis checks the behaviour against it, on a real daemon (tests/system/test_schemathesis.py)."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from opentap.api import (
    capabilities,
    captures,
    flowroutes,
    keystone,
    metrics,
    neutron,
    overview,
    quotas,
    retrieve,
    rings,
    schemas,
)
from opentap.api.captures import CaptureBody
from opentap.api.errors import is_keystone


def test_every_operation_is_described(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"] == {"token": {
        "type": "apiKey", "in": "header", "name": "X-Auth-Token", "description": doc["components"]["securitySchemes"]
        ["token"]["description"]}}
    routes = [r for m in (capabilities, captures, neutron, quotas, retrieve, keystone, metrics, flowroutes, overview,
                          rings)
              for r in m.router.routes]
    routes += [r for r in client.app.routes if isinstance(r, APIRoute)]  # /healthz
    served = {(m.lower(), r.path) for r in routes if r.include_in_schema for m in r.methods - {"HEAD"}}
    described = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert described == served
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert "422" not in codes, (method, path)
            assert all(p["name"].lower() != "x-auth-token" for p in op.get("parameters", [])), (method, path)
            if path in ("/healthz", "/v3"):  # liveness, and Keystone's version document: no token, as Keystone's
                assert "security" not in op
                continue
            assert op["security"] == [{"token": []}] and {"400", "401"} <= codes, (method, path)
            if method in ("post", "put"):
                assert "413" in codes and "requestBody" in op, (method, path)
            family = ("KeystoneError" if is_keystone(path) else "NeutronError" if path.startswith("/v2.0")
                      else "OpenTapError")
            for code in codes - {"200", "201", "204", "401"}:
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{family}"}, (method, path, code)
    tap_flows = doc["paths"]["/v2.0/taas/tap_flows"]
    assert {p["name"] for p in tap_flows["get"]["parameters"]} >= {"fields", "limit", "marker", "sort_key",
                                                                   "direction", "vlan_filter"}
    assert "requestBody" in tap_flows["post"] and "409" in tap_flows["post"]["responses"]
    assert {"429", "507"} <= set(doc["paths"]["/captures"]["post"]["responses"])
    assert client.get("/docs").status_code == 200


def test_every_capture_parameter_is_stated_exactly() -> None:
    """A capture option added to the API must be added to api/schemas.py too, with its exact form."""
    assert set(schemas.CAPTURE_BODY["properties"]) == set(CaptureBody.model_fields)
    route = next(r for r in captures.router.routes if getattr(r, "path", "") == "/capture/{capture_type}")
    assert {p.alias for p in route.dependant.query_params} == set(schemas.capture_query())


def test_a_405_lists_every_method_of_the_path(client: TestClient) -> None:
    for path, allowed in (("/captures", "GET, HEAD, POST"), ("/v2.0/ports/x", "DELETE, GET, HEAD, PUT"),
                          ("/captures/x", "DELETE, GET, HEAD")):
        r = client.patch(path, headers={"X-Auth-Token": "tok-admin"})
        assert r.status_code == 405 and r.headers["allow"] == allowed, (path, r.headers)
