"""Reading a file on a second thread while the caller works on what was read before (`opentap flows`: the copy
out of the page cache costs about as much as metering, and the machine has more than one core).

The file is read in consecutive PIECE-sized pieces into a few buffers that go round (no allocation per piece),
each with SLACK bytes free in front, where the reader's caller puts the partial record the previous piece ended
with. The thread only ever blocks in the read system call (which releases the GIL) or on the queue."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

PIECE = 1 << 20
SLACK = 1 << 18  # a record up to this long is carried over without a copy of the piece (pcap's 262144 snaplen)
BUFFERS = 3  # one being read, one being metered, one to spare


class ReadAhead:
    def __init__(self, f: BinaryIO, start: int, size: int) -> None:
        self._ready: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None] = queue.SimpleQueue()
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        for _ in range(BUFFERS):
            self._free.put(bytearray(SLACK + PIECE))
        self._stopping = False
        self._thread = threading.Thread(target=self._run, args=(f, start, size), name="read-ahead", daemon=True)

    def __enter__(self) -> ReadAhead:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopping = True
        self._free.put(None)  # wakes the thread if it waits for a buffer
        self._thread.join()

    def _run(self, f: BinaryIO, start: int, size: int) -> None:
        try:
            f.seek(start)
            left = size - start  # not past the size seen at open: a live file is not chased
            while left > 0 and not self._stopping:
                buf = self._free.get()
                if buf is None:
                    break
                n = f.readinto(memoryview(buf)[SLACK : SLACK + min(PIECE, left)]) or 0
                if n == 0:
                    break  # the file shrank
                left -= n
                self._ready.put((buf, n))
        except BaseException as e:  # handed to the caller, which raises it
            self._ready.put(e)
        finally:
            self._ready.put(None)

    def __iter__(self) -> Iterator[tuple[bytearray, int]]:
        """(buffer, n): the next piece is buf[SLACK:SLACK + n]."""
        while (item := self._ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def recycle(self, buf: bytearray) -> None:
        """The caller is done with buf: it may be read into again."""
        self._free.put(buf)
