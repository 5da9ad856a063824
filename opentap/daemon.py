"""`opentap serve`: the daemon process. In this order: its umask, the data directory's lock (a second daemon
stops here, having touched nothing), the app (database, migrations, recovery), then two HTTP servers on one
event loop: the API on TCP (HTTPS when the config has a certificate) and the same API on a Unix socket for
`opentap invoke`. SIGTERM and SIGINT stop both; the app's shutdown stops the captures' children."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from opentap import filemodes, sdnotify
from opentap.api import localsocket
from opentap.api.app import create_app
from opentap.api.server import uvicorn_options
from opentap.config import Config
from opentap.datalock import DataDirLock

log = logging.getLogger("opentap")


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: two of them share one loop and one set of handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _http_protocol(http: str) -> type[asyncio.Protocol]:
    """The class uvicorn would use for `http` (httptools, h11): the Unix socket's protocol is made from it."""
    config = uvicorn.Config(lambda *_: None, http=http)
    config.load()
    return config.http_protocol_class


async def _serve_both(tcp: _Server, local: _Server, local_sock: object, ready: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if not tcp.should_exit:
            sdnotify.notify("STOPPING=1")
        tcp.should_exit = local.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    tcp_task = asyncio.create_task(tcp.serve())
    while not tcp.started and not tcp_task.done():  # the app's start-up (the engine) runs on the TCP server
        await asyncio.sleep(0.02)
    local_task = asyncio.create_task(local.serve(sockets=[local_sock]))
    while not local.started and not local_task.done():
        await asyncio.sleep(0.02)
    if tcp.started and local.started:  # the API answers on both: that is ready
        ready()
    await asyncio.wait([tcp_task, local_task], return_when=asyncio.FIRST_COMPLETED)
    stop()
    await asyncio.gather(tcp_task, local_task, return_exceptions=True)


class _Ready:
    """Says the daemon is ready: to systemd, and in the pid file (start_opentap.sh waits for it to appear)."""

    def __init__(self, pid_file: Path | None) -> None:
        self.pid_file, self.written = pid_file, False

    def __call__(self) -> None:
        if self.pid_file is not None:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.pid_file.with_name(f".{self.pid_file.name}.tmp")
            tmp.write_text(f"{os.getpid()}\n")
            tmp.replace(self.pid_file)  # whole or absent: a reader never sees it empty
            self.written = True
        sdnotify.notify("READY=1")
        log.info("ready: the API answers")

    def remove(self) -> None:
        if self.written and self.pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()


def serve(cfg: Config, pid_file: Path | None = None) -> int:
    os.umask(filemodes.umask_for(cfg))
    lock = DataDirLock(cfg.data_dir)
    lock.acquire()  # raises AlreadyRunning: nothing below has run
    try:
        app = create_app(cfg, lock)
        options = uvicorn_options()
        ssl = {"ssl_certfile": str(cfg.tls_cert), "ssl_keyfile": str(cfg.tls_key)} if cfg.tls else {}
        tcp = _Server(uvicorn.Config(app, host=cfg.listen_host, port=cfg.listen_port, **options, **ssl))
        local = _Server(uvicorn.Config(app, lifespan="off", **{
            **options, "http": localsocket.peer_protocol(_http_protocol(options["http"]))}))
        sock = localsocket.bind(cfg.socket_path, cfg.socket_group)
        ready = _Ready(pid_file)
        try:
            with asyncio.Runner(loop_factory=tcp.config.get_loop_factory()) as runner:  # uvloop, as configured
                runner.run(_serve_both(tcp, local, sock, ready))
        finally:
            ready.remove()
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                cfg.socket_path.unlink()
    finally:
        lock.release()
    return 0 if tcp.started else 1
