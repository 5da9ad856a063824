"""The daemon's Unix socket: how `opentap invoke` (the SSH forced command) reaches the API without a network.

Nothing sent here can be seen by a packet capture (lo included), and the caller is known by the kernel's
word, the socket's peer credentials (SO_PEERCRED), not by a token that could be replayed. The socket file is
0600 (or 0660 for a configured group, e.g. the SSH account's), and the daemon checks the peer again."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from opentap.auth import Peer

PEER_SCOPE_KEY = "opentap.peer"  # set only for connections on the Unix socket; a client cannot forge it
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid

Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Any, Any], Awaitable[None]]


def peer_of(sock: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return Peer(pid, uid, gid)


def peer_protocol(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class, made to put each connection's peer credentials in its requests' scope."""

    class PeerCredProtocol(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peer = peer_of(transport.get_extra_info("socket"))
            app: Asgi = self.app

            async def with_peer(scope: Scope, receive: Any, send: Any) -> None:
                scope[PEER_SCOPE_KEY] = peer
                await app(scope, receive, send)

            self.app = with_peer

    return PeerCredProtocol


def bind(path: Path, group: str | None) -> socket.socket:
    """A listening Unix socket at path, mode 0600 (0660 and that group's when group is given). A file left at
    path is a dead daemon's socket: the caller holds the data directory's lock, so no live daemon owns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # created 0600 from the start: no moment where others may connect
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    if group:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
        os.chmod(path, 0o660)
    sock.listen(128)
    sock.setblocking(False)
    return sock
