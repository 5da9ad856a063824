"""A window from ring blocks (without a filter, so without tcpdump): exactly the records stamped in [start, end),
whether the block is indexed (stretches chosen, those inside the window copied whole) or read whole; and windows
asked one after another, each resuming where the last left off in an open block, add up to every record once;
a querying thread lowers its own priority (and its children's), not the process's."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from opentap.capture import ringindex, ringquery
from opentap.capture.ring import Block
from opentap.pcap import pcapfile

from ..support.pcapgen import generate


@pytest.fixture(scope="module")
def block(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[tuple[int, bytes]]]:
    d = tmp_path_factory.mktemp("block")
    generate(d / "b.pcap", 8000, seed=2)
    ringindex.write(ringindex.build(d / "b.pcap", 64 * 1024), d / "b.idx")
    return d / "b.pcap", d / "b.idx", [(ts, data) for ts, _w, data in pcapfile.iter_records([d / "b.pcap"])]


def _answer(result: ringquery.QueryResult) -> list[tuple[int, bytes]]:
    return [(ts, data) for ts, _w, data in pcapfile.iter_records(result.files)]


@pytest.mark.parametrize("indexed", [True, False])
def test_exactly_the_window(block: tuple, tmp_path: Path, indexed: bool) -> None:
    pcap, idx, records = block
    blocks = [Block(pcap, idx if indexed else None)]
    stamps = [ts for ts, _d in records]
    for n, (a, b) in enumerate([(0.1, 0.9), (0.0, 1.0), (0.5, 0.5001), (0.33, 0.34)]):
        lo, hi = stamps[int(a * (len(stamps) - 1))], stamps[int(b * (len(stamps) - 1))]
        result = ringquery.extract(blocks, lo, hi, None, tmp_path, f"w{n}-")
        assert _answer(result) == [(ts, d) for ts, d in records if lo <= ts < hi]
        assert result.packets == sum(lo <= ts < hi for ts in stamps)
        if indexed and b - a < 0.5:  # the index chose the stretches of the window only
            assert result.stretches_read < result.stretches / 4
    # nothing in the window: an empty answer, not an error
    empty = ringquery.extract(blocks, stamps[-1] + 1, stamps[-1] + 2, None, tmp_path, "none-")
    assert empty.packets == 0


def test_consecutive_windows_resume_and_add_up(block: tuple, tmp_path: Path) -> None:
    pcap, _idx, records = block
    stamps = [ts for ts, _d in records]
    cuts = [stamps[0]] + [stamps[i] for i in range(500, len(stamps), 700)] + [stamps[-1] + 1]
    got: list[tuple[int, bytes]] = []
    skip: dict[bytes, int] = {}
    size = pcap.stat().st_size
    for n, (lo, hi) in enumerate(zip(cuts, cuts[1:], strict=False)):
        result = ringquery.extract([Block(pcap, None)], lo, hi, None, tmp_path, f"c{n}-", skip=skip)
        # each pass goes on from where the last one's window ended, not from the block's start (an open block
        # only grows: in the device what lies after that mark is what was written since)
        since = max(skip.values(), default=pcapfile.HEADER_LEN)
        assert result.bytes_read <= size - since + (1 << 20)
        assert n == 0 or since > pcapfile.HEADER_LEN
        skip = result.resume
        got += _answer(result)
    assert got == records


def test_background_lowers_the_calling_thread_and_what_it_forks_only() -> None:
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert main_before < ringquery.NICE
    seen: dict[str, int] = {}

    def query() -> None:
        ringquery.background()
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        child = [sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"]
        seen["child"] = int(subprocess.run(child, capture_output=True, text=True, check=True).stdout)

    worker = threading.Thread(target=query)
    worker.start()
    worker.join()
    assert seen == {"thread": ringquery.NICE, "child": ringquery.NICE}  # tcpdump -r, forked by it, too
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before  # the API's threads keep theirs
