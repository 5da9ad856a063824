"""The ring's recorder: libpcap's capture loop writing the ring's hidden blocks as `tcpdump -C N -W K -w BASE`
would (BASE0 ... BASE<K-1>, the oldest name reused), run as its own process by ring.py:

    python -m opentap.capture.ringrecorder --interface IF --out DIR/.run-000003.pcap --block-mb 32 --files 8 \
        --buffer-kib 32768 --snaplen 262144 --mode 0o600 [--user NAME] [--filter=BPF]

Why not tcpdump: the ring must have what is stamped more than ring.FLUSH_LAG ago in its files, so its writer
must flush while packets are few. tcpdump can do so only with -U, a write(2) per packet (2.5 times tcpdump's CPU
per packet here: 1.07 against 0.42 us, measured flat out on a veth), or with SIGUSR2, whose handler flushes
inside whatever write it interrupts and corrupted ring blocks. Here libpcap's own `pcap_dump` is the per-packet
callback of `pcap_dispatch` (no Python per packet), records go through a 1 MiB stdio buffer, and the buffer is
flushed between two dispatches, where nothing is being written: after each catch-up with the kernel and at least
every FLUSH_EVERY seconds. The handle is non-blocking and waited for with poll(2) for at most WAIT seconds, so
libpcap's 1 s block timeout plus WAIT bounds how long a packet stays out of the file.

A block is rotated between dispatches once it holds more than --block-mb million bytes; each dispatch is limited
to as many packets as could fill the rest of the block, so a block ends at most one record past it, as with
tcpdump (ring.reserve_bytes counts on that). Signals are handled by Python between dispatches, never inside a
write: SIGUSR1 prints the kernel's drop count as tcpdump does (ringdrops.py reads it), SIGTERM/SIGINT end it
after a last drain and flush. It prints "listening on" once capturing, which ring.py waits for.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import pwd
import select
import signal
import sys
import time

WAIT = 0.25  # seconds poll(2) waits for a retired libpcap block before the loop looks at its flags again
FLUSH_EVERY = 0.25  # seconds at most between flushes while the kernel keeps handing packets over
DRAIN_AT_MOST = 1.0  # seconds one drain goes on before the loop looks at its signals' flags (flat out, it may
# never catch up with the kernel, and a stop must still be seen)
BLOCK_TIMEOUT_MS = 1000  # libpcap's block timeout, tcpdump's default: a partly filled block is handed over after it
STDIO_BUFFER = 1 << 20
RECORD_HEADER = 16
NICE = -10  # the recorder must win the CPU against queries (nice 10, ringquery.background) and other work:
# losing the race drops packets for good, while a slower query only answers later. Its own need is small
# (~0.4 us a packet), so the priority cannot starve the rest of the device.


class RecorderError(RuntimeError):
    pass


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _PcapStat(ctypes.Structure):
    _fields_ = [("ps_recv", ctypes.c_uint), ("ps_drop", ctypes.c_uint), ("ps_ifdrop", ctypes.c_uint)]


def _libpcap() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("pcap") or "libpcap.so.0.8", use_errno=True)
    vp, ci, cs = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    for name, res, args in (("pcap_create", vp, [cs, cs]), ("pcap_set_snaplen", ci, [vp, ci]),
                            ("pcap_set_promisc", ci, [vp, ci]), ("pcap_set_timeout", ci, [vp, ci]),
                            ("pcap_set_buffer_size", ci, [vp, ci]), ("pcap_activate", ci, [vp]),
                            ("pcap_geterr", cs, [vp]), ("pcap_statustostr", cs, [ci]),
                            ("pcap_compile", ci, [vp, ctypes.POINTER(_BpfProgram), cs, ci, ctypes.c_uint32]),
                            ("pcap_setfilter", ci, [vp, ctypes.POINTER(_BpfProgram)]),
                            ("pcap_freecode", None, [ctypes.POINTER(_BpfProgram)]),
                            ("pcap_setnonblock", ci, [vp, ci, cs]), ("pcap_get_selectable_fd", ci, [vp]),
                            ("pcap_dispatch", ci, [vp, ci, vp, vp]), ("pcap_dump_fopen", vp, [vp, vp]),
                            ("pcap_dump_flush", ci, [vp]), ("pcap_dump_file", vp, [vp]),
                            ("pcap_dump_ftell64", ctypes.c_int64, [vp]),
                            ("pcap_dump_close", None, [vp]), ("pcap_stats", ci, [vp, ctypes.POINTER(_PcapStat)]),
                            ("pcap_datalink", ci, [vp]), ("pcap_close", None, [vp])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.fdopen.restype, lib.fdopen.argtypes = ctypes.c_void_p, [ctypes.c_int, ctypes.c_char_p]
    lib.setvbuf.restype = ctypes.c_int
    lib.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
    lib.ferror.restype, lib.ferror.argtypes = ctypes.c_int, [ctypes.c_void_p]
    return lib


_IOFBF = 0  # stdio.h: fully buffered


class Recorder:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.pcap, self.libc = args, _libpcap(), _libc()
        self.block_bytes = args.block_mb * 1_000_000
        self.max_record = args.snaplen + RECORD_HEADER
        self.handle: int | None = None
        self.dumper: int | None = None
        self.slot = -1
        self.stop = self.report = False
        self.flushed_at = time.monotonic()
        # the C function itself is the callback: libpcap calls pcap_dump(dumper, header, bytes) per packet
        self.pcap_dump = ctypes.cast(self.pcap.pcap_dump, ctypes.c_void_p)

    # --- set-up -------------------------------------------------------------------------------------------
    def open(self) -> None:
        errbuf = ctypes.create_string_buffer(512)
        p = self.pcap.pcap_create(self.args.interface.encode(), errbuf)
        if not p:
            raise RecorderError(errbuf.value.decode(errors="replace"))
        self.handle = p
        # as tcpdump sets them by default: promiscuous, its 1 s timeout
        self.pcap.pcap_set_snaplen(p, self.args.snaplen)
        self.pcap.pcap_set_promisc(p, 1)
        self.pcap.pcap_set_timeout(p, BLOCK_TIMEOUT_MS)
        self.pcap.pcap_set_buffer_size(p, self.args.buffer_kib * 1024)
        status = self.pcap.pcap_activate(p)
        if status < 0:
            raise RecorderError(f"{self.args.interface}: {self._error(status)}")
        if status > 0:
            print(f"warning: {self.args.interface}: {self._error(status)}", file=sys.stderr, flush=True)
        if self.args.filter:
            prog = _BpfProgram()
            if self.pcap.pcap_compile(p, ctypes.byref(prog), self.args.filter.encode(), 1, 0xFFFFFFFF) < 0:
                raise RecorderError(f"bad filter: {self._geterr()}")
            ok = self.pcap.pcap_setfilter(p, ctypes.byref(prog))
            self.pcap.pcap_freecode(ctypes.byref(prog))
            if ok < 0:
                raise RecorderError(f"the filter cannot be set: {self._geterr()}")
        if self.pcap.pcap_setnonblock(p, 1, errbuf) < 0:
            raise RecorderError(errbuf.value.decode(errors="replace"))
        self._raise_priority()
        self._drop_privileges()
        self._rotate()
        print(f"listening on {self.args.interface}, link-type {self.pcap.pcap_datalink(p)}, snapshot length "
              f"{self.args.snaplen} bytes", file=sys.stderr, flush=True)

    def _error(self, status: int) -> str:
        detail = self._geterr()
        return detail or self.pcap.pcap_statustostr(status).decode(errors="replace")

    def _geterr(self) -> str:
        return (self.pcap.pcap_geterr(self.handle) or b"").decode(errors="replace")

    def _raise_priority(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, NICE)
        except OSError as e:  # not root, no CAP_SYS_NICE: it records all the same, at the normal priority
            print(f"warning: the recorder's priority cannot be raised: {e}", file=sys.stderr, flush=True)

    def _drop_privileges(self) -> None:
        """As tcpdump -Z: the interface is opened as root; the files are written as the user."""
        if not self.args.user or self.args.user == "root":
            return
        pw = pwd.getpwnam(self.args.user)
        os.initgroups(pw.pw_name, pw.pw_gid)
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    # --- files --------------------------------------------------------------------------------------------
    def _rotate(self) -> None:
        """Close the block being written (if any) and open the next name, reusing the oldest after --files."""
        if self.dumper is not None:
            self.pcap.pcap_dump_close(self.dumper)  # fclose: the rest of the buffer is written
            self.dumper = None
        self.slot = (self.slot + 1) % self.args.files
        path = f"{self.args.out}{self.slot}"
        # O_TRUNC keeps a reused name's inode, as tcpdump's fopen(w) does (ringfiles.py expects that)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, self.args.mode)
        os.fchmod(fd, self.args.mode)  # a reused file keeps its old mode otherwise, and umask may narrow it
        fp = self.libc.fdopen(fd, b"wb")
        if not fp:
            os.close(fd)
            raise RecorderError(f"{path}: fdopen failed ({os.strerror(ctypes.get_errno())})")
        self.libc.setvbuf(fp, None, _IOFBF, STDIO_BUFFER)  # before the first write, as setvbuf requires
        dumper = self.pcap.pcap_dump_fopen(self.handle, fp)
        if not dumper:
            raise RecorderError(f"{path}: {self._geterr()}")
        self.dumper = dumper

    def _flush(self) -> None:
        assert self.dumper is not None
        # pcap_dump ignores fwrite's result: the stream's error flag says whether a buffered write failed
        if self.pcap.pcap_dump_flush(self.dumper) < 0 or self.libc.ferror(self.pcap.pcap_dump_file(self.dumper)):
            raise RecorderError(f"writing {self.args.out}{self.slot} failed: {os.strerror(ctypes.get_errno())}")
        self.flushed_at = time.monotonic()

    # --- the loop -----------------------------------------------------------------------------------------
    def drain(self) -> int:
        """Write what the kernel has handed over, rotating blocks between dispatches; flush. Returns packets."""
        assert self.dumper is not None
        total, started = 0, time.monotonic()
        while True:
            written = self.pcap.pcap_dump_ftell64(self.dumper)
            if written > self.block_bytes:
                self._rotate()
                written = self.pcap.pcap_dump_ftell64(self.dumper)
            room = max(1, (self.block_bytes - written) // self.max_record + 1)
            n = self.pcap.pcap_dispatch(self.handle, room, self.pcap_dump, self.dumper)
            if n < 0:
                raise RecorderError(f"capture failed: {self._geterr()}")
            total += n
            if n < room or time.monotonic() - started >= DRAIN_AT_MOST:  # caught up with the kernel, or enough
                break
            if time.monotonic() - self.flushed_at >= FLUSH_EVERY:
                self._flush()
        self._flush()
        return total

    def stats(self) -> None:
        st = _PcapStat()
        if self.handle is not None and self.pcap.pcap_stats(self.handle, ctypes.byref(st)) == 0:
            # tcpdump's words: ringdrops.py reads "N packets dropped by kernel"
            print(f"{st.ps_recv} packets received by filter\n{st.ps_drop} packets dropped by kernel",
                  file=sys.stderr, flush=True)

    def run(self) -> None:
        assert self.handle is not None
        poller = select.poll()
        poller.register(self.pcap.pcap_get_selectable_fd(self.handle), select.POLLIN)
        while not self.stop:
            poller.poll(WAIT * 1000)  # interrupted by a signal: its handler has run, the loop looks at its flag
            self.drain()
            if self.report:
                self.report = False
                self.stats()
        self.drain()  # the blocks the kernel handed over before the stop
        self.stats()

    def close(self) -> None:
        if self.dumper is not None:
            self.pcap.pcap_dump_close(self.dumper)
            self.dumper = None
        if self.handle is not None:
            self.pcap.pcap_close(self.handle)
            self.handle = None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interface", required=True)
    ap.add_argument("--out", required=True, help="the blocks' names without their number")
    ap.add_argument("--block-mb", type=int, required=True)
    ap.add_argument("--files", type=int, required=True)
    ap.add_argument("--buffer-kib", type=int, required=True)
    ap.add_argument("--snaplen", type=int, required=True)
    ap.add_argument("--mode", type=lambda s: int(s, 8), default=0o600)
    ap.add_argument("--user")
    ap.add_argument("--filter")
    args = ap.parse_args(argv)
    rec = Recorder(args)

    def on_stop(*_: object) -> None:
        rec.stop = True

    def on_report(*_: object) -> None:
        rec.report = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_report)
    try:
        rec.open()
        rec.run()
    except (RecorderError, OSError, KeyError) as e:  # KeyError: no such user
        print(f"ringrecorder: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        rec.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
