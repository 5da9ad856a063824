"""The unit tier: no root, no network, no daemon process, no tcpdump, and the whole of it in well under a minute
(`pytest tests/unit`). What needs any of those is a system test (tests/system/)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    monkeypatch.setattr("opentap.api.app.has_net_admin", lambda: False)
