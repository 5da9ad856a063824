"""A netflow capture's records as a table the API can page, sort, filter and aggregate: an in-memory index of
flows.csv in numpy columns, built by one pass over the file and extended by reading only what was appended.

Why an index and not a scan per request: a capture may hold millions of records (~200 bytes each), and a
page of a sorted table needs every record's key. A scan per call is seconds of Python for each page; the
index is that cost once (bench/ui.py measures it), after which a sorted, filtered page or the aggregates
are numpy operations over ~60 bytes a record. The file is append-only while the meter writes it (whole
lines, then renamed from .flows.csv to flows.csv: the same inode), so a running capture's index grows by
reading from where it stopped. Memory is bounded: least recently used indexes are dropped past a budget
of records (MAX_RECORDS); the one being read is always kept.

The records themselves are not copied: a page is read back from the file at the offsets the index keeps."""

from __future__ import annotations

import calendar
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fastparse
from .fastparse import DA, DP, FLG, IBYT, IDMC, IPKT, ISMC, PR, SA, SP, STOS, SVLN, TD, TE, TS

SHOWN = {"ts": TS, "te": TE, "td": TD, "sa": SA, "da": DA, "sp": SP, "dp": DP, "pr": PR, "flg": FLG, "stos": STOS,
         "ipkt": IPKT, "ibyt": IBYT, "svln": SVLN, "ismc": ISMC, "idmc": IDMC}
