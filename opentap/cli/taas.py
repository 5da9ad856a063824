"""`opentap tap-service-create|list|show|update|delete`, `tap-flow-*` and `port-create|list|show|delete`: the
neutron client's TaaS commands, against a device's /v2.0 API. Options come from the attribute declarations
(opentap/taas/attributes.py): POSTable attributes for create, PUTable ones for update. Objects are named by
id or name; the device's URL and token come from --url/--token or OPENTAP_URL/OPENTAP_TOKEN."""

from __future__ import annotations

import argparse
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from opentap import wire
from opentap.cli.captures import VERIFY_HELP, verify_option
from opentap.cli.output import FORMATS, render, show
from opentap.client import tls
from opentap.taas.attributes import PORTS, REQUIRED, RESOURCES, TAP_FLOWS, TAP_SERVICES, Attr, Resource, boolean

COMMANDS = {PORTS: "port", TAP_SERVICES: "tap-service", TAP_FLOWS: "tap-flow"}
REFERENCES = {"port_id": PORTS, "source_port": PORTS, "tap_service_id": TAP_SERVICES}  # may be given by name
SHORT = {"port_id": "--port", "tap_service_id": "--tap-service"}  # the neutron client's option names
LIST_COLUMNS = ("id", "name", "project_id", "status", "port_id", "tap_service_id", "source_port", "direction",
                "binding:profile")


class CliError(ValueError):
    pass


class Neutron:
    """A device's /v2.0 API over http(s), for these commands (urllib: a request each, nothing streamed)."""

    def __init__(self, url: str, token: str | None, verify: bool | str = True) -> None:
        self.base, self.token, self.verify = url.rstrip("/"), token, verify
        self._context: ssl.SSLContext | None = None

    def _ssl(self) -> ssl.SSLContext | None:
        """The HTTPS context for the device (a pinned certificate is checked before the first request)."""
        parts = urllib.parse.urlsplit(self.base)
        if parts.scheme != "https":
            return None
        if self._context is None:
            try:
                trust = tls.context(self.verify, parts.hostname or "", parts.port or 443)
            except (tls.UntrustedDevice, OSError) as e:
                raise CliError(f"cannot use the device at {self.base}: {e}") from None
            self._context = trust if isinstance(trust, ssl.SSLContext) else ssl.create_default_context()
            if trust is False:
                self._context.check_hostname, self._context.verify_mode = False, ssl.CERT_NONE
        return self._context

    def call(self, method: str, path: str, body: Any = None, query: list[tuple[str, str]] | None = None) -> Any:
        url = self.base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        if self.token:
            req.add_header("X-Auth-Token", self.token)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self._ssl()) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise CliError(_message(e)) from None
        except urllib.error.URLError as e:
            raise CliError(f"cannot reach the device at {self.base}: {e.reason}") from None
        return json.loads(raw) if raw else None

    def find(self, res: Resource, name_or_id: str) -> dict[str, Any]:
        for key in ("id", "name"):
            found = self.call("GET", res.path, query=[(key, name_or_id)])[res.collection]
            if len(found) > 1:
                raise CliError(f"More than one {res.member} exists with the name '{name_or_id}'; use its id")
            if found:
                return found[0]
        raise CliError(f"No {res.member} found for '{name_or_id}'")


