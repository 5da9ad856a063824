"""Fixtures both tiers use: a live app in-process (engine thread running) on a config of the test tokens. The
helpers (configs, tokens, waiting) are in tests/support/; the namespace hosts are tests/system/conftest.py's."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opentap import config
from opentap.api.app import create_app

from .support.configs import write_config

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
