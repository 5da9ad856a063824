"""The ledger of the clsact qdiscs the datapath made (datapath/qdiscs.py), without the kernel's tc: it names an
interface by index and name, survives a restart through its file, and forgets what no longer matches. (The
removal itself, on the real kernel: tests/system/test_datapath_clsact.py.)"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from opentap.datapath.qdiscs import QdiscLedger

LO = socket.if_nametoindex("lo")


def test_it_remembers_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    first = QdiscLedger(path)
    assert not first.ours(LO, "lo")
    first.made(LO, "lo")
    assert first.ours(LO, "lo") and not first.ours(LO, "eth0")
    assert json.loads(path.read_text()) == {str(LO): "lo"}
    again = QdiscLedger(path)
    assert again.ours(LO, "lo")
    again.forget(LO)
    assert not QdiscLedger(path).ours(LO, "lo")


def test_entries_that_no_longer_match_are_dropped(tmp_path: Path) -> None:
    """An index that is gone, or that names another interface now, is not ours: its qdisc went with the old one."""
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"987654": "vnet3", str(LO): "renamed0"}))
    ledger = QdiscLedger(path)
    assert not ledger.ours(987654, "vnet3") and not ledger.ours(LO, "renamed0") and not ledger.ours(LO, "lo")
    ledger.made(LO, "lo")
    assert json.loads(path.read_text()) == {str(LO): "lo"}  # the stale entries went at the first write


def test_an_unreadable_file_means_we_know_of_none(tmp_path: Path) -> None:
    for text in ("{not json", "[1, 2]", '{"x": "lo"}'):
        path = tmp_path / "ledger.json"
        path.write_text(text)
        assert not QdiscLedger(path).ours(LO, "lo")
    assert not QdiscLedger(None).ours(LO, "lo")  # no file: only what this object made
