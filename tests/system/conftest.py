"""Fixtures of the system tests only: two test hosts in network namespaces (tests/support/netns.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..support.netns import Lan, prefix


@pytest.fixture
def lan() -> Iterator[Lan]:
    topo = Lan(prefix())
    topo.up()
    try:
        yield topo
    finally:
        topo.down()
