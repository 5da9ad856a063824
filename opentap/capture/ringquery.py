"""Answering a window of the past from a ring: the packets stamped in [start, end) that a BPF filter matches.

The indexes pick the stretches that can hold such packets (their time overlaps the window, their summary may
match the filter); only those bytes are read. Records at the window's edges are cut by their timestamps here,
and the filter itself is applied exactly by libpcap: the selected records are piped to `tcpdump -r - -w OUT`
with the filter after `--`. Without a filter nothing needs libpcap and the records are written directly.

Every block is opened before the first byte is read, so a block evicted (deleted) or published (renamed)
while the query runs is read all the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from opentap._native import scan_pcap
from opentap.capture import ringfilter, ringindex, storage
from opentap.capture.ring import Block
from opentap.capture.tcpdump import tcpdump_path
from opentap.pcap import pcapfile

READ = 1 << 20
# A query is background work next to the ring's recorder (nice -10, ringrecorder.py): a slow answer is late, a
# starved recorder loses packets for good. Not SCHED_IDLE: a thread that never runs while it holds Python's GIL
# would stall the whole daemon (the API, the rings' passes); at nice 10 it still gets ~1/10 of a busy CPU.
NICE = 10
F_SETPIPE_SZ = 1031  # fcntl.h; Python's fcntl has it from 3.10 on some builds only
PIPE_BYTES = 1 << 20  # /proc/sys/fs/pipe-max-size's default


class QueryError(RuntimeError):
    pass


@dataclass
class QueryResult:
    files: list[Path] = field(default_factory=list)
    packets: int = 0  # in the answer
    stretches: int = 0  # indexed stretches in the ring
    stretches_read: int = 0
    unindexed_blocks: int = 0  # read whole: still open, or not indexed yet
    vanished: int = 0  # listed, but evicted before they could be opened
    overwritten: int = 0  # unpublished blocks that tcpdump reused while they were read (the ring fell behind)
    # unindexed block -> where its first record stamped at or after the window's end is: a caller that asks
    # next for the window after this one gives it back (skip=), and the block is not read again from its start
    resume: dict[bytes, int] = field(default_factory=dict)
    bytes_read: int = 0
    judged: bool = False  # whether the filter could be used to skip stretches


Range = tuple[int, int, bool]  # file offsets [lo, hi), and whether every record there is inside the window


@dataclass
class _Source:
    f: BinaryIO
    header: pcapfile.PcapHeader
    ranges: list[Range]
    key: bytes | None = None  # an unindexed block's identity (see _identity)
    resume: int = 0


def background() -> None:
    """Lower the calling thread's priority to NICE for good: its queries, and the `tcpdump -r` they fork (a
    child inherits the thread's nice value), yield the CPU to the recorder. Linux's nice is per thread, so the
    rest of the process (the API) keeps its priority. Call it from a thread that only queries."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


def _identity(f: BinaryIO) -> bytes:
    """An open block's identity for resume: its inode and its first record's header (an inode number can be
    reused by a later block; its first timestamp will not be the same)."""
    f.seek(0)
    head = f.read(pcapfile.HEADER_LEN + pcapfile.RECORD_HEADER_LEN)
    return os.fstat(f.fileno()).st_ino.to_bytes(8, "little") + head


def _ranges(stretches: list[ringindex.Stretch], start_ns: int, end_ns: int) -> list[Range]:
    """Byte ranges of the selected stretches, neighbours of the same kind joined. A stretch wholly inside the
    window is copied without being looked at (its bounds are record bounds); one at an edge is cut record by
    record."""
    out: list[Range] = []
    for s in stretches:
        whole = s.first_ns >= start_ns and s.last_ns < end_ns
        if out and out[-1][1] == s.offset and out[-1][2] == whole:
            out[-1] = (out[-1][0], s.end, whole)
        else:
            out.append((s.offset, s.end, whole))
    return out


@contextlib.contextmanager
def _opened(blocks: list[Block], start_ns: int, end_ns: int, may: ringfilter.Predicate,
            result: QueryResult, skip: dict[bytes, int]) -> Iterator[list[_Source]]:
    files: list[BinaryIO] = []
    try:
        sources = []
        for block in blocks:
            try:
                f = open(block.pcap, "rb", buffering=0)  # noqa: SIM115 - closed below, with the others
            except FileNotFoundError:  # evicted since it was listed: older than anything still kept
                result.vanished += 1
                continue
            files.append(f)
            header = pcapfile.read_header(f)
            if header is None:
                continue
            size = os.fstat(f.fileno()).st_size
            if block.index is None:
                result.unindexed_blocks += 1
                key = _identity(f)
                lo = min(max(skip.get(key, pcapfile.HEADER_LEN), pcapfile.HEADER_LEN), size)
                sources.append(_Source(f, header, [(lo, size, False)], key, lo))
                continue
            try:
                index = ringindex.read(block.index)
            except (OSError, ValueError):  # gone with its block, or unreadable: read the block whole
                result.unindexed_blocks += 1
                sources.append(_Source(f, header, [(pcapfile.HEADER_LEN, size, False)]))
                continue
            chosen = index.select(start_ns, end_ns - 1, may)
            result.stretches += len(index.stretches)
            result.stretches_read += len(chosen)
            if chosen:
                sources.append(_Source(f, header, _ranges(chosen, start_ns, end_ns)))
        yield sources
    finally:
        for f in files:
            f.close()


