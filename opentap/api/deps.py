"""Request dependencies: the device's state and the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Header, Request
from sqlalchemy.orm import sessionmaker

from opentap.auth import Principal, authenticate
from opentap.capture.engine import CaptureEngine
from opentap.config import Config

from .errors import ApiError


@dataclass
class Device:
    cfg: Config
    sessions: sessionmaker
    engine: CaptureEngine


def device(request: Request) -> Device:
    return request.app.state.device


def principal(request: Request, x_auth_token: str | None = Header(default=None)) -> Principal:
    who = authenticate(request.app.state.device.cfg, x_auth_token)
    if who is None:
        raise ApiError(401, "missing or invalid X-Auth-Token" if x_auth_token else
                       "this device needs an X-Auth-Token header (see `opentap token create`)")
    return who
