"""A device (over HTTP or SSH) and its captures: schedule, wait, retrieve as a DataFrame, download, delete."""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from . import frames
from .progress import WindowBar
from .times import TimeLike, parse_time
from .transport import DeviceError, Reply, Transport, error_message

if TYPE_CHECKING:
    import pandas as pd

# the engine's final states (opentap.db.models.FINAL_STATES; the client does not import the server's modules)
FINAL_STATES = ("complete", "truncated", "failed", "cancelled")


class CaptureFailed(DeviceError):
    """The device ran the capture and marked it failed; `info` is its last status, the message its reason.
    (status is 0 as for an unreachable device: no HTTP request failed.)"""

    def __init__(self, device: str, info: dict[str, Any]) -> None:
        super().__init__(device, 0, f"capture '{info.get('id')}' failed: {info.get('reason') or 'no reason given'}")
        self.info = info


class CaptureWarning(UserWarning):
    """A capture finished with a gap (truncated): its data is usable, but incomplete."""


class Device:
    """One OpenTap device.

    target: a URL (`http://host:port`, `https://…`, `ssh://user@host[:port]`), the original client's
    dictionary (`{'name': 'virgo', 'ipaddr': '129.108.40.76', 'portnum': '50080'}`, optionally with a
    'token'), or any `Transport`. name: how messages and fleets call it (default: the dictionary's name,
    else the host). timeout: seconds to wait for data; connect_timeout: to reach the device (HTTP).
    verify: HTTPS certificate checking: True (the system's CAs), False, a CA file's path, or the device
    certificate's pinned fingerprint "sha256:AB:CD:…" (what `opentap config init` prints; checked before
    anything is sent). For ssh:// URLs: identity, the
    private key file, and ssh_options, `-o` options for ssh (e.g. "UserKnownHostsFile=…"); the device maps
    the key to a project and roles, so there is no token."""

    def __init__(self, target: str | Mapping[str, Any] | Transport, *, token: str | None = None,
                 name: str | None = None, timeout: float = 30.0, connect_timeout: float = 5.0,
                 verify: bool | str = True, identity: str | os.PathLike[str] | None = None,
                 ssh_options: Sequence[str] = ()) -> None:
        if isinstance(target, Mapping):
            target, name, token = _from_original(target, name, token)
        if isinstance(target, str):
            self.transport = _transport(target, token=token, name=name, timeout=timeout,
                                        connect_timeout=connect_timeout, verify=verify, identity=identity,
                                        ssh_options=ssh_options)
        else:
            self.transport = target
        if name:
            self.transport.name = name

    @property
    def name(self) -> str:
        return self.transport.name

    def __repr__(self) -> str:
        return f"Device({self.transport!r})"

    def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if close:
            close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------------------
    @contextmanager
    def stream(self, method: str, path: str, params: dict[str, Any] | None = None,
               body: Any = None) -> Iterator[Reply]:
        """A successful reply, its body still streaming; an error status raises DeviceError with the
        server's message."""
        with self.transport.request(method, path, params, body) as reply:
            if reply.status >= 400:
                raise DeviceError(self.name, reply.status, error_message(reply.status, reply.read()))
            yield reply

    def call(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """One request, its JSON answer (None for 204)."""
        with self.stream(method, path, params, body) as reply:
            if reply.status == 204:
                return None
            text = reply.read()
        try:
            return json.loads(text)
        except ValueError:  # something else answers there (a proxy's page, another service)
            raise DeviceError(self.name, reply.status, "not an OpenTap device's answer: "
                              + text.decode(errors="replace").strip()[:200]) from None

    # -- the OpenTap API -----------------------------------------------------------------------------------
    def capabilities(self) -> dict[str, Any]:
        return self.call("GET", "/capabilities")

    def capture(self, type: str, start: TimeLike, stop: TimeLike, *, observationpt: str | None = None,
                period: int | None = None, filter: str | None = None, snaplen: int | None = None,
                keep_packets: bool | None = None, id: str | None = None) -> Capture:
        """Schedule a capture of `type` (netflow, ethernet, linkstats, sensor) from start to stop: UNIX seconds,
        datetimes, "now", "+10s", "+2m" (both relative to the same now) or ISO 8601 (UTC unless it says).
        observationpt None = the device's default; period in ms (linkstats, sensor); filter (BPF) and snaplen
        (ethernet, netflow); keep_packets (netflow); id: your own id for it."""
        now = time.time()
        body = {"type": type, "start": parse_time(start, now), "stop": parse_time(stop, now),
                "observationpt": observationpt, "period": period, "filter": filter, "snaplen": snaplen,
                "keep_packets": keep_packets, "id": id}
        info = self.call("POST", "/captures", body={k: v for k, v in body.items() if v is not None})
        return Capture(self, info["id"], info)

    def captures(self, state: str | None = None, type: str | None = None) -> list[Capture]:
        """Your project's captures (all of them, for an admin), oldest first."""
        listed = self.call("GET", "/captures", {"state": state, "type": type})["captures"]
        return [Capture(self, c["id"], c) for c in listed]

    def get_capture(self, capture_id: str) -> Capture:
        """A handle on an existing capture (DeviceError 404 if there is none you may see)."""
        cap = Capture(self, capture_id)
        cap.status()
        return cap


class Capture:
    """A capture on a device. `info` is the device's description of it as last seen (id, type, state,
    startTime, stopTime, packets, bytes, reason, stats, …); status() refreshes it."""

    def __init__(self, device: Device, capture_id: str, info: dict[str, Any] | None = None) -> None:
        self.device, self.id = device, capture_id
        self.info: dict[str, Any] = dict(info or {})

    def __repr__(self) -> str:
        return f"<Capture {self.id!r} {self.info.get('type', '?')} on {self.device.name}: {self.state or '?'}>"

    @property
    def type(self) -> str:
        if "type" not in self.info:
            self.status()
        return self.info["type"]

    @property
    def state(self) -> str | None:
        return self.info.get("state")

    def _path(self) -> str:
        return "/captures/" + quote(self.id, safe="")

    def status(self) -> dict[str, Any]:
        self.info = self.device.call("GET", self._path())["capture"]
        return self.info

    def wait(self, progress: bool = True, timeout: float | None = None) -> dict[str, Any]:
        """Poll until the capture is complete, truncated (warns CaptureWarning), cancelled or failed (raises
        CaptureFailed); returns its final status. progress: a bar over the window on stderr. timeout: give
        up (TimeoutError) after this many seconds; the capture itself goes on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        info = self.status()
        bar = WindowBar(f"{self.device.name} {info['type']} {self.id[:8]}", info["startTime"],
                        info["stopTime"]) if progress else None
        try:
            while info["state"] not in FINAL_STATES:
                if bar:
                    bar.update(info["state"])
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"{self.device.name}: capture '{self.id}' is still {info['state']} "
                                       f"after {timeout:g} s")
                pause = poll_interval(info["startTime"], info["stopTime"], time.time())
                time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
                info = self.status()
        finally:
            if bar:
                bar.close(info["state"])
        return check_final(self.device.name, info)

    def retrieve(self) -> pd.DataFrame:
        """The data as a typed DataFrame (what exists so far, if it is still running: wait() first)."""
        with self._data("csv") as reply:
            return frames.read_frame(self.type, reply.chunks)

    def download(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Stream the raw data (format: the type's default — pcap for ethernet, csv otherwise — or as named)
        to path, a file or an existing directory (then the device's file name); returns the file's path."""
        target = Path(path)
        with self._data(format) as reply:
            if target.is_dir():
                target = target / _attachment_name(reply.headers, f"{self.id}.{format or 'data'}")
            with frames.atomic_file(target) as f:
                for chunk in reply.chunks:
                    f.write(chunk)
        return target

    def to_parquet(self, path: str | os.PathLike[str], rows_per_group: int = 200_000) -> Path:
        """The data as a Parquet file with the DataFrame's types, converted chunk by chunk as it arrives."""
        with self._data("csv") as reply:
            frames.write_parquet(self.type, reply.chunks, path, rows_per_group)
        return Path(path)

    def delete(self) -> dict[str, Any] | None:
        """Cancel the capture if it is scheduled or running (its data so far is kept; returns its status),
        else delete it and its data (returns None)."""
        answer = self.device.call("DELETE", self._path())
        if answer is None:
            return None
        self.info = answer["capture"]
        return self.info

    @contextmanager
    def _data(self, format: str | None) -> Iterator[Reply]:
        with self.device.stream("GET", "/retrieve", {"id": self.id, "format": format}) as reply:
            yield reply


def poll_interval(start: float, stop: float, now: float) -> float:
    """Often near the end of the window (the state changes then), rarely during a long one."""
    if now < start:
        return min(max(start - now, 0.1), 2.0)
    return min(max((stop - now) / 20, 0.2), 2.0)


def check_final(device: str, info: dict[str, Any]) -> dict[str, Any]:
    if info["state"] == "failed":
        raise CaptureFailed(device, info)
    if info["state"] == "truncated":
        warnings.warn(f"{device}: capture '{info['id']}' is truncated: {info.get('reason') or 'no reason given'}",
                      CaptureWarning, stacklevel=3)
    return info


def _attachment_name(headers: Mapping[str, str], fallback: str) -> str:
    m = re.search(r'filename="([^"/\\]+)"', headers.get("content-disposition", ""))
    name = m.group(1) if m else fallback
    return name if name not in (".", "..") else fallback


def _from_original(spec: Mapping[str, Any], name: str | None,
                   token: str | None) -> tuple[str, str | None, str | None]:
    """The original client's {'name', 'ipaddr', 'portnum'} dictionary (a 'token' key is allowed too)."""
    try:
        host, port = str(spec["ipaddr"]), int(spec["portnum"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"a device dictionary needs 'ipaddr' and a numeric 'portnum' (got {dict(spec)!r})") from e
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    return f"http://{host}:{port}", name or spec.get("name"), token or spec.get("token")


def _transport(url: str, *, token: str | None, name: str | None, timeout: float, connect_timeout: float,
               verify: bool | str, identity: str | os.PathLike[str] | None, ssh_options: Sequence[str]) -> Transport:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        from .http import HttpTransport

        return HttpTransport(url, token=token, name=name or parts.hostname, timeout=timeout,
                             connect_timeout=connect_timeout, verify=verify)
    if parts.scheme == "ssh" and parts.hostname:
        from .ssh import SshTransport

        if token:  # refused rather than dropped: the caller expects it to count
            raise ValueError("an ssh:// device authenticates the SSH key (identity=), not a token")
        return SshTransport(url, identity=None if identity is None else os.fspath(identity),
                            options=ssh_options, timeout=timeout, name=name)
    raise ValueError(f"not a device URL: {url!r} (say http://host:port, https://host:port or ssh://user@host)")
