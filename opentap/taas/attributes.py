"""The TaaS resources, declared once. Each attribute says how it is checked and converted, whether a POST or a
PUT may set it, its default, whether clients see it, and how it is stored; validation (validate.py), the tables
(store.py), the API (api/neutron.py) and the CLI all read these declarations, in the spirit of neutron-lib's
attribute maps."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentap import hostif
from opentap.datapath.base import vlan_pairs

REQUIRED = object()  # no default: a POST must give the attribute
DIRECTIONS = ("IN", "OUT", "BOTH")
# check -> the JSON Schema of exactly what it accepts (the OpenAPI document says so: taas/apidoc.py)
ACCEPTS: dict[Callable[[Any], Any], dict[str, Any]] = {}
NO_NUL = "^[^\\u0000]*$"  # the API boundary refuses NUL in any string (PostgreSQL cannot store one)
UUID_PATTERN = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def _accepts(check: Callable[[Any], Any], schema: dict[str, Any]) -> Callable[[Any], Any]:
    ACCEPTS[check] = schema
    return check


_UUID = re.compile(UUID_PATTERN[1:-1])


def uuid_value(value: Any) -> str:
    """A UUID in ASCII hex, with or without its hyphens, as lowercase canonical text. (uuid.UUID alone would
    also take braces, a urn: prefix, blanks and other scripts' digits, through int(text, 16).)"""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return str(uuid.UUID(value))
    raise ValueError(f"'{value}' is not a valid UUID")


def string(max_len: int = 255) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"'{value}' is not a valid string")
        if len(value) > max_len:
            raise ValueError(f"'{value}' exceeds maximum length of {max_len}")
        return value
    _accepts(check, {"type": "string", "maxLength": max_len, "pattern": NO_NUL})
    return check


def boolean(value: Any) -> bool:
    """JSON true or false. (Neutron's convert_to_boolean also takes 0, 1 and the strings "true"/"false"; in a
    body, where JSON has booleans, a number or a string standing for one is refused. Query strings are text
    and use wire.query_boolean.)"""
    if isinstance(value, bool):
        return value
    raise ValueError(f"'{value}' is not a boolean (JSON true or false)")


