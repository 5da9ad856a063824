"""How uvicorn serves the API: the options that decide what each call costs, in one place for `opentap serve`.

Measured with the daemon's own routes at 200 calls/s, a new connection per call (bench/api_load.py's load,
two daemons side by side): GET /capabilities cost 1.2 ms of CPU per call on uvicorn's pure-Python HTTP parser
(h11) and the standard asyncio loop, 0.85 ms on httptools (llhttp, in C) and uvloop (libuv).
"""

from __future__ import annotations

from typing import Any

GRACEFUL_STOP_SECONDS = 5


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments for uvicorn.run/uvicorn.Config (besides the app and where to listen)."""
    return {
        "http": "httptools",
        "loop": "uvloop",
        "log_level": "warning",
        # An access log line per call is work on the event loop; errors are still logged by the app.
        "access_log": False,
        # A stop waits this long for open connections. An idle HTTPS keep-alive connection is closed with a TLS
        # close_notify, and the loop then waits for the client's answer, up to 30 s, which an idle client never
        # sends: every clean stop took 30 s while a client held a connection.
        "timeout_graceful_shutdown": GRACEFUL_STOP_SECONDS,
    }
