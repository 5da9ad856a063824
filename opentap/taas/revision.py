"""`If-Match: revision_number=N`, as Neutron answers it.

Neutron reads the header on every call to a resource (webob's strong ETags: `revision_number=3` bare or quoted;
`*` and other tags are no constraint), refuses a malformed or repeated revision_number tag with a 400, and
enforces the constraint when the call writes: a resource with standard attributes (here: ports) must be at
that revision (else 412, and nothing changes); any other resource (tap services and flows, which have no
revision) is a 400 "Revision matching not supported for this resource". Reads ignore the constraint."""

from __future__ import annotations

import re
from typing import Any

from opentap import wire

from . import errors
from .attributes import Resource

# webob's ETag grammar for If-Match: quoted tags, W/ marking the weak ones (which a strong match ignores)
_ETAG = re.compile(r'(?:^|\s)(W/)?"((?:\\"|.)*?)"')
PREFIX = "revision_number="


def _etags(header: str) -> list[str]:
    if header == "*" or not header:
        return []
    found = _ETAG.findall(header)
    if not found:
        return [header]  # an unquoted value is one tag, commas and all
    return [tag for weak, tag in found if not weak]


def constraint(header: str | None) -> int | None:
    """The revision an If-Match header asks for, or None when it asks for none."""
    wanted: int | None = None
    for tag in _etags(header or ""):
        if not tag.startswith(PREFIX):
            continue
        if wanted is not None:
            raise errors.bad_request("Multiple revision_number etags are not supported.")
        try:
            wanted = wire.integer(tag[len(PREFIX):])
        except wire.WireError:
            raise errors.bad_request("Revision number etag must be in the format of revision_number=<int>") from None
    return wanted


def enforce(res: Resource, wanted: int | None, row: Any = None) -> None:
    """Before a write: the constraint holds, or the write is refused. row: the object written (None: a create)."""
    if wanted is None:
        return
    if "revision_number" not in res.by_name:
        raise errors.NeutronError(400, "BadRequest", f"Bad {res.collection} request: Revision matching not "
                                                     "supported for this resource.")
    if row is not None and row.revision_number != wanted:
        raise errors.NeutronError(412, "RevisionNumberConstraintFailed",
                                  f"Constrained to {wanted}, but current revision is {row.revision_number}")