def one_of(values: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in values:
            raise ValueError(f"'{value}' is not in {list(values)}")
        return value
    _accepts(check, {"type": "string", "enum": list(values)})
    return check


_VLAN_FILTER = re.compile(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*")  # ASCII digits only; fullmatch


def vlan_filter(value: Any) -> str | None:
    """null, or VLAN ids and ranges like "9,18-27", each id 0-4095 and each range low-high."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) > 1024:  # Neutron's column size; keeps the kernel program short
        raise ValueError(f"'{value[:40]}...' exceeds maximum length of 1024")
    if not isinstance(value, str) or not _VLAN_FILTER.fullmatch(value):
        raise ValueError(f"'{value}' is not a valid VLAN filter (ids and ranges like 9,18-27)")
    for low, high in vlan_pairs(value):
        if high > 4095 or low > high:
            shown = str(low) if low == high else f"{low}-{high}"
            raise ValueError(f"'{shown}' is not a VLAN id or range within 0-4095")
    return value


def binding_profile(value: Any) -> dict[str, Any]:
    """A dict; ours must name the host interface the port is, as {"interface": "vnet3"}, and may say
    "host_side": true when that interface is the host's own (a physical NIC) rather than the host end of a
    VM's or container's link, which turns the mirror's IN and OUT around."""
    if not isinstance(value, dict):
        raise ValueError(f"'{value}' is not a dictionary")
    name = value.get("interface")
    if not hostif.valid_name(name):
        raise ValueError(f"'{value}' does not name an interface of this host as {{\"interface\": NAME}}")
    if not isinstance(value.get("host_side", False), bool):
        raise ValueError(f"'{value}' has a host_side that is not true or false")
    return value


_VLAN_ID = "0*(?:[0-9]{1,3}|[1-3][0-9]{3}|40[0-8][0-9]|409[0-5])"  # 0-4095
_accepts(uuid_value, {"type": "string", "pattern": UUID_PATTERN})
_accepts(boolean, {"type": "boolean"})
_accepts(vlan_filter, {"anyOf": [{"type": "null"}, {
    "type": "string", "maxLength": 1024, "pattern": f"^{_VLAN_ID}(-{_VLAN_ID})?(,{_VLAN_ID}(-{_VLAN_ID})?)*$",
    "description": "VLAN ids and ranges such as 9,18-27 (ids 0-4095; each range's first id at most its last)"}]})
_accepts(binding_profile, {
    "type": "object", "required": ["interface"], "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
    "properties": {"interface": {"type": "string", "pattern": hostif.NAME_PATTERN, "description": "a host interface"},
                   "host_side": {"type": "boolean", "description": "the interface is the host's own (a NIC)"}}})


@dataclass(frozen=True)
class Attr:
    name: str
    check: Callable[[Any], Any]
    column: str | None  # the stored type, one of store.COLUMN_TYPES; None: not stored (computed, or an alias)
    allow_post: bool = False
    allow_put: bool = False
    default: Any = REQUIRED
    visible: bool = True
    alias_of: str | None = None  # tenant_id is project_id under its old name
    sortable: bool = False  # neutron-lib's is_sort_key: a list may be sorted by it (sort_key=)

    @property
    def column_name(self) -> str:
        return self.name.replace(":", "_")


@dataclass(frozen=True)
class Resource:
    collection: str  # "tap_services": the JSON envelope of a list, and the path's last part
    member: str  # "tap_service": the envelope of one object
    prefix: str  # "/v2.0/taas"
    not_found: tuple[str, str]  # Neutron's exception type and message ({id} is filled in)
    attrs: tuple[Attr, ...]
    by_name: dict[str, Attr] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {a.name: a for a in self.attrs})

    @property
    def path(self) -> str:
        return f"{self.prefix}/{self.collection}"


COMMON = (
    Attr("id", uuid_value, "uuid", sortable=True),
    Attr("project_id", string(255), "name", allow_post=True, default=None, sortable=True),  # None: the caller's
    Attr("tenant_id", string(255), None, allow_post=True, default=None, alias_of="project_id", sortable=True),
    Attr("name", string(255), "name", allow_post=True, allow_put=True, default="", sortable=True),
    Attr("description", string(255), "name", allow_post=True, allow_put=True, default=""),
)
# Neutron's standard attributes, which ports have and TaaS resources do not: a revision bumped by every update
# that changes the port (If-Match: revision_number=N compares it), creation and update times in UTC, and tags.
# This device serves no tag API, so a port's tags are always the empty list.
STANDARD = (
    Attr("revision_number", int, "int"),
    Attr("created_at", string(20), "time"),
    Attr("updated_at", string(20), "time"),
    Attr("tags", list, None),
)

PORTS = Resource("ports", "port", "/v2.0", ("PortNotFound", "Port {id} could not be found."), COMMON + (
    Attr("mac_address", string(17), None, sortable=True),  # read from the interface
    Attr("status", string(16), None, sortable=True),  # ACTIVE when the interface exists and is up, else DOWN
    Attr("admin_state_up", boolean, "bool", allow_post=True, allow_put=True, default=True, sortable=True),
    Attr("port_security_enabled", boolean, "bool", allow_post=True, allow_put=True, default=True),
    Attr("device_id", string(255), "name", allow_post=True, allow_put=True, default="", sortable=True),
    Attr("device_owner", string(255), "name", allow_post=True, allow_put=True, default="", sortable=True),
    # the host the interface is on: this device's name unless the creator says otherwise
    Attr("binding:host_id", string(255), "name", allow_post=True, allow_put=True, default=""),
    Attr("binding:profile", binding_profile, "json", allow_post=True, allow_put=True),
) + STANDARD)

TAP_SERVICES = Resource(
    "tap_services", "tap_service", "/v2.0/taas", ("TapServiceNotFound", "Tap Service  {id} does not exist"),
    COMMON + (
        Attr("port_id", uuid_value, "uuid", allow_post=True),
        Attr("status", string(16), "status"),
        Attr("tap_id", int, "int", visible=False),
    ))

TAP_FLOWS = Resource(
    "tap_flows", "tap_flow", "/v2.0/taas", ("TapFlowNotFound", "Tap Flow  {id} does not exist"),
    COMMON + (
        Attr("tap_service_id", uuid_value, "uuid", allow_post=True),
        Attr("source_port", uuid_value, "uuid", allow_post=True),
        Attr("direction", one_of(DIRECTIONS), "direction", allow_post=True),
        Attr("status", string(16), "status"),
        Attr("status_reason", string(255), "name"),  # ours, not Neutron's: why the flow is in ERROR
        Attr("vlan_filter", vlan_filter, "vlan_filter", allow_post=True, default=None),
        Attr("slot", int, "int", visible=False),  # the datapath's number for this flow's rules
        # across hosts, what each end's agent says of its half: None (not yet), "ok", or why it cannot be
        # (taas/flowstatus.py); status combines the two
        Attr("source_side", string(255), "name", visible=False),
        Attr("service_side", string(255), "name", visible=False),
    ))

RESOURCES = (PORTS, TAP_SERVICES, TAP_FLOWS)
