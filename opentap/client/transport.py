"""How a client reaches a device: one request, answered with a status, headers and a body that can be streamed.
HTTP (httpx) and SSH (the system `ssh` running `opentap invoke` on the device) both implement `Transport`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol


class DeviceError(Exception):
    """The device answered with an error (its message is ours to show), or could not be reached (status 0)."""

    def __init__(self, device: str, status: int, message: str) -> None:
        super().__init__(f"{device}: {message}" + (f" (HTTP {status})" if status else ""))
        self.device, self.status, self.message = device, status, message


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    chunks: Iterator[bytes] = field(default_factory=lambda: iter(()))

    def read(self) -> bytes:
        return b"".join(self.chunks)

    def json(self) -> Any:
        return json.loads(self.read() or b"null")


def error_message(status: int, body: bytes) -> str:
    """The server's own words from an error body: OpenTap's `msg`, Neutron's `NeutronError.message`, or text."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:500] or f"HTTP {status}"
    if isinstance(data, dict):
        if isinstance(data.get("NeutronError"), dict):
            return str(data["NeutronError"].get("message", data))
        for key in ("msg", "detail", "message"):
            if key in data:
                return str(data[key])
    return str(data)[:500]


class Transport(Protocol):
    name: str  # how the device is called in messages and in a fleet's `device` column

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None) -> AbstractContextManager[Reply]:
        """Send one request (params as the query string, body as JSON); the reply's chunks stream until the
        context ends. Errors (status >= 400) are returned, not raised: the caller decides what they mean."""
