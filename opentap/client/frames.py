"""The devices' CSVs as typed DataFrames, parsed from the streamed body (never the whole text in memory), and
the same typed chunks into Parquet. pandas and pyarrow are imported here, lazily: `opentap.client` works
without them until a DataFrame is asked for."""

from __future__ import annotations

import io
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# Column kinds. Times become tz-aware UTC datetimes; "Int" is a nullable integer (the field may be empty).
NFDUMP_TIME, NFDUMP_TIME_MS, EPOCH_MS = "nfdump_time", "nfdump_time_ms", "epoch_ms"
INT, NULLABLE_INT, FLOAT, TEXT = "int", "Int", "float", "text"
TIME_KINDS = {NFDUMP_TIME: "%Y-%m-%d %H:%M:%S", NFDUMP_TIME_MS: "%Y-%m-%d %H:%M:%S.%f", EPOCH_MS: None}
TIME_DTYPE = "datetime64[ns, UTC]"  # pandas 2's default unit; pandas 3 would pick us, so it is fixed here

# What each capture type's CSV holds (README: "Capture types", "NetFlow records"); tests check these against
# the columns the server writes.
SCHEMAS: dict[str, dict[str, str]] = {
    "netflow": {
        "ts": NFDUMP_TIME, "te": NFDUMP_TIME, "td": FLOAT, "sa": TEXT, "da": TEXT, "sp": INT, "dp": INT, "pr": TEXT,
        "flg": TEXT, "fwd": INT, "stos": INT, "ipkt": INT, "ibyt": INT, "opkt": INT, "obyt": INT, "in": INT,
        "out": INT, "sas": INT, "das": INT, "smk": INT, "dmk": INT, "dtos": INT, "dir": INT, "nh": TEXT,
        "nhb": TEXT, "svln": INT, "dvln": INT, "ismc": TEXT, "odmc": TEXT, "idmc": TEXT, "osmc": TEXT,
        **{f"mpls{i}": TEXT for i in range(1, 11)},
        "cl": FLOAT, "sl": FLOAT, "al": FLOAT, "ra": TEXT, "eng": TEXT, "exid": INT, "tr": NFDUMP_TIME_MS,
    },
    "ethernet": {
        "time": EPOCH_MS, "src_mac": TEXT, "dst_mac": TEXT, "ethertype": TEXT, "vlan": NULLABLE_INT,
        "src_ip": TEXT, "dst_ip": TEXT, "protocol": TEXT, "src_port": NULLABLE_INT, "dst_port": NULLABLE_INT,
        "length": INT,
    },
    "linkstats": {
        "time": EPOCH_MS, "state": INT,  # 1: administratively up, 0: down (or gone: then the counters are empty)
        **{f"{d}_{c}": NULLABLE_INT for d, names in (("rx", "bytes packets errors dropped overrun mcast"),
                                                    ("tx", "bytes packets errors dropped carrier collision"))
           for c in names.split()},
    },
    # then a float column per sensor of the point, named by its kind (OPEN below): the header says which
    "sensor": {"time": EPOCH_MS},
}
# types whose CSV has the columns above and then any number more, all of this kind (read from the header)
OPEN: dict[str, str] = {"sensor": FLOAT}
# nfdump's flow CSV ends in a three-line trailer ("Summary", its header, the totals): not rows
NETFLOW_TRAILER = b"\nSummary\n"
_READ_DTYPES: dict[str, object] = {INT: "int64", NULLABLE_INT: "Int64", FLOAT: "float64", TEXT: str,
                                   EPOCH_MS: "float64"}


def schema(capture_type: str) -> dict[str, str]:
    try:
        return SCHEMAS[capture_type]
    except KeyError:
        raise ValueError(f"this client cannot read {capture_type!r} captures as a DataFrame "
                         f"(it knows {', '.join(SCHEMAS)}); download() gets the raw data") from None


def empty_frame(capture_type: str, columns: list[str] | None = None) -> pd.DataFrame:
    """No rows, the columns and dtypes a capture of this type has (of an open type: these columns)."""
    return read_frame(capture_type, iter([",".join(columns or schema(capture_type)).encode() + b"\n"]))


def read_frame(capture_type: str, chunks: Iterator[bytes]) -> pd.DataFrame:
    """A whole CSV body as one typed DataFrame."""
    import pandas as pd

    return _typed(capture_type, pd.read_csv(_stream(capture_type, chunks), **_csv_options(capture_type)))


def iter_frames(capture_type: str, chunks: Iterator[bytes], rows: int = 200_000) -> Iterator[pd.DataFrame]:
    """A CSV body as typed DataFrames of at most `rows` rows each, read as the body arrives."""
    import pandas as pd

    with pd.read_csv(_stream(capture_type, chunks), chunksize=rows, **_csv_options(capture_type)) as reader:
        for part in reader:
            yield _typed(capture_type, part)


