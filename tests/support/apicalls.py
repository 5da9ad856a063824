"""Calling the API in tests: a test token's header, and waiting for a capture to reach a state."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the hint only: the benchmarks import this module and need no test client
    from fastapi.testclient import TestClient


def headers(token: str = "tok-admin") -> dict[str, str]:
    return {"X-Auth-Token": token}


def wait_state(client: TestClient, cid: str, states: tuple[str, ...], timeout: float = 20,
               token: str = "tok-admin") -> dict:
    """Poll GET /captures/{cid} until the capture's state is one of states; after timeout seconds, fail with
    the capture as it stands."""
    deadline = time.monotonic() + timeout
    while True:
        cap = client.get(f"/captures/{cid}", headers=headers(token)).json()["capture"]
        if cap["state"] in states:
            return cap
        if time.monotonic() > deadline:
            raise AssertionError(f"capture {cid} stayed {cap['state']}, wanted {states}: {cap}")
        time.sleep(0.05)
