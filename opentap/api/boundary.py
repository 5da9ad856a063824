"""What every request must be before any route sees it, checked once for all routes (an ASGI middleware, so
that a route added later is covered too):

- a JSON body of at most 1 MiB (413), nested at most 32 levels (checked before parsing: Python's parser
  recurses, and ~1,000 levels raise RecursionError, a 500), valid UTF-8 JSON without NaN/Infinity, and no
  lone surrogate ("\\ud800": it cannot be encoded back to UTF-8, so storing one breaks every later read of
  it) or NUL (PostgreSQL's text cannot hold one) in any string or key;
- no NUL in the path or the query string;
- on OpenTap's own routes each query parameter at most once (a repeated one silently took the last value).
  Neutron's routes repeat `fields`, filters, `sort_key`/`sort_dir` by design, so they are left alone.

Rejections are 400s (413 for size) in the body their route family uses. The parsed body is left in the scope
under BODY_KEY so that a route reading raw JSON does not parse it twice."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse

from opentap.taas.errors import NeutronError, bad_request

from .errors import error_response, is_keystone, keystone_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 1024 * 1024
MAX_DEPTH = 32
BODY_KEY = "opentap.json"  # the scope key under which the checked, parsed body is left for the routes
NEUTRON_PREFIX = "/v2.0"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_ESCAPE = re.compile(rb"\\.", re.S)  # inside strings only; removing them first leaves no escaped quote
_STRING = re.compile(rb'"[^"]*"')
_SQUARE = bytes.maketrans(b"{}", b"[]")  # depth does not care which kind of bracket
_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")
_TOO_MANY_OPEN = b"[" * (MAX_DEPTH + 1)
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


class BadBody(ValueError):
    """The body (or query) is not acceptable; status 400 or 413, and a message."""

    def __init__(self, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.status, self.msg = status, msg


def too_deep(raw: bytes) -> bool:
    """Whether a JSON text's brackets nest deeper than MAX_DEPTH, ignoring those inside strings, without parsing
    it. Each pass of bytes.replace removes exactly the innermost level (it does not rescan what it joins), so
    MAX_DEPTH passes, each a C-speed scan, tell; a megabyte of brackets takes milliseconds, not a Python loop."""
    skeleton = _STRING.sub(b"", _ESCAPE.sub(b"", raw)).translate(_SQUARE, _NOT_BRACKET)
    if _TOO_MANY_OPEN in skeleton:  # the plain attack, [[[[…, found in one scan
        return True
    for _ in range(MAX_DEPTH):
        shorter = skeleton.replace(b"[]", b"")
        if len(shorter) == len(skeleton):  # nothing (more) nests; unbalanced leftovers are the parser's to refuse
            return False
        skeleton = shorter
    return b"[]" in skeleton


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bad_strings(value: Any) -> str | None:
    """What is wrong with the first bad string (key or value) in a parsed body, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found = _BAD_CHAR.search(item)
            if found:
                return "a NUL character" if found.group() == "\x00" else "a lone UTF-16 surrogate"
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse(raw: bytes) -> Any:
    """A checked JSON body, or BadBody."""
    if len(raw) > MAX_BODY:
        raise BadBody(f"the request body is larger than {MAX_BODY} bytes", 413)
    if too_deep(raw):
        raise BadBody(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise BadBody("the body is not UTF-8") from None
    except (ValueError, RecursionError) as e:  # RecursionError: belt and braces, depth() runs first
        raise BadBody(f"not JSON ({str(e)[:80]})") from None
    bad = _bad_strings(value)
    if bad:
        raise BadBody(f"a string in the body contains {bad}")
    return value


def check_query(scope: Scope) -> None:
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query or "\x00" in scope.get("path", ""):
        raise BadBody("the path or query string contains a NUL character")
    if not query or scope.get("path", "").startswith(NEUTRON_PREFIX):
        return
    counts = Counter(k for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    repeated = sorted(k for k, n in counts.items() if n > 1)
    if repeated:
        raise BadBody(f"query parameter '{repeated[0][:64]}' was given more than once; give it once")


def rejection(scope: Scope, bad: BadBody) -> JSONResponse:
    if is_keystone(scope.get("path", "")):
        return keystone_response(bad.status, bad.msg)
    if not scope.get("path", "").startswith(NEUTRON_PREFIX):
        return error_response(bad.status, bad.msg)
    err = (NeutronError(413, "HTTPRequestEntityTooLarge", "Request is too large.") if bad.status == 413
           else bad_request(f"Malformed request body: {bad.msg}"))
    return JSONResponse(err.body(), status_code=err.status)


async def _read(scope: Scope, receive: Receive) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise BadBody(f"the request body is larger than {MAX_BODY} bytes", 413)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadBody(f"the request body is larger than {MAX_BODY} bytes", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class Boundary:
    """The ASGI middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw: bytes | None = None
        try:
            check_query(scope)
            if scope["method"] in BODY_METHODS:
                raw = await _read(scope, receive)
                if raw.strip():
                    scope[BODY_KEY] = parse(raw)
        except BadBody as bad:
            await rejection(scope, bad)(scope, receive, send)
            return
        if raw is None:
            await self.app(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:  # the route reads the same bytes; later calls wait for a disconnect
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