def arrow_schema(capture_type: str, columns: list[str] | None = None) -> pa.Schema:
    import pyarrow as pa

    kinds = {INT: pa.int64(), NULLABLE_INT: pa.int64(), FLOAT: pa.float64(), TEXT: pa.string()}
    return pa.schema([(name, pa.timestamp("ns", tz="UTC") if kind in TIME_KINDS else kinds[kind])
                      for name, kind in column_kinds(capture_type, columns).items()])


def column_kinds(capture_type: str, columns: list[str] | None = None) -> dict[str, str]:
    """Column -> kind: the type's schema, and for an open type (sensor) the further columns the CSV named."""
    known = schema(capture_type)
    if capture_type not in OPEN or columns is None:
        return known
    return {**known, **{c: OPEN[capture_type] for c in columns[len(known):]}}


def write_parquet(capture_type: str, chunks: Iterator[bytes], path: str | os.PathLike[str],
                  rows: int = 200_000) -> int:
    """Stream a CSV body into a Parquet file (one row group per `rows` rows), written under a temp name and
    renamed when complete. Returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = iter_frames(capture_type, chunks, rows)
    first = next(parts, None)
    # a sensor capture's columns are its header's; none at all (not even a header) is the type's own
    columns = list(first.columns) if first is not None and capture_type in OPEN else None
    # with pandas' metadata, so pandas reads the file back with these dtypes (nullable Int64, UTC times)
    target = pa.Table.from_pandas(empty_frame(capture_type, columns), schema=arrow_schema(capture_type, columns),
                                  preserve_index=False).schema
    total = 0
    with atomic_file(path) as f, pq.ParquetWriter(f, target) as writer:
        for part in ([] if first is None else [first, *parts]):
            writer.write_table(pa.Table.from_pandas(part, schema=target, preserve_index=False))
            total += len(part)
    return total


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file that appears at path only when the block ends without an error: written to a hidden
    temp name in the same directory, fsynced, renamed (so a reader never sees half a file)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a downloaded file should look like any other
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _csv_options(capture_type: str) -> dict[str, object]:
    columns = schema(capture_type)
    dtype: dict[str, object] = {c: _READ_DTYPES.get(k, str) for c, k in columns.items()}
    if capture_type in OPEN:  # the columns after the known ones, whatever the header names them
        dtype = defaultdict(lambda: _READ_DTYPES[OPEN[capture_type]], dtype)
    return {
        # times arrive as text (nfdump's) or as float epoch ms: read as such, converted in _typed
        "dtype": dtype,
        "na_values": [""], "keep_default_na": False,  # only an empty field is missing ("NA" is text)
    }


def _typed(capture_type: str, df: pd.DataFrame) -> pd.DataFrame:
    """Check the columns, then turn the time columns into UTC datetimes."""
    import pandas as pd

    columns = column_kinds(capture_type, list(df.columns))
    if list(df.columns) != list(columns):
        raise ValueError(f"the device's {capture_type} CSV has columns {list(df.columns)}, "
                         f"this client expects {list(columns)}")
    for name, kind in columns.items():
        if kind == EPOCH_MS:
            # milliseconds with microsecond decimals: round to whole microseconds, exact in float64
            us = df[name].mul(1000).round().astype("int64")
            df[name] = pd.to_datetime(us, unit="us", utc=True).astype(TIME_DTYPE)
        elif kind in TIME_KINDS:
            df[name] = pd.to_datetime(df[name], format=TIME_KINDS[kind], utc=True).astype(TIME_DTYPE)
    if capture_type == "netflow":
        df["pr"] = df["pr"].str.strip()  # nfdump pads numeric protocols ("138  ")
    return df


def _stream(capture_type: str, chunks: Iterator[bytes]) -> IO[bytes]:
    if capture_type == "netflow":
        chunks = _until(chunks, NETFLOW_TRAILER)
    return io.BufferedReader(_ChunkReader(chunks), buffer_size=1 << 20)


def _until(chunks: Iterator[bytes], marker: bytes) -> Iterator[bytes]:
    """The bytes before marker, keeping marker's first byte (the newline that ends the last row)."""
    keep = len(marker) - 1  # a marker may straddle two chunks
    tail = b""
    for chunk in chunks:
        data = tail + chunk
        at = data.find(marker)
        if at >= 0:
            yield data[: at + 1]
            return
        yield data[: len(data) - keep] if len(data) > keep else b""
        tail = data[-keep:]
    yield tail


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks, for pandas' parser."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - any writable buffer
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._view = memoryview(chunk)
        n = min(len(buffer), len(self._view))
        buffer[:n] = self._view[:n]
        self._view = self._view[n:]
        return n
