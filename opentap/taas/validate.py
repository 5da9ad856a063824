"""Request bodies -> checked attribute values, with Neutron's 400s in Neutron's words."""

from __future__ import annotations

from typing import Any

from opentap.auth import Principal

from . import errors
from .attributes import REQUIRED, Resource

OTHER_PROJECT = ("Specifying 'project_id' or 'tenant_id' other than the authenticated project in request "
                 "requires admin privileges")


def _known(res: Resource, item: dict[str, Any]) -> None:
    unknown = [k for k in item if k not in res.by_name or not res.by_name[k].visible]
    if unknown:
        raise errors.bad_request(f"Unrecognized attribute(s) '{', '.join(unknown)}'")


def _checked(res: Resource, name: str, value: Any) -> Any:
    try:
        return res.by_name[name].check(value)
    except ValueError as e:
        raise errors.invalid_input(name, str(e)) from None


def _envelope(res: Resource, body: Any) -> Any:
    if body is None or body == {}:
        raise errors.bad_request("Resource body required")
    if not isinstance(body, dict):
        raise errors.bad_request("Body contains invalid data")
    return body


def _project(item: dict[str, Any], who: Principal) -> str:
    project, tenant = item.pop("project_id", None), item.pop("tenant_id", None)
    if project is not None and tenant is not None and project != tenant:
        raise errors.bad_request("'project_id' and 'tenant_id' do not match")
    wanted = project if project is not None else tenant if tenant is not None else who.project
    if wanted != who.project and not who.is_admin:
        raise errors.bad_request(OTHER_PROJECT)
    return wanted


def one_for_create(res: Resource, item: Any, who: Principal) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise errors.bad_request("Body contains invalid data")
    _known(res, item)
    for name in item:
        if not res.by_name[name].allow_post:
            raise errors.bad_request(f"Attribute '{name}' not allowed in POST")
    out: dict[str, Any] = {}
    for attr in res.attrs:
        if not attr.allow_post or attr.alias_of:
            continue
        if attr.name in item:
            out[attr.name] = _checked(res, attr.name, item[attr.name])
        elif attr.default is REQUIRED:
            raise errors.bad_request(f"Failed to parse request. Required attribute '{attr.name}' not specified")
        else:
            out[attr.name] = attr.default
    for name in ("project_id", "tenant_id"):
        if name in item:
            _checked(res, name, item[name])
    out["project_id"] = _project(dict(item), who)
    return out


def for_create(res: Resource, body: Any, who: Principal) -> tuple[list[dict[str, Any]], bool]:
    """The checked items of a POST, and whether it was a bulk create ({"tap_services": [...]})."""
    body = _envelope(res, body)
    if res.collection in body and res.member not in body:
        items = body[res.collection]
        if not isinstance(items, list) or not items:
            raise errors.bad_request("Resources required")
        return [one_for_create(res, item, who) for item in items], True
    if not isinstance(body.get(res.member), dict):
        raise errors.bad_request(f"Unable to find '{res.member}' in request body")
    return [one_for_create(res, body[res.member], who)], False


def for_update(res: Resource, body: Any) -> dict[str, Any]:
    body = _envelope(res, body)
    item = body.get(res.member)
    if not isinstance(item, dict):
        raise errors.bad_request(f"Unable to find '{res.member}' in request body")
    _known(res, item)
    for name in item:
        if not res.by_name[name].allow_put:
            raise errors.bad_request(f"Cannot update read-only attribute {name}")
    return {name: _checked(res, name, value) for name, value in item.items()}
