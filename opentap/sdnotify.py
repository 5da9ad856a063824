"""systemd's readiness protocol (sd_notify) without libsystemd: one datagram to $NOTIFY_SOCKET.

opentap.service is Type=notify: `systemctl start` returns once the daemon says READY=1, which it says when
the API answers (both servers listening, the database migrated, the engine started), not when the process
merely exists."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send state ("READY=1", "STOPPING=1") to systemd; False when not run by systemd (or it is gone)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(state.encode())
    except OSError:
        return False
    return True
