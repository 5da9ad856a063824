"""Request dependencies: the device's state and the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Header, Request
from sqlalchemy.orm import sessionmaker

from opentap.auth import Principal, authenticate, authenticate_local
from opentap.capture.engine import CaptureEngine
from opentap.config import Config

from .errors import ApiError
from .localsocket import PEER_SCOPE_KEY


@dataclass
class Device:
    cfg: Config
    sessions: sessionmaker
    engine: CaptureEngine


def device(request: Request) -> Device:
    return request.app.state.device


SSH_KEY_HEADER = "x-opentap-ssh-key"  # honoured on the Unix socket only, where the kernel vouches for the caller


def principal(request: Request, x_auth_token: str | None = Header(default=None)) -> Principal:
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
