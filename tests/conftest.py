"""Shared fixtures: configs, live daemons (in-process and as real processes), and namespace test hosts."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opentap import auth, config
from opentap.api.app import create_app

from .netns import Lan, prefix

ROOT_REASON = None
if os.geteuid() != 0:
    ROOT_REASON = "needs root for network namespaces and packet capture (CI runs as root)"
elif not shutil.which("tcpdump") and not os.path.exists("/usr/sbin/tcpdump"):
    ROOT_REASON = "tcpdump is not installed (test.sh installs it when run as root)"
elif not shutil.which("ip"):
    ROOT_REASON = "iproute2 is not installed"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if ROOT_REASON:
        for item in items:
            if "root" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=ROOT_REASON))


TOKENS = {  # token -> (project, roles)
    "tok-admin": ("admin", ["admin"]),
    "tok-alice": ("alice", ["member"]),
    "tok-alice-reader": ("alice", ["reader"]),
    "tok-bob": ("bob", ["member"]),
}


SSH_KEYS = {"tester": ("alice", ["member"])}  # name -> (project, roles), for `opentap invoke --key tester`


def _toml(value: object) -> str:
    """A setting as TOML: strings quoted, a dict as an inline table ({tap_flow = -1}), the rest as Python prints it."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def write_config(directory: Path, points: dict[str, str] | None = None, extra_toml: str = "",
                 **settings: object) -> Path:
    """A config with the test tokens and SSH key; settings are top-level keys (a dict: an inline table),
    extra_toml more tables."""
    points = points if points is not None else {"lo": "lo"}
    lines = [f"{k} = {_toml(v)}" for k, v in settings.items()]
    # an interface name, or a raw TOML inline table such as '{interface = "lo", projects = ["bob"]}'
    lines += ["", "[observation_points]"]
    lines += [f'"{name}" = {spec if spec.startswith("{") else repr(spec)}' for name, spec in points.items()]
    for token, (project, roles) in TOKENS.items():
        roles_toml = ", ".join(f'"{r}"' for r in roles)
        lines += ["", "[[tokens]]", f'sha256 = "{auth.hash_token(token)}"', f'project = "{project}"',
                  f"roles = [{roles_toml}]"]
    for name, (project, roles) in SSH_KEYS.items():
        lines += ["", "[[ssh_keys]]", f'name = "{name}"', f'project = "{project}"', f"roles = {json.dumps(roles)}"]
    path = directory / "opentap.conf"
    path.write_text("\n".join(lines) + "\n" + (f"\n{extra_toml}\n" if extra_toml else ""))
    return path


def headers(token: str = "tok-admin") -> dict[str, str]:
    return {"X-Auth-Token": token}


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """make_client(points=..., **settings) -> a TestClient on a live app (engine thread running)."""
    clients: list[TestClient] = []

    def make(points: dict[str, str] | None = None, **settings: object) -> TestClient:
        settings.setdefault("gc_interval_seconds", 0.2)
        cfg = config.load(write_config(tmp_path, points, **settings))
        client = TestClient(create_app(cfg))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def lan() -> Iterator[Lan]:
    topo = Lan(prefix())
    topo.up()
    try:
        yield topo
    finally:
        topo.down()


def wait_state(client: TestClient, cid: str, states: tuple[str, ...], timeout: float = 20,
               token: str = "tok-admin") -> dict:
    deadline = time.monotonic() + timeout
    while True:
        cap = client.get(f"/captures/{cid}", headers=headers(token)).json()["capture"]
        if cap["state"] in states:
            return cap
        if time.monotonic() > deadline:
            raise AssertionError(f"capture {cid} stayed {cap['state']}, wanted {states}: {cap}")
        time.sleep(0.05)
