"""The HTTP transport: httpx with connect/read timeouts and streamed bodies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from opentap import __version__

from . import tls
from .transport import DeviceError, Reply


class HttpTransport:
    """One device's REST API at base_url (http:// or https://). A token, if given, goes in X-Auth-Token.
    connect_timeout bounds reaching the device, timeout every wait for data after that. verify: True (the
    system's CAs), False, a CA file's path, or a pinned certificate fingerprint "sha256:AB:CD:…" (tls.py)."""

    def __init__(self, base_url: str, *, token: str | None = None, name: str | None = None, timeout: float = 30.0,
                 connect_timeout: float = 5.0, verify: bool | str = True) -> None:
        self.base_url = base_url.rstrip("/")
        url = httpx.URL(self.base_url)
        self.name = name or url.host
        self._headers = {"User-Agent": f"opentap-client/{__version__}"}
        if token:
            self._headers["X-Auth-Token"] = token
        if tls.is_pin(verify):
            tls.normalize_fingerprint(str(verify))  # a malformed pin is the caller's mistake: say so now
        self._verify, self._timeout = verify, httpx.Timeout(timeout, connect=connect_timeout)
        self._client_: httpx.Client | None = None

    @property
    def _client(self) -> httpx.Client:
        """Made at the first request: a pinned certificate is fetched and checked then, not at construction
        (a fleet is built before any device has to answer)."""
        if self._client_ is None:
            url = httpx.URL(self.base_url)
            verify = self._verify
            if url.scheme == "https" and not isinstance(verify, bool):
                try:
                    verify = tls.context(verify, url.host, url.port or 443, self._timeout.connect or 5.0)
                except tls.UntrustedDevice as e:
                    raise DeviceError(self.name, 0, str(e)) from None
                except OSError as e:
                    raise DeviceError(self.name, 0, f"cannot reach {self.base_url}: {e}") from None
            self._client_ = httpx.Client(base_url=self.base_url, headers=self._headers, verify=verify,
                                         timeout=self._timeout)
        return self._client_

    @contextmanager
    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None) -> Iterator[Reply]:
        query = {k: _text(v) for k, v in (params or {}).items() if v is not None}
        answered = False
        try:
            with self._client.stream(method, path, params=query, json=body) as r:
                answered = True
                yield Reply(r.status_code, {k.lower(): v for k, v in r.headers.items()}, self._chunks(r))
        except httpx.TransportError as e:  # raised while connecting or while a caller reads the chunks
            what = "lost the connection to" if answered else "cannot reach"
            raise DeviceError(self.name, 0, f"{what} {self.base_url}: {_reason(e)}") from e

    @staticmethod
    def _chunks(r: httpx.Response) -> Iterator[bytes]:
        yield from r.iter_bytes(1 << 20)

    def close(self) -> None:
        if self._client_ is not None:
            self._client_.close()

    def __repr__(self) -> str:
        return f"HttpTransport({self.base_url!r}, name={self.name!r})"


def _text(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def _reason(e: httpx.TransportError) -> str:
    """httpx's message, or the exception's kind when it has none (a timeout often says nothing)."""
    text = str(e).strip()
    kind = type(e).__name__
    if isinstance(e, httpx.TimeoutException):
        return f"timed out ({kind})" + (f": {text}" if text else "")
    return text or kind
