"""Reading and scanning a file on a second thread while the caller meters what came before (`opentap flows`: the
copy out of the page cache and the first touch of each record header cost about as much as metering, and the
machine has more than one core).

`run_ahead(produce)` runs `produce(buffers)` on a thread: it reads the file in consecutive PIECE-sized pieces into
buffers it takes from `buffers` (a few that go round: no allocation per piece, each with SLACK bytes free in front
for the partial record the previous piece ended with), scans them and yields (item, buffer) pairs; the caller
gets the items in order, and a buffer goes back to the reader once the caller has moved on to an item of the next
one. The thread only waits in system calls that release the GIL (read) or on the queues; an exception it meets is
raised in the caller."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

PIECE = 1 << 20
SLACK = 1 << 18  # a record up to this long is carried over without a copy of the piece (pcap's 262144 snaplen)
BUFFERS = 3  # one being read, one being metered, one to spare
T = TypeVar("T")


class Buffers:
    def __init__(self, count: int = BUFFERS, size: int = SLACK + PIECE) -> None:
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        for _ in range(count):
            self._free.put(bytearray(size))
        self.stopping = False

    def take(self) -> bytearray | None:
        """A buffer to read into; None once the caller has stopped reading (the producer then returns)."""
        buf = None if self.stopping else self._free.get()
        return None if self.stopping else buf

    def give(self, buf: bytearray) -> None:
        self._free.put(buf)

    def stop(self) -> None:
        self.stopping = True
        self._free.put(None)  # wakes a producer waiting for a buffer


def run_ahead(produce: Callable[[Buffers], Iterator[tuple[T, bytearray]]]) -> Iterator[T]:
    buffers = Buffers()
    ready: queue.SimpleQueue[tuple[T, bytearray] | BaseException | None] = queue.SimpleQueue()

    def work() -> None:
        try:
            for item in produce(buffers):
                ready.put(item)
        except BaseException as e:  # raised again in the caller
            ready.put(e)
        finally:
            ready.put(None)

    thread = threading.Thread(target=work, name="read-ahead", daemon=True)
    thread.start()
    held: bytearray | None = None
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            value, buf = item
            if held is not None and buf is not held:
                buffers.give(held)  # the caller is done with the items of the previous buffer
            held = buf
            yield value
    finally:
        buffers.stop()
        thread.join()
