"""A capture's text files across segments: a resumed capture goes on in the file an earlier segment published,
and a row a crash cut short is dropped, for every type that writes rows (linkstats here, on lo's counters)."""

from __future__ import annotations

from pathlib import Path

from opentap.capture import linkstats, storage


def test_a_resumed_linkstats_capture_keeps_its_first_segments_rows(tmp_path: Path) -> None:
    first = linkstats.LinkstatsDriver(tmp_path, "lo", 10, segment=1)
    first.start()
    first.stop()  # publishes linkstats.csv, as a clean stop or a restart's finalize does
    rows_before = (tmp_path / linkstats.FINAL).read_text().splitlines()
    assert rows_before[0] == linkstats.HEADER.strip() and len(rows_before) >= 3
    second = linkstats.LinkstatsDriver(tmp_path, "lo", 10, segment=2)
    second.start()
    second.stop()
    rows = (tmp_path / linkstats.FINAL).read_text().splitlines()
    assert rows[: len(rows_before)] == rows_before  # the first segment's rows are still there, the header once
    assert len(rows) > len(rows_before) and rows.count(linkstats.HEADER.strip()) == 1


def test_a_row_cut_by_a_crash_is_dropped_and_the_header_written_once(tmp_path: Path) -> None:
    (tmp_path / ".rows.csv").write_text("time,v\n1,2\n3,")  # the daemon died in the middle of a row
    with storage.append_to(tmp_path, ".rows.csv", "rows.csv", "time,v\n") as out:
        out.write("5,6\n")
    assert (tmp_path / ".rows.csv").read_text() == "time,v\n1,2\n5,6\n"
    with storage.append_to(tmp_path, ".new.csv", "new.csv", "time,v\n") as out:
        out.write("7,8\n")
    assert (tmp_path / ".new.csv").read_text() == "time,v\n7,8\n"