SORTABLE = ("ts", "te", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt")
MAX_RECORDS = 2_000_000  # records kept indexed over all captures (~60 bytes each)
MEMO = 6  # answers remembered per index (a sort order or a filter's rows: 8 bytes a record; summaries are small)
BLOCK = 8 << 20  # bytes read per step while indexing


@dataclass
class Columns:
    """Parsed columns of some records, as Python lists while a block is read, then numpy arrays."""

    offset: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    te: list[int] = field(default_factory=list)
    td: list[float] = field(default_factory=list)
    sa: list[int] = field(default_factory=list)
    da: list[int] = field(default_factory=list)
    sp: list[int] = field(default_factory=list)
    dp: list[int] = field(default_factory=list)
    pr: list[int] = field(default_factory=list)
    ipkt: list[int] = field(default_factory=list)
    ibyt: list[int] = field(default_factory=list)


DTYPES = {"offset": np.int64, "ts": np.int64, "te": np.int64, "td": np.float64, "sa": np.int32, "da": np.int32,
          "sp": np.int32, "dp": np.int32, "pr": np.int16, "ipkt": np.int64, "ibyt": np.int64}


class FlowIndex:
    """The index of one capture's flow file. Not thread-safe on its own: Cache hands it out under its lock."""

    def __init__(self, inode: int) -> None:
        self.inode, self.end = inode, 0  # `end`: the file offset after the last whole line indexed
        self.cols = {k: np.zeros(0, dtype=t) for k, t in DTYPES.items()}
        self.addresses: list[str] = []  # sa/da codes -> address text
        self.protocols: list[str] = []  # pr codes -> nfdump's protocol name
        self._address_code: dict[str, int] = {}
        self._protocol_code: dict[str, int] = {}
        self._second: dict[str, int] = {}  # "YYYY-mm-dd HH:MM:SS" -> UNIX seconds (flows share seconds)
        self.lock = threading.Lock()
        # answers already worked out (summaries, sort orders), keyed with the number of records they cover, so
        # that the records appended to a running capture make them stale by themselves; a finished capture's
        # warm page or summary is then a look-up
        self.memo: OrderedDict[tuple, object] = OrderedDict()

    def remember(self, key: tuple, make: Callable[[], object]) -> object:
        key = (len(self), *key)
        if key in self.memo:
            self.memo.move_to_end(key)
            return self.memo[key]
        value = self.memo[key] = make()
        while len(self.memo) > MEMO:
            self.memo.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self.cols["offset"])

    def _code(self, table: dict[str, int], names: list[str], text: str) -> int:
        code = table.get(text)
        if code is None:
            code = table[text] = len(names)
            names.append(text)
        return code

    def _seconds(self, text: str) -> int:
        t = self._second.get(text)
        if t is None:
            try:
                t = calendar.timegm((int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                                     int(text[14:16]), int(text[17:19]), 0, 0, 0))
            except ValueError:
                t = 0
            if len(self._second) > 100_000:  # a capture spans a bounded number of seconds; a bad file may not
                self._second.clear()
            self._second[text] = t
        return t

    def extend(self, path: Path) -> None:
        """Index the whole lines appended to the file since the last call."""
        self._pieces: dict[str, list[np.ndarray]] = {k: [v] for k, v in self.cols.items()}
        try:
            self._read(path)
        finally:  # once, at the end: concatenating per block copied the growing columns again and again
            if len(self._pieces["offset"]) > 1:
                self.cols = {k: np.concatenate(v) for k, v in self._pieces.items()}
            del self._pieces

    def _read(self, path: Path) -> None:
        with open(path, "rb") as f:
            f.seek(self.end)
            while True:
                block = f.read(BLOCK)
                if not block:
                    return
                cut = block.rfind(b"\n") + 1
                if cut == 0:  # no whole line yet (the meter is writing one), or a line longer than a block
                    if len(block) < BLOCK:
                        return
                    raise ValueError("a flow record longer than 8 MiB")
                if not self._parse_fast(block[:cut], self.end):
                    self._parse(block[:cut], self.end)
                self.end += cut
                f.seek(self.end)

    def _parse_fast(self, block: bytes, base: int) -> bool:
        """The block's records parsed with numpy over its bytes (~6x the Python loop's speed): every line must
        have nfdump's 48 fields and fixed-width times; False (nothing done) when one does not."""
        found = fastparse.parse(block)
        if found is None:
            return False
        starts, cols, sa, da, pr = found
        if not len(starts):
            return True
        new = {"offset": starts + base, **cols,
               "sa": self._codes(sa, self._address_code, self.addresses),
               "da": self._codes(da, self._address_code, self.addresses),
               "pr": self._codes(pr, self._protocol_code, self.protocols)}
        for name, dtype in DTYPES.items():
            self._pieces[name].append(new[name].astype(dtype, copy=False))
        return True

    def _codes(self, texts: np.ndarray, table: dict[str, int], names: list[str]) -> np.ndarray:
        uniq, inverse = np.unique(texts, return_inverse=True)
        mapping = np.array([self._code(table, names, u.decode("utf-8", "replace").strip()) for u in uniq],
                           dtype=np.int32)
        return mapping[inverse]

    def _parse(self, block: bytes, base: int) -> None:
        """The plain way, line by line: for blocks the fast parser refuses (and its reference in the tests)."""
        new = Columns()
        at = base
        code, address_code, protocol_code = self._code, self._address_code, self._protocol_code
        for raw in block.split(b"\n")[:-1]:
            start, at = at, at + len(raw) + 1
            f = raw.decode("utf-8", "replace").split(",", 13)
            if len(f) < 14 or f[0] == "ts":  # the header (or a line that is no record)
                continue
            try:
                values = (self._seconds(f[TS]), self._seconds(f[TE]), float(f[TD]), int(f[SP]), int(f[DP]),
                          int(f[IPKT]), int(f[IBYT]))
            except ValueError:
                continue
            new.offset.append(start)
            new.ts.append(values[0])
            new.te.append(values[1])
            new.td.append(values[2])
            new.sp.append(values[3])
            new.dp.append(values[4])
            new.ipkt.append(values[5])
            new.ibyt.append(values[6])
            new.sa.append(code(address_code, self.addresses, f[SA]))
            new.da.append(code(address_code, self.addresses, f[DA]))
            new.pr.append(code(protocol_code, self.protocols, f[PR].strip()))
        if new.offset:
            for name, dtype in DTYPES.items():
                self._pieces[name].append(np.asarray(getattr(new, name), dtype=dtype))


class Cache:
    """Indexes by capture, least recently used first out once they hold more than MAX_RECORDS records."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.max_records = max_records
        self._items: OrderedDict[tuple[str, str], FlowIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], path: Path) -> FlowIndex:
        """The capture's index, up to date with the file at path (locked while extending: one reader builds)."""
        inode = path.stat().st_ino
        with self._lock:
            index = self._items.get(key)
            if index is None or index.inode != inode:  # new, or the file was replaced (a capture id reused)
                index = self._items[key] = FlowIndex(inode)
            self._items.move_to_end(key)
        with index.lock:
            index.extend(path)
        with self._lock:
            total = sum(len(i) for i in self._items.values())
            for other in list(self._items):
                if total <= self.max_records or other == key:
                    break
                total -= len(self._items.pop(other))
        return index

    def drop(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._items.pop(key, None)
