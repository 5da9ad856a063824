"""The device as a real process (`python -m opentap serve`) on a free loopback port, for tests that need a
real HTTP server: restarts, and the OpenStack clients."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from .apicalls import headers
from .configs import write_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, conf: Path, port: int | None = None, wrapper: Sequence[str] = ()) -> None:
        self.conf, self.port = conf, port or free_port()
        self.wrapper = list(wrapper)  # runs the daemon, e.g. setpriv to drop a capability
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, verify: bool | str = True) -> None:
        with open(self.conf.parent / "daemon.log", "ab") as log:
            argv = [*self.wrapper, sys.executable, "-m", "opentap", "serve", "--config", str(self.conf),
                    "--listen", f"127.0.0.1:{self.port}"]
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1, verify=verify).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, (self.conf.parent / "daemon.log").read_text()
            assert time.monotonic() < deadline, "daemon did not come up"
            time.sleep(0.1)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def get(self, path: str, **params: object) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=headers(), timeout=30)

    def capture(self, cid: str, project: str | None = None) -> dict:
        r = self.get(f"/captures/{cid}", **({"project": project} if project else {}))
        assert r.status_code == 200, r.text
        return r.json()["capture"]

    def wait(self, cid: str, states: tuple[str, ...], timeout: float = 20, project: str | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while (cap := self.capture(cid, project))["state"] not in states:
            assert time.monotonic() < deadline, cap
            time.sleep(0.05)
        return cap


@contextmanager
def running(directory: Path, points: dict[str, str] | None = None, wrapper: Sequence[str] = (),
            **settings: object) -> Iterator[Daemon]:
    """A daemon on a config in directory (observation points: "lo" unless given), stopped on leaving. The
    config names its port, so `opentap invoke` with that config finds it."""
    port = free_port()
    d = Daemon(write_config(directory, points, listen=f"127.0.0.1:{port}", **settings), port, wrapper)
    d.start()
    try:
        yield d
    finally:
        d.stop()