def _message(e: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(e.read())
        err = body.get("NeutronError") or body
        return f"{err.get('type', e.code)}: {err.get('message') or err.get('msg')}"
    except ValueError:
        return f"HTTP {e.code}: {e.reason}"


def _option(attr: Attr) -> str:
    return SHORT.get(attr.name, "--" + attr.name.replace("_", "-").replace(":", "-"))


def _value(attr: Attr, text: str) -> Any:
    if attr.check is boolean:  # command-line text; the body carries a JSON boolean
        try:
            return wire.query_boolean(text)
        except wire.WireError as e:
            raise CliError(f"{_option(attr)} {e}") from None
    if attr.column == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise CliError(f"{_option(attr)} takes JSON, such as '{{\"interface\": \"vnet3\"}}'") from None
    return text


def _body(dev: Neutron, res: Resource, args: argparse.Namespace, put: bool) -> dict[str, Any]:
    out = {}
    for attr in res.attrs:
        text = getattr(args, attr.name, None) if (attr.allow_put if put else attr.allow_post) else None
        if text is None or attr.alias_of:
            continue
        ref = REFERENCES.get(attr.name)
        out[attr.name] = dev.find(ref, text)["id"] if ref else _value(attr, text)
    return {res.member: out}


def run(args: argparse.Namespace) -> int:
    res, action = args.resource, args.action
    dev = Neutron(args.url or os.environ.get("OPENTAP_URL", "http://127.0.0.1:2020"),
                  args.token or os.environ.get("OPENTAP_TOKEN"), verify_option(args))
    if action == "list":
        objs = dev.call("GET", res.path)[res.collection]
        columns = [c for c in LIST_COLUMNS if c in res.by_name]
        print(render(objs, args.format, columns))
    elif action == "create":
        print(show(dev.call("POST", res.path, _body(dev, res, args, put=False))[res.member], args.format))
    elif action == "show":
        print(show(dev.find(res, args.target), args.format))
    elif action == "update":
        obj_id = dev.find(res, args.target)["id"]
        print(show(dev.call("PUT", f"{res.path}/{obj_id}", _body(dev, res, args, put=True))[res.member],
                    args.format))
    else:
        dev.call("DELETE", f"{res.path}/{dev.find(res, args.target)['id']}")
        print(f"Deleted {res.member}: {args.target}")
    return 0


def hosts(args: argparse.Namespace) -> int:
    """`opentap hosts`: the deployment's hosts (GET /v2.0/agents, an admin's token), alive or dead."""
    dev = Neutron(args.url or os.environ.get("OPENTAP_URL", "http://127.0.0.1:2020"),
                  args.token or os.environ.get("OPENTAP_TOKEN"), verify_option(args))
    objs = dev.call("GET", "/v2.0/agents")["agents"]  # (not taas.agents.AGENTS: that would import SQLAlchemy)
    for o in objs:
        o["state"] = "alive" if o["alive"] else "dead"
        o["tunnel_ip"] = o["configurations"].get("tunnel_ip")
        o["mirrors"], o["tunnels"], o["oversize"] = (o["configurations"].get(k)
                                                     for k in ("mirrors", "tunnels", "oversize_copies"))
    print(render(objs, args.format, ["host", "state", "tunnel_ip", "heartbeat_timestamp", "started_at", "mirrors",
                                     "tunnels", "oversize"]))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hosts", help="the deployment's hosts (daemons sharing the database), alive or dead")
    p.add_argument("--url", help="any host's API, http(s)://HOST:PORT (default: $OPENTAP_URL or 127.0.0.1:2020)")
    p.add_argument("--token", help="an admin's API token (default: $OPENTAP_TOKEN)")
    p.add_argument("--verify", help=VERIFY_HELP)
    p.add_argument("-f", "--format", choices=FORMATS, default="table")
    p.set_defaults(fn=hosts)
    for res in RESOURCES:
        actions = ("create", "list", "show", "delete") if res is PORTS else ("create", "list", "show", "update",
                                                                              "delete")
        for action in actions:
            p = sub.add_parser(f"{COMMANDS[res]}-{action}", help=f"{action} {res.collection.replace('_', ' ')}")
            p.add_argument("--url", help="the device, http(s)://HOST:PORT (default: $OPENTAP_URL or 127.0.0.1:2020)")
            p.add_argument("--token", help="API token (default: $OPENTAP_TOKEN)")
            p.add_argument("--verify", help=VERIFY_HELP)
            p.add_argument("-f", "--format", choices=FORMATS, default="table")
            if action in ("show", "update", "delete"):
                p.add_argument("target", metavar=res.member.upper(), help="name or id")
            for attr in res.attrs:
                if (action == "create" and attr.allow_post) or (action == "update" and attr.allow_put):
                    required = action == "create" and attr.default is REQUIRED
                    p.add_argument(_option(attr), dest=attr.name, required=required, help=attr.name)
            p.set_defaults(fn=run, resource=res, action=action)
