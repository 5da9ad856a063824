"""Request dependencies: the device's state and the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.orm import sessionmaker

from opentap.auth import Principal, authenticate, authenticate_local
from opentap.capture.engine import CaptureEngine
from opentap.config import Config
from opentap.taas.reconcile import Reconciler
from opentap.taas.store import TaasStore

from .commitcache import CommitCache
from .errors import ApiError
from .localsocket import PEER_SCOPE_KEY


@dataclass
class DeviceState:
    """What the routes work with: the config, the database, the capture engine, the TaaS store, the datapath's
    reconciler (None without CAP_NET_ADMIN), and the read cache. (Not the client's Device: that is a remote one.)"""

    cfg: Config
    sessions: sessionmaker
    engine: CaptureEngine
    taas: TaasStore
    datapath: Reconciler | None = None
    reads: CommitCache = field(init=False)  # what the busy read routes read, until the next commit

    def __post_init__(self) -> None:
        self.reads = CommitCache(self.sessions)


# Both are `async def` on purpose: they never block (authenticate is a hash, and a stat of the config file to
# pick up new tokens), and FastAPI runs a plain `def` dependency in its thread pool, a hop to a worker thread
# and back for each one on every call (the two hops were ~0.2 ms of CPU per call, and GIL hand-offs).
async def device(request: Request) -> DeviceState:
    return request.app.state.device


SSH_KEY_HEADER = "x-opentap-ssh-key"  # honoured on the Unix socket only, where the kernel vouches for the caller


async def principal(request: Request) -> Principal:
    # the header read directly: declared as a Header parameter, FastAPI resolves and validates it on every call
    # (the OpenAPI document states X-Auth-Token as a security scheme instead, api/openapi.py)
    x_auth_token = request.headers.get("x-auth-token")
    cfg = request.app.state.device.cfg
    peer = request.scope.get(PEER_SCOPE_KEY)
    if peer is not None:
        who = authenticate_local(cfg, peer, request.headers.get(SSH_KEY_HEADER), x_auth_token)
    else:
        who = authenticate(cfg, x_auth_token)
    if who is None:
        raise ApiError(401, "missing or invalid X-Auth-Token" if x_auth_token else
                       "this device needs an X-Auth-Token header (see `opentap token create`)")
    return who
