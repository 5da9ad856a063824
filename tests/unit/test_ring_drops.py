"""The ring's tcpdump's kernel drops, read from its log as tcpdump 4.99 writes it: one line per SIGUSR1, and a
count a line at exit. Each increase is reported once; a log emptied because it grew is read on."""

from __future__ import annotations

from pathlib import Path

from opentap.capture import ringdrops
from opentap.capture.ringdrops import DropWatch

ASKED = "tcpdump: {c} packets captured, {r} packets received by filter, {d} packets dropped by kernel\n"


def test_drops_are_reported_once_each(tmp_path: Path) -> None:
    log = tmp_path / "tcpdump.log"
    log.write_text("listening on ot1ha, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n"
                   + ASKED.format(c=10, r=10, d=0))
    watch = DropWatch(log)
    assert watch.new_drops()[0] == 0
    with open(log, "a") as f:
        f.write(ASKED.format(c=20, r=25, d=5))
    assert watch.new_drops()[0] == 5 and watch.new_drops()[0] == 0 and watch.dropped == 5
    with open(log, "a") as f:
        f.write("25 packets captured\n32 packets received by filter\n7 packets dropped by kernel\n")
    assert watch.new_drops()[0] == 2


def test_a_large_log_is_emptied_and_read_on(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ringdrops, "MAX_LOG", 200)
    log = tmp_path / "tcpdump.log"
    log.write_text("".join(ASKED.format(c=i, r=i, d=1) for i in range(10)))
    watch = DropWatch(log)
    assert watch.new_drops()[0] == 1 and log.stat().st_size == 0
    with open(log, "a") as f:  # tcpdump appends on after the truncation
        f.write(ASKED.format(c=50, r=54, d=4))
    assert watch.new_drops()[0] == 3
