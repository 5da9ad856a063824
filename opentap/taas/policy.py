"""Who may do what, as upstream's default policies: an admin anything; members create, update and delete tap
services and tap flows in their own project; readers only read; ports are created, changed and deleted by
admins (members see and use their own). Visibility across projects is the store's (a 404, not a 403)."""

from __future__ import annotations

from opentap.auth import Principal

from . import errors
from .attributes import PORTS, Resource


def authorize(res: Resource, action: str, who: Principal) -> None:
    """action: create, get, update or delete."""
    if action == "get" or who.is_admin:
        return
    if res is not PORTS and "member" in who.roles:
        return
    raise errors.policy(f"{action}_{res.member}")
