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
from opentap.db.session import make_engine, migrate

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


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the newest migration, made once: each app's own copy of it skips the
    migrations (reading the scripts is ~0.1 s, and the unit tier makes a few hundred apps)."""
    path = tmp_path_factory.mktemp("template") / "opentap.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:  # everything into the main file, so that copying the file copies it all
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def make_client(tmp_path: Path, migrated_database: Path) -> Iterator[Callable[..., TestClient]]:
    """make_client(points=..., **settings) -> a TestClient on a live app (engine thread running)."""
    clients: list[TestClient] = []

    def make(points: dict[str, str] | None = None, **settings: object) -> TestClient:
        settings.setdefault("gc_interval_seconds", 0.2)
        if "database_url" not in settings and not (tmp_path / "opentap.db").exists():
            shutil.copyfile(migrated_database, tmp_path / "opentap.db")
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
