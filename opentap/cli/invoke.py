"""`opentap invoke`: one API call against this device's daemon, with the answer on standard output, exactly
as the REST API gives it (JSON, CSV or pcap). It is made to be an SSH forced command:

    command="opentap invoke --key alice-laptop",restrict ssh-ed25519 AAAA... alice@laptop

With no call on its own command line it reads the call from SSH_ORIGINAL_COMMAND, where sshd puts what the
client asked for (`ssh tap@device capabilities`). The words are split as a shell would split them, but no
shell ever sees them: they only become an HTTP request to the local daemon on its Unix socket, where the
daemon knows this process by its peer credentials and takes the key's project and roles from the config's
[[ssh_keys]]. Nothing crosses a network interface, so a capture of lo cannot pick anything up.

`request METHOD PATH` is the client's form (opentap.client.ssh): any API call, its JSON body on standard
input, and the answer framed as an HTTP/1.1 status line and headers before the body, so the client gets the
status and content type as it would over HTTP."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any
from urllib.parse import quote

import httpx

from opentap import config

SSH_KEY_HEADER = "X-OpenTap-SSH-Key"  # the daemon honours it on its Unix socket only
MAX_BODY = 1 << 20  # a request body read from standard input (TaaS JSON is small)
PASSED_HEADERS = ("content-type", "content-disposition", "link")


def call_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="opentap invoke", description="one call against this OpenTap device")
    sub = p.add_subparsers(dest="call", required=True)
    sub.add_parser("capabilities", help="capture types, observation points, limits")
    sub.add_parser("captures", help="your captures")
    sub.add_parser("status", help="one capture").add_argument("id")
    cap = sub.add_parser("capture", help="schedule a capture")
    cap.add_argument("type")
    cap.add_argument("--point", help="observation point (default: the device's default)")
    cap.add_argument("--start", default="now", help="now, +10s, UNIX seconds or ISO 8601 (default: now)")
    when = cap.add_mutually_exclusive_group(required=True)
    when.add_argument("--stop", help="like --start")
    when.add_argument("--duration", help="60, 60s, 5m, 1h")
    for name in ("filter", "period", "snaplen", "id"):
        cap.add_argument(f"--{name}")
    ret = sub.add_parser("retrieve", help="a capture's data")
    ret.add_argument("id")
    ret.add_argument("--format")
    sub.add_parser("delete", help="cancel a scheduled or running capture, or delete a finished one").add_argument("id")
    req = sub.add_parser("request", help="any API call, answered with an HTTP status line and headers")
    req.add_argument("method", choices=("GET", "POST", "PUT", "DELETE"))
    req.add_argument("path", help="/path?query")
    return p


def to_request(call: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """(method, path, query parameters) for a parsed call."""
    if call.call in ("capabilities", "captures"):
        return "GET", f"/{call.call}", None
    if call.call in ("status", "delete"):
        return ("GET" if call.call == "status" else "DELETE"), f"/captures/{quote(call.id, safe='')}", None
    if call.call == "retrieve":
        return "GET", "/retrieve", {"id": call.id, "format": call.format}
    if call.call == "capture":
        from opentap.client.times import parse_duration, parse_time

        start = parse_time(call.start)
        stop = start + parse_duration(call.duration) if call.duration else parse_time(call.stop)
        params = {"start": start, "stop": stop, "observationpt": call.point, "filter": call.filter,
                  "period": call.period, "snaplen": call.snaplen, "id": call.id}
        return "GET", f"/capture/{quote(call.type, safe='')}", params
    if not call.path.startswith("/") or any(c.isspace() for c in call.path):
        raise ValueError(f"not an API path: {call.path!r}")
    return call.method, call.path, None


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    words = args.words
    forced = os.environ.get("SSH_ORIGINAL_COMMAND")
    if not words and forced is not None:  # a forced command: what the SSH client asked for
        words = shlex.split(forced)
    if words[:2] == ["opentap", "invoke"]:  # a client that sends the whole command line, forced or not
        words = words[2:]
    call = call_parser().parse_args(words)
    method, path, params = to_request(call)
    headers = {}
    if args.key:
        if args.key not in cfg.ssh_keys:
            raise ValueError(f"SSH key {args.key!r} is not in {cfg.path} ([[ssh_keys]])")
        headers[SSH_KEY_HEADER] = args.key
    elif token := os.environ.get("OPENTAP_TOKEN"):
        headers["X-Auth-Token"] = token
    body = sys.stdin.buffer.read(MAX_BODY + 1) if call.call == "request" and method in ("POST", "PUT") else None
    if body is not None and len(body) > MAX_BODY:
        raise ValueError(f"request body over {MAX_BODY} bytes")
    if body:
        headers["Content-Type"] = "application/json"
    # None, not {}, when there are none: httpx would replace the query already in a `request` path with {}
    query = {k: v for k, v in (params or {}).items() if v is not None}
    out = sys.stdout.buffer
    socket_path = str(cfg.socket_path)
    try:
        # the socket speaks plain HTTP; the base URL only names the device as its TCP clients know it
        with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path), base_url=f"http://{cfg.local_authority}",
                          timeout=httpx.Timeout(30, read=None)) as http, \
                http.stream(method, path, params=query or None, headers=headers, content=body) as reply:
            if call.call == "request":
                lines = [f"HTTP/1.1 {reply.status_code} {reply.reason_phrase}"]
                lines += [f"{k}: {reply.headers[k]}" for k in PASSED_HEADERS if k in reply.headers]
                out.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            for chunk in reply.iter_bytes():
                out.write(chunk)
            out.flush()
    except httpx.TransportError as e:
        print(f"opentap invoke: the device daemon does not answer on {socket_path}: {e}", file=sys.stderr)
        return 3
    if reply.status_code >= 400 and call.call != "request":
        print(f"opentap invoke: HTTP {reply.status_code}", file=sys.stderr)
        return 1
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    inv = sub.add_parser("invoke", help="one API call against this device (an SSH forced command)",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    inv.add_argument("--config", help="config file (default: $OPENTAP_CONF or /etc/opentap/opentap.conf)")
    inv.add_argument("--key", help="act as this [[ssh_keys]] entry (default: $OPENTAP_TOKEN's identity)")
    inv.add_argument("words", nargs=argparse.REMAINDER, help="the call: capabilities, captures, status ID, capture "
                     "TYPE ..., retrieve ID, delete ID, request METHOD PATH (see `opentap invoke -- --help`)")
    inv.set_defaults(fn=run)
