"""Check a BPF filter expression by compiling it with libpcap, the same compiler tcpdump uses.

Nothing is run and no interface is opened: pcap_open_dead gives a compiler for an Ethernet link.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

DLT_EN10MB = 1
MAX_FILTER_LEN = 4096


class BadFilter(ValueError):
    pass


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


@cache
def _libpcap() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    lib = ctypes.CDLL(name)
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_uint32]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


def check_filter(expression: str, snaplen: int = 262144, max_len: int | None = MAX_FILTER_LEN) -> str:
    """Return the expression if libpcap compiles it; raise BadFilter with libpcap's message otherwise.
    max_len: a caller's filter is bounded; the device's own (one clause per host address) is not."""
    if max_len is not None and len(expression) > max_len:
        raise BadFilter(f"filter is longer than {MAX_FILTER_LEN} characters")
    if "\x00" in expression:
        raise BadFilter("filter contains a NUL character")
    lib = _libpcap()
    handle = lib.pcap_open_dead(DLT_EN10MB, snaplen)
    try:
        prog = _BpfProgram()
        if lib.pcap_compile(handle, ctypes.byref(prog), expression.encode(), 1, 0xFFFFFFFF) != 0:
            raise BadFilter(f"invalid BPF filter: {lib.pcap_geterr(handle).decode(errors='replace')}")
        lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)
    return expression
