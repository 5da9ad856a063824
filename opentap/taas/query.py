"""Neutron's list query parameters: `fields`, `attr=value` filters, `sort_key`/`sort_dir`, and
`limit`/`marker`/`page_reverse` pagination with `<collection>_links`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from opentap import wire

from . import errors
from .attributes import Resource, boolean

PAGING = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}


def _comparable(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else "" if value is None else str(value)


def filtered(res: Resource, objs: list[dict[str, Any]], params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Keep the objects matching every filtered attribute; repeating an attribute means any of the values."""
    wanted: dict[str, set[str]] = {}
    for key, value in params:
        if key in PAGING:
            continue
        attr = res.by_name.get(key)
        if attr is None or not attr.visible:
            raise errors.bad_request(f"{key} is invalid attribute for filtering")
        if attr.check is boolean:
            try:
                value = str(wire.query_boolean(value)).lower()
            except ValueError as e:
                raise errors.invalid_input(key, str(e)) from None
        wanted.setdefault(key, set()).add(value)
    return [o for o in objs if all(_matches(o[k], vals) for k, vals in wanted.items())]


def _matches(value: Any, wanted: set[str]) -> bool:
    """A scalar is one of the wanted values; a list (a port's tags) holds every one of them, as Neutron's
    tags filter means."""
    if isinstance(value, list):
        return wanted <= {_comparable(v) for v in value}
    return _comparable(value) in wanted


def sorted_objs(res: Resource, objs: list[dict[str, Any]], keys: list[str], dirs: list[str]) -> list[dict[str, Any]]:
    """Neutron's sorting, with its checks and words: as many sort_dir as sort_key (empty ones do not count),
    and only the attributes neutron-lib marks as sort keys."""
    keys, dirs = [k for k in keys if k], [d for d in dirs if d]
    if len(keys) != len(dirs):
        raise errors.bad_request("The number of sort_keys and sort_dirs must be same")
    unknown = [k for k in keys if k not in res.by_name or not res.by_name[k].sortable]
    if unknown:
        raise errors.bad_request(f"{unknown} is invalid attribute for sort_keys")
    wrong = [d for d in dirs if d not in ("asc", "desc")]
    if wrong:
        raise errors.bad_request(f"{wrong} is invalid value for sort_dirs, valid value is 'asc' and 'desc'")
    if not keys:
        return objs  # in creation order
    out = list(objs)
    order = list(zip(keys, dirs, strict=True)) + [("id", "asc")]  # id breaks ties
    for key, direction in reversed(order):  # stable sorts, least significant key first
        out.sort(key=lambda o, k=key: (o[k] is not None, _sortable(o[k])), reverse=direction == "desc")
    return out


def _sortable(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) else str(value)


def page(res: Resource, objs: list[dict[str, Any]], params: dict[str, list[str]], url: str,
         ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(the page, its links). Without `limit` everything is one page."""
    try:  # checked even without a limit: a bad value is a 400 whether or not it would matter
        reverse = wire.query_boolean(params["page_reverse"][-1]) if params.get("page_reverse") else False
    except ValueError as e:
        raise errors.invalid_input("page_reverse", str(e)) from None
    raw_limit = (params.get("limit") or [None])[-1]
    if raw_limit is None:
        return objs, []
    try:
        limit = wire.integer(raw_limit)  # ASCII digits: not ' 10', '1_0' or another script's digits
    except wire.WireError:
        raise errors.bad_request(f"'{raw_limit[:40]}' is not an integer") from None
    if limit < 0:
        raise errors.bad_request(f"'{raw_limit}' should be non-negative")
    marker = (params.get("marker") or [None])[-1]
    ids = [o["id"] for o in objs]
    if marker is not None and marker not in ids:
        raise errors.not_found(res.not_found[0], res.not_found[1].format(id=marker))
    if reverse:
        end = ids.index(marker) if marker else len(objs)
        chunk = objs[max(0, end - limit) if limit else 0:end]
    else:
        start = ids.index(marker) + 1 if marker else 0
        chunk = objs[start:start + limit] if limit else objs[start:]
    links = []
    base = {k: v for k, v in params.items() if k not in ("marker", "page_reverse")}
    if chunk and limit and len(chunk) == limit:
        links.append(_link("next" if not reverse else "previous", url, base, chunk[-1 if not reverse else 0]["id"],
                           reverse))
    if chunk and marker:
        links.append(_link("previous" if not reverse else "next", url, base, chunk[0 if not reverse else -1]["id"],
                           not reverse))
    return chunk, links


def _link(rel: str, url: str, base: dict[str, list[str]], marker: str, reverse: bool) -> dict[str, str]:
    query = [(k, v) for k, vs in base.items() for v in vs] + [("marker", marker)]
    if reverse:
        query.append(("page_reverse", "True"))
    return {"rel": rel, "href": f"{url}?{urlencode(query)}"}


def selected(objs: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    if not fields:
        return objs
    return [{k: v for k, v in o.items() if k in fields} for o in objs]
