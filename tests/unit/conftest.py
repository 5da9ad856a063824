"""The unit tier: no root, no network, no daemon process, no tcpdump, and the whole of it in well under a minute
(`pytest tests/unit`). What needs any of those is a system test (tests/system/)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opentap.taas.reconcile import Reconciler

from ..support.enginerig import EngineRig
from ..support.memdriver import OWNER, Datapath, Kernel, MemDriver
from ..support.taasdb import TaasRows, database

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked root here would be skipped for everyone but root, and so would pass unseen: refuse it."""
    misplaced = [item.nodeid for item in items if item.path.is_relative_to(HERE) and "root" in item.keywords]
    if misplaced:
        raise pytest.UsageError(f"marked root, so not unit tests (move them to tests/system): {', '.join(misplaced)}")


@pytest.fixture(autouse=True)
def unprivileged_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the in-process app as it runs without CAP_NET_ADMIN, whoever runs the tests: as root it would start the
    tc datapath on the host's kernel, and unit tests would then behave differently for root (and each pay the link
    watcher's half-second stop). The reconciler's logic is tested here on the in-memory driver, the kernel's side
    in tests/system."""
    monkeypatch.setattr("opentap.api.deployment.has_net_admin", lambda: False)


@pytest.fixture
def taas(tmp_path: Path) -> Iterator[TaasRows]:
    """TaaS rows in a fresh database, made as the API makes them (tests/support/taasdb.py)."""
    with database(tmp_path) as sessions:
        yield TaasRows(sessions)


@pytest.fixture
def kernel() -> Kernel:
    """An in-memory kernel (tests/support/memdriver.py) with two VMs' tap interfaces and a monitor's, all up."""
    return Kernel(links=dict.fromkeys(("vm1-tap", "vm2-tap", "mon-tap"), True))


@pytest.fixture
def datapath(taas: TaasRows, kernel: Kernel) -> Datapath:
    """datapath(owner=OWNER) -> a reconciler on the taas rows and a new in-memory driver over the kernel (called
    again: the daemon restarted over the same kernel), and that driver."""
    def make(owner: bytes = OWNER) -> tuple[Reconciler, MemDriver]:
        driver = MemDriver(kernel, owner)
        return Reconciler(taas.sessions, driver), driver

    return make


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., EngineRig]]:
    """make_rig(**settings) -> a capture engine running on the in-memory capture type (tests/support/enginerig.py),
    with a config of these settings in tmp_path; stopped after the test."""
    rigs: list[EngineRig] = []

    def make(**settings: object) -> EngineRig:
        rigs.append(EngineRig(tmp_path, **settings))
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.close()


@pytest.fixture
def rig(make_rig: Callable[..., EngineRig]) -> EngineRig:
    return make_rig()
