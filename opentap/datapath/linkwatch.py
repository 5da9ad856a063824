"""Link events from the kernel (netlink, RTMGRP_LINK): an interface appeared, went, or changed state. The
reconciler is poked on each, so a VM's re-created interface gets its mirrors back at once, not at the next
periodic pass."""

from __future__ import annotations

import logging
import select
from collections.abc import Callable

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import RTMGRP_LINK

from opentap.worker import Worker

log = logging.getLogger("opentap.datapath")


class LinkWatcher(Worker):
    thread_name = "linkwatch"

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__()
        self.on_change = on_change

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
