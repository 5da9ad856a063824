"""How uvicorn serves the API: the options that decide what each call costs, in one place for `opentap serve`.

Measured with bench/api_load.py (200 calls/s, a new connection per call): uvicorn's pure-Python HTTP parser
(h11) on the standard asyncio loop cost about 0.85 ms of CPU per call before the application ran at all.
httptools (llhttp, in C) parses a request in microseconds and uvloop (libuv) makes accepting, reading and
writing a connection several times cheaper than asyncio's selector loop.
"""

from __future__ import annotations

from typing import Any


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments for uvicorn.run/uvicorn.Config (besides the app and where to listen)."""
    return {
        "http": "httptools",
        "loop": "uvloop",
        "log_level": "warning",
        # An access log line per call is work on the event loop; errors are still logged by the app.
        "access_log": False,
    }