def _records(src: _Source, start_ns: int, end_ns: int, result: QueryResult) -> Iterator[bytes | tuple[int, int]]:
    """The whole records of the source's ranges stamped in [start_ns, end_ns): runs of bytes, or (lo, hi) for
    a part of the file to be copied as it is."""
    h = src.header
    args = (h.byteorder == "big", h.nanosecond, h.linktype, h.max_caplen)
    for lo, hi, whole in src.ranges:
        if whole:
            result.bytes_read += hi - lo
            yield lo, hi
            continue
        pos, need = lo, 0
        while pos < hi:
            src.f.seek(pos)
            buf = src.f.read(min(max(READ, need), hi - pos))
            result.bytes_read += len(buf)
            descs, end, missing, bad, _captured, _wire = scan_pcap(buf, *args)
            if bad and src.key is None:
                raise QueryError(f"a ring block is damaged at byte {pos + end}")
            if bad and not end:  # an unpublished block reused by tcpdump under us: the rest is not it
                result.overwritten += 1
                break
            if not end:
                if len(buf) < min(max(READ, need), hi - pos) or pos + len(buf) >= hi:
                    break  # a record cut by the end of the open block: not written yet
                need = len(buf) - end + missing
                continue
            # (time, where the record starts, where it ends): a packet's data follows its 16-byte record header
            recs = [(ts, off - pcapfile.RECORD_HEADER_LEN, off + caplen)
                    for ts, off, caplen, *_rest in pcapfile.DESC.iter_unpack(descs)]
            first, last = min(r[0] for r in recs), max(r[0] for r in recs)
            if src.key is not None and src.resume == pos:  # not past the window's end yet: move the mark on
                src.resume = pos + end if last < end_ns else pos + next(a for ts, a, _b in recs if ts >= end_ns)
            if first >= start_ns and last < end_ns:
                yield buf[:end]
            elif last >= start_ns and first < end_ns:
                yield b"".join(buf[a:b] for ts, a, b in recs if start_ns <= ts < end_ns)
            pos, need = pos + end, 0
            if bad:  # the good records before it are given; what follows was overwritten
                result.overwritten += 1
                break


def extract(blocks: list[Block], start_ns: int, end_ns: int, bpf: str | None, out_dir: Path, prefix: str,
            first: int = 0, user: str | None = None, skip: dict[bytes, int] | None = None) -> QueryResult:
    """Write the answer to out_dir/<prefix>NNNNNN.pcap, numbered from first (one file per link type and format
    in the ring, so normally one), each under a hidden name first. Returns what was read and found."""
    may, judged = ringfilter.compile_may(bpf)
    result = QueryResult(judged=judged)
    with _opened(blocks, start_ns, end_ns, may, result, skip or {}) as sources:
        groups: list[list[_Source]] = []
        for src in sources:  # records are copied under one header: a new header starts a new file
            if groups and groups[-1][0].header.raw == src.header.raw:
                groups[-1].append(src)
            else:
                groups.append([src])
        for n, group in enumerate(groups):
            final = out_dir / f"{prefix}{first + n:06d}.pcap"
            hidden = out_dir / f".{final.name}.part"
            _write(group, start_ns, end_ns, bpf, hidden, out_dir / f".{prefix}query.log", user, result)
            storage.publish(hidden, final)
            result.files.append(final)
        result.resume = {src.key: src.resume for src in sources if src.key is not None}
    result.packets = pcapfile.count(result.files).packets
    return result


class _Sink:
    """Where the answer's bytes go: a file, or tcpdump's standard input. Whole ranges go by sendfile(2), from
    the block's page cache to the sink without passing through Python."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out

    def put(self, src: _Source, item: bytes | tuple[int, int]) -> None:
        if isinstance(item, bytes):
            self.out.write(item)
            return
        self.out.flush()
        at, hi = item
        while at < hi:
            sent = os.sendfile(self.out.fileno(), src.f.fileno(), at, hi - at)
            if sent == 0:
                raise QueryError("a ring block ended early while it was read")
            at += sent


def _write(group: list[_Source], start_ns: int, end_ns: int, bpf: str | None, out: Path, log: Path,
           user: str | None, result: QueryResult) -> None:
    if not bpf:
        with open(out, "wb") as f:
            f.write(group[0].header.raw)
            sink = _Sink(f)
            for src in group:
                for item in _records(src, start_ns, end_ns, result):
                    sink.put(src, item)
        return
    argv = [tcpdump_path(), "-r", "-", "-w", str(out), "-Z", user or "root", "--", bpf]
    with open(log, "ab") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, close_fds=True)
    assert proc.stdin is not None
    with contextlib.suppress(OSError):  # a larger pipe: fewer hand-overs between us and tcpdump
        fcntl.fcntl(proc.stdin.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    try:
        proc.stdin.write(group[0].header.raw)
        sink = _Sink(proc.stdin)
        for src in group:
            for item in _records(src, start_ns, end_ns, result):
                sink.put(src, item)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # tcpdump went early: its exit status says why
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.wait(timeout=600) != 0:
        raise QueryError(f"tcpdump -r exited with {proc.returncode}: {log.read_text(errors='replace')[-300:]}")
    log.unlink(missing_ok=True)
