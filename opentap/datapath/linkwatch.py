"""Link events from the kernel (netlink, RTMGRP_LINK): an interface appeared, went, or changed state. The
reconciler is poked on each, so a VM's re-created interface gets its mirrors back at once, not at the next
periodic pass."""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import RTMGRP_LINK

log = logging.getLogger("opentap.datapath")


class LinkWatcher:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="linkwatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        ip = IPRoute()  # made in this thread: pyroute2's sync calls block when used from another thread
        try:
            ip.bind(groups=RTMGRP_LINK)
            while not self._stop.is_set():
                # wait with a timeout, so stop() is noticed without a message to wake us
                if not select.select([ip.fileno()], [], [], 0.5)[0]:
                    continue
                if any(m.get("event") in ("RTM_NEWLINK", "RTM_DELLINK") for m in ip.get()):
                    self.on_change()
        except Exception:  # the periodic pass still catches every change, only later
            log.exception("link event monitoring stopped")
        finally:
            ip.close()
